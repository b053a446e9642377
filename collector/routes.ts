// The collector's HTTP face: ingest for producers outside this Worker, and the query API v0.
import { type Context, Hono } from 'hono';
import { capacityConfig, capacityOf } from './capacity';
import { Collector, MAX_SHARDS, shardCount } from './client';
import { DECISIONS, LIMITS, PATTERNS, type Pattern } from './contract';
import { ApiError, intParam, readBoundedText, requireToken, textParam } from './http';
import { collectMetrics } from './metrics';
import type { TrailEvent } from './query/types';
import { skew } from './sketch';
import { RETENTION } from './store';

const MAX_WINDOW_SEC = RETENTION.minutesMs / 1000;
const MAX_POINTS = 3_600;

function patternParam(c: Context): { pattern?: Pattern; decision?: string } {
  const pattern = textParam(c, 'pattern', { maxBytes: 32 });
  const decision = textParam(c, 'decision', { maxBytes: 32 });
  if (pattern !== undefined && !PATTERNS.includes(pattern as Pattern)) {
    throw new ApiError(400, 'invalid_parameter', `pattern must be one of ${PATTERNS.join(', ')}`);
  }
  if (decision !== undefined && pattern !== undefined) {
    const allowed = DECISIONS[pattern as Pattern] as readonly string[];
    if (!allowed.includes(decision)) {
      throw new ApiError(
        400,
        'invalid_parameter',
        `decision must be one of ${allowed.join(', ')} for ${pattern}`,
      );
    }
  }
  return { pattern: pattern as Pattern | undefined, decision };
}

/**
 * `window` (default 300 s) and `step` (default: about `points` steps, whole seconds within an hour,
 * whole minutes beyond, where the rollups are per minute).
 */
function windowAndStep(c: Context, points: number): { window: number; step: number } {
  const window = intParam(c, 'window', 300, 1, MAX_WINDOW_SEC);
  const defaultStep = Math.max(window <= 3600 ? 1 : 60, Math.ceil(window / points));
  const step = intParam(c, 'step', defaultStep, 1, 86_400);
  if (window / step > MAX_POINTS) {
    throw new ApiError(400, 'invalid_parameter', `window / step must be at most ${MAX_POINTS} points`);
  }
  return { window, step };
}

export type CollectorRouteOptions = {
  /**
   * The owning objects' own answer for a request, beside the collector's trail. The collector
   * cannot import the objects (DESIGN §1), so the Worker passes this in.
   */
  authoritativeLookup?: (env: Env, trail: TrailEvent[]) => Promise<unknown>;
};

