// HTTP routes for the rate_limit pattern, mounted at /objects/rate_limit (see README.md).
import { Hono } from 'hono';
import { z } from 'zod';
import { LIMITS, textParam } from '../../../collector';
import { boundedText, jsonBody, objectFor, requestNamespace, requestTarget, traceContext } from '../../kit';
import { ALGORITHMS, LIMIT_BOUNDS, namespaceConfigObject } from './object';

export const rateLimitRoutes = new Hono<{ Bindings: Env }>();

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

// The namespace's limit (one segment, so it never collides with a key's `/:key/<action>`).

rateLimitRoutes.get('/config', async (c) => {
  const ns = requestNamespace(c, 'rate_limit');
  return c.json(await namespaceConfigObject(c.env.RATE_LIMIT, ns).namespaceLimit({ ns }));
});

rateLimitRoutes.put('/config', async (c) => {
  const ns = requestNamespace(c, 'rate_limit');
  const config = await jsonBody(c, namespaceBody, BODY);
  return c.json(await namespaceConfigObject(c.env.RATE_LIMIT, ns).setNamespaceLimit({ ns, config }));
});

rateLimitRoutes.delete('/config', async (c) => {
  const ns = requestNamespace(c, 'rate_limit');
  return c.json(await namespaceConfigObject(c.env.RATE_LIMIT, ns).setNamespaceLimit({ ns, config: null }));
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

rateLimitRoutes.get('/:key/config', async (c) => {
  const { ns, key } = requestTarget(c, 'rate_limit');
  return c.json(await objectFor(c.env.RATE_LIMIT, ns, key).limits({ ns, key }));
});

rateLimitRoutes.put('/:key/config', async (c) => {
  const { ns, key } = requestTarget(c, 'rate_limit');
  const override = await jsonBody(c, overrideBody, BODY);
  return c.json(await objectFor(c.env.RATE_LIMIT, ns, key).configure({ ns, key, override }));
});

rateLimitRoutes.delete('/:key/config', async (c) => {
  const { ns, key } = requestTarget(c, 'rate_limit');
  return c.json(await objectFor(c.env.RATE_LIMIT, ns, key).configure({ ns, key, override: null }));
});

rateLimitRoutes.get('/:key/inspect', async (c) => {
  const { ns, key } = requestTarget(c, 'rate_limit');
  const requestId = textParam(c, 'requestId', { maxBytes: LIMITS.requestIdBytes });
  return c.json(await objectFor(c.env.RATE_LIMIT, ns, key).inspect(requestId));
});
