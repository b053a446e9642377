// HTTP routes for the rate_limit pattern (see README.md): the application's, mounted at
// /objects/rate_limit, and the operator's, which change limits, mounted at /ops/objects/rate_limit.
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { LIMITS, textParam } from '../../../collector';
import { boundedText, jsonBody, objectFor, requestNamespace, requestTarget, traceContext } from '../../kit';
import { ALGORITHMS, LIMIT_BOUNDS, namespaceConfigObject } from './object';

export const rateLimitRoutes = new Hono<{ Bindings: Env }>();
/** Limits change what every caller of a namespace or key gets: the operator's to set. */
export const rateLimitOpsRoutes = new Hono<{ Bindings: Env }>();

const BODY = { maxBytes: 4096, emptyIsObject: true };

const count = (max: number) => z.number().int().min(1).max(max);

const checkBody = z.strictObject({
  requestId: boundedText(LIMITS.requestIdBytes).optional(),
  cost: count(LIMIT_BOUNDS.limit).optional(),
});

const overrideBody = z.strictObject({
  limit: count(LIMIT_BOUNDS.limit).optional(),
  windowMs: count(LIMIT_BOUNDS.windowMs).optional(),
  burst: count(LIMIT_BOUNDS.limit).nullable().optional(),
});

const namespaceBody = z.strictObject({
  algorithm: z.enum(ALGORITHMS),
  limit: count(LIMIT_BOUNDS.limit),
  windowMs: count(LIMIT_BOUNDS.windowMs),
  burst: count(LIMIT_BOUNDS.limit).nullable().default(null),
});

// One key's budget.

rateLimitRoutes.post('/:key/check', async (c) => {
  const { ns, key } = requestTarget(c, 'rate_limit');
  const body = await jsonBody(c, checkBody, BODY);
  const result = await objectFor(c.env.RATE_LIMIT, ns, key).check({
    ns,
    key,
    ...body,
    trace: traceContext(c),
  });
  if (result.allowed) return c.json(result, 200);
  if (result.retryAfterMs === null) {
    const error = {
      code: 'over_capacity',
      message: `cost ${result.cost} exceeds what this key can ever hold; it will never pass`,
    };
    return c.json({ ...result, error }, 429);
  }
  const seconds = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
  c.header('Retry-After', String(seconds));
  const error = { code: 'rate_limited', message: `over the limit for ${key}; retry in ${seconds} s` };
  return c.json({ ...result, error }, 429);
});

// Limits: readable by the application and the operator, set only by the operator. The namespace's
// routes are one segment, so they never collide with a key's `/:key/<action>`.

type RouteContext = Context<{ Bindings: Env }>;

async function namespaceLimit(c: RouteContext) {
  const ns = requestNamespace(c, 'rate_limit');
  return c.json(await namespaceConfigObject(c.env.RATE_LIMIT, ns).namespaceLimit({ ns }));
}

async function keyLimits(c: RouteContext) {
  const { ns, key } = requestTarget(c, 'rate_limit');
  return c.json(await objectFor(c.env.RATE_LIMIT, ns, key).limits({ ns, key }));
}

rateLimitRoutes.get('/config', namespaceLimit);
rateLimitRoutes.get('/:key/config', keyLimits);
rateLimitOpsRoutes.get('/config', namespaceLimit);
rateLimitOpsRoutes.get('/:key/config', keyLimits);

rateLimitOpsRoutes.put('/config', async (c) => {
  const ns = requestNamespace(c, 'rate_limit');
  const config = await jsonBody(c, namespaceBody, BODY);
  return c.json(await namespaceConfigObject(c.env.RATE_LIMIT, ns).setNamespaceLimit({ ns, config }));
});

rateLimitOpsRoutes.delete('/config', async (c) => {
  const ns = requestNamespace(c, 'rate_limit');
  return c.json(await namespaceConfigObject(c.env.RATE_LIMIT, ns).setNamespaceLimit({ ns, config: null }));
});

rateLimitOpsRoutes.put('/:key/config', async (c) => {
  const { ns, key } = requestTarget(c, 'rate_limit');
  const override = await jsonBody(c, overrideBody, BODY);
  return c.json(await objectFor(c.env.RATE_LIMIT, ns, key).configure({ ns, key, override }));
});

rateLimitOpsRoutes.delete('/:key/config', async (c) => {
  const { ns, key } = requestTarget(c, 'rate_limit');
  return c.json(await objectFor(c.env.RATE_LIMIT, ns, key).configure({ ns, key, override: null }));
});

rateLimitRoutes.get('/:key/inspect', async (c) => {
  const { ns, key } = requestTarget(c, 'rate_limit');
  const requestId = textParam(c, 'requestId', { maxBytes: LIMITS.requestIdBytes });
  return c.json(await objectFor(c.env.RATE_LIMIT, ns, key).inspect(requestId));
});