export function createCollectorRoutes(options: CollectorRouteOptions = {}): Hono<{ Bindings: Env }> {
  const collectorRoutes = new Hono<{ Bindings: Env }>();

  collectorRoutes.post('/ingest', requireToken('KEYWARDEN_INGEST_TOKEN'), async (c) => {
    const text = await readBoundedText(c.req.raw, LIMITS.batchBytes);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ApiError(400, 'invalid_json', 'the body must be JSON: {"events":[...]}');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body) || !('events' in body)) {
      throw new ApiError(400, 'invalid_body', 'the body must be a JSON object with an "events" array');
    }
    const { events } = body as { events: unknown };
    if (!Array.isArray(events)) throw new ApiError(400, 'invalid_body', '"events" must be an array');
    const extra = Object.keys(body).filter((k) => k !== 'events');
    if (extra.length > 0)
      throw new ApiError(400, 'invalid_body', `unknown field "${extra[0]!.slice(0, 64)}"`);
    if (events.length > LIMITS.batchEvents) {
      throw new ApiError(413, 'batch_too_large', `a batch holds at most ${LIMITS.batchEvents} events`);
    }
    return c.json(await new Collector(c.env).ingest(events));
  });

  const api = new Hono<{ Bindings: Env }>();
  api.use('*', requireToken('KEYWARDEN_READ_TOKEN', { optional: true }));

  api.get('/hot-keys', async (c) => {
    const ns = textParam(c, 'ns', { required: true, maxBytes: LIMITS.nsBytes });
    const window = intParam(c, 'window', 60, 1, MAX_WINDOW_SEC);
    const limit = intParam(c, 'limit', 10, 1, 1000);
    const exactParam = c.req.query('exact');
    if (exactParam !== undefined && !['true', 'false', '1', '0'].includes(exactParam)) {
      throw new ApiError(400, 'invalid_parameter', 'exact must be true or false');
    }
    const r = await new Collector(c.env).hotKeys({
      exact: exactParam === 'true' || exactParam === '1',
      ns,
      windowSec: window,
      limit,
      now: Date.now(),
      ...patternParam(c),
    });
    const capacity = capacityOf(capacityConfig(c.env), ns);
    return c.json({
      ns,
      window,
      total: r.total,
      exact: r.exact,
      capacity,
      keys: r.keys.map((k) => {
        const rate = k.count / window;
        return {
          key: k.key,
          count: k.count,
          error: k.error,
          share: r.total > 0 ? k.count / r.total : 0,
          rate,
          utilization: rate / capacity,
        };
      }),
      skew: skew(
        r.keys.map((k) => k.count),
        r.total,
      ),
    });
  });

  api.get('/keys/:ns/:key/series', async (c) => {
    const { ns, key } = c.req.param();
    if (new TextEncoder().encode(key).byteLength > LIMITS.keyBytes) {
      throw new ApiError(400, 'invalid_parameter', `key must be at most ${LIMITS.keyBytes} bytes`);
    }
    const { window, step } = windowAndStep(c, 120);
    const r = await new Collector(c.env).series({
      ns,
      key,
      windowSec: window,
      stepSec: step,
      now: Date.now(),
    });
    return c.json({ ns, key, window, step, points: r.points });
  });

  api.get('/heatmap', async (c) => {
    const ns = textParam(c, 'ns', { required: true, maxBytes: LIMITS.nsBytes });
    const buckets = intParam(c, 'buckets', 64, 1, 1000);
    const { window, step } = windowAndStep(c, 60);
    const r = await new Collector(c.env).heatmap({
      ns,
      windowSec: window,
      stepSec: step,
      buckets,
      now: Date.now(),
    });
    return c.json({ ns, window, step, buckets, keyBuckets: 'fnv1a32(key) % buckets', ...r });
  });

  api.get('/lookup', async (c) => {
    const requestId = textParam(c, 'requestId', { required: true, maxBytes: LIMITS.requestIdBytes });
    const events = await new Collector(c.env).lookup(requestId);
    const authoritative = options.authoritativeLookup
      ? await options.authoritativeLookup(c.env, events)
      : undefined;
    return c.json({ requestId, trail: events, ...(authoritative === undefined ? {} : { authoritative }) });
  });

  api.get('/totals', async (c) => {
    const window = intParam(c, 'window', 60, 1, MAX_WINDOW_SEC);
    const ns = textParam(c, 'ns', { maxBytes: LIMITS.nsBytes });
    const totals = await new Collector(c.env).totals({ windowSec: window, now: Date.now(), ns });
    return c.json({ window, totals });
  });

  api.get('/health', async (c) => {
    const collector = new Collector(c.env);
    const shards = await collector.stats();
    const configured = Number(c.env.KEYWARDEN_COLLECTOR_SHARDS ?? 4);
    return c.json({
      status: 'ok',
      collector: {
        shards: shardCount(c.env),
        shardsConfigValid: Number.isInteger(configured) && configured >= 1 && configured <= MAX_SHARDS,
        accepted: shards.reduce((n, s) => n + s.accepted, 0),
        duplicates: shards.reduce((n, s) => n + s.duplicates, 0),
        aeDropped: shards.reduce((n, s) => n + s.aeDropped, 0),
        lagMs: Math.max(0, ...shards.map((s) => s.lagMs)),
        perShard: shards,
      },
      analyticsEngine: { writes: c.env.KEYWARDEN_EVENTS ? 'bound' : 'unbound' },
    });
  });

  collectorRoutes.route('/api', api);

  collectorRoutes.get('/metrics', requireToken('KEYWARDEN_READ_TOKEN', { optional: true }), async (c) => {
    const body = await collectMetrics(new Collector(c.env));
    return c.body(body, 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
  });
  return collectorRoutes;
}
