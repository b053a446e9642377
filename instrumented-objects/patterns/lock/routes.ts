// HTTP routes for the lock pattern, mounted at /objects/lock (see README.md).
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { ApiError, intParam, LIMITS, readBoundedText, textParam, utf8Bytes } from '../../../collector';
import { objectFor } from '../../kit';
import { type GuardedWriteResult, LOCK_BOUNDS, type ReleaseResult, type TraceContext } from './object';

export const lockRoutes = new Hono<{ Bindings: Env }>();

const DEFAULT_NS = 'demo.lock';
const SMALL_BODY = 4096;

const ms = (min: number, max: number) => z.number().int().min(min).max(max);
const token = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

const acquireBody = z.strictObject({
  requestId: boundedText(LIMITS.requestIdBytes).optional(),
  ttlMs: ms(1, LOCK_BOUNDS.ttlMs).optional(),
  waitMs: ms(0, LOCK_BOUNDS.waitMs).optional(),
  pollMs: ms(0, LOCK_BOUNDS.pollMs).optional(),
});
const releaseBody = z.strictObject({ token });
const writeBody = z.strictObject({
  token,
  payload: z.json(),
  requestId: boundedText(LIMITS.requestIdBytes).optional(),
});

lockRoutes.post('/:key/acquire', async (c) => {
  const { ns, key } = target(c);
  const input = await jsonBody(c, acquireBody, SMALL_BODY);
  const r = await objectFor(c.env.LOCK, ns, key).acquire({ ns, key, ...input, trace: traceOf(c) });
  if (r.acquired) return c.json(r, 200);
  if (r.decision === 'released' || r.decision === 'expired') {
    const error = {
      code: 'lease_ended',
      message: `${r.requestId} already held the lock (${r.decision}); acquire with a new requestId`,
    };
    return c.json({ ...r, error }, 409);
  }
  if (r.decision === 'waited') {
    // Still queued: poll again with the same requestId to keep the place.
    c.header('Retry-After', '0');
    return c.json(r, 202);
  }
  const error = {
    code: 'lock_timeout',
    message: `the lock was not free within waitMs; ${r.requestId} left the queue`,
  };
  return c.json({ ...r, error }, 409);
});

lockRoutes.post('/:key/release', async (c) => {
  const { ns, key } = target(c);
  const input = await jsonBody(c, releaseBody, SMALL_BODY);
  return fencedOr(c, await objectFor(c.env.LOCK, ns, key).release({ ns, key, ...input, trace: traceOf(c) }));
});

lockRoutes.post('/:key/write', async (c) => {
  const { ns, key } = target(c);
  const input = await jsonBody(c, writeBody, LOCK_BOUNDS.payloadBytes + 1024);
  return fencedOr(c, await objectFor(c.env.LOCK, ns, key).write({ ns, key, ...input, trace: traceOf(c) }));
});

lockRoutes.get('/:key/record', async (c) => {
  const { ns, key } = target(c);
  const limit = intParam(c, 'limit', 100, 1, 1000);
  return c.json(await objectFor(c.env.LOCK, ns, key).record({ ns, key, limit }));
});

lockRoutes.get('/:key/inspect', async (c) => {
  const { ns, key } = target(c);
  const requestId = textParam(c, 'requestId', { maxBytes: LIMITS.requestIdBytes });
  return c.json(await objectFor(c.env.LOCK, ns, key).inspect(requestId));
});

/** A release or write under a token that is not the live holder's: 409 `fenced`, saying why. */
function fencedOr(c: Context, r: ReleaseResult | GuardedWriteResult): Response {
  if (!('decision' in r) || r.decision !== 'fenced') return c.json(r);
  const why = {
    expired: 'its lease expired',
    stale: 'a later token was issued',
    unknown: 'it was never issued here',
  };
  const error = { code: 'fenced', message: `token ${r.token} is not the lock holder's: ${why[r.reason]}` };
  return c.json({ ...r, error }, 409);
}

// Route plumbing shared in shape by every pattern's routes.

function boundedText(maxBytes: number) {
  return z
    .string()
    .min(1)
    .refine((s) => utf8Bytes(s) <= maxBytes, { message: `must be at most ${maxBytes} UTF-8 bytes` });
}

function target(c: Context<{ Bindings: Env }>): { ns: string; key: string } {
  const key = c.req.param('key') ?? '';
  if (key === '' || utf8Bytes(key) > LIMITS.keyBytes) {
    throw new ApiError(400, 'invalid_parameter', `key must be 1 to ${LIMITS.keyBytes} bytes`);
  }
  const ns = textParam(c, 'ns', { maxBytes: LIMITS.nsBytes }) ?? DEFAULT_NS;
  return { ns, key };
}

async function jsonBody<T>(c: Context, schema: z.ZodType<T, unknown>, maxBytes: number): Promise<T> {
  const text = await readBoundedText(c.req.raw, maxBytes);
  let raw: unknown;
  try {
    raw = text === '' ? {} : JSON.parse(text);
  } catch {
    throw new ApiError(400, 'invalid_json', 'the body must be JSON');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new ApiError(400, 'invalid_body', `${where}${issue.message}`);
  }
  return parsed.data;
}

/** W3C trace context from `traceparent`, so the decision event carries the caller's trace. */
function traceOf(c: Context): TraceContext | undefined {
  const m = /^[\da-f]{2}-([\da-f]{32})-([\da-f]{16})-[\da-f]{2}$/.exec(c.req.header('traceparent') ?? '');
  return m ? { traceId: m[1]!, spanId: m[2]! } : undefined;
}
