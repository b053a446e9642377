// HTTP routes for the rate_limit pattern, mounted at /objects/rate_limit (see README.md).
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { ApiError, LIMITS, readBoundedText, textParam, utf8Bytes } from '../../../collector';
import { objectFor } from '../../kit';
import { ALGORITHMS, LIMIT_BOUNDS, namespaceConfigObject, type TraceContext } from './object';

export const rateLimitRoutes = new Hono<{ Bindings: Env }>();

const DEFAULT_NS = 'demo.rate_limit';
const BODY_BYTES = 4096;

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
  const ns = nsOf(c);
  return c.json(await namespaceConfigObject(c.env.RATE_LIMIT, ns).namespaceLimit({ ns }));
});

rateLimitRoutes.put('/config', async (c) => {
  const ns = nsOf(c);
  const config = await jsonBody(c, namespaceBody);
  return c.json(await namespaceConfigObject(c.env.RATE_LIMIT, ns).setNamespaceLimit({ ns, config }));
});

rateLimitRoutes.delete('/config', async (c) => {
  const ns = nsOf(c);
  return c.json(await namespaceConfigObject(c.env.RATE_LIMIT, ns).setNamespaceLimit({ ns, config: null }));
});

// One key's budget.

rateLimitRoutes.post('/:key/check', async (c) => {
  const { ns, key } = target(c);
  const body = await jsonBody(c, checkBody);
  const result = await objectFor(c.env.RATE_LIMIT, ns, key).check({ ns, key, ...body, trace: traceOf(c) });
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
  const { ns, key } = target(c);
  return c.json(await objectFor(c.env.RATE_LIMIT, ns, key).limits({ ns, key }));
});

rateLimitRoutes.put('/:key/config', async (c) => {
  const { ns, key } = target(c);
  const override = await jsonBody(c, overrideBody);
  return c.json(await objectFor(c.env.RATE_LIMIT, ns, key).configure({ ns, key, override }));
});

rateLimitRoutes.delete('/:key/config', async (c) => {
  const { ns, key } = target(c);
  return c.json(await objectFor(c.env.RATE_LIMIT, ns, key).configure({ ns, key, override: null }));
});

rateLimitRoutes.get('/:key/inspect', async (c) => {
  const { ns, key } = target(c);
  const requestId = textParam(c, 'requestId', { maxBytes: LIMITS.requestIdBytes });
  return c.json(await objectFor(c.env.RATE_LIMIT, ns, key).inspect(requestId));
});

// Route plumbing shared in shape by every pattern's routes.

function boundedText(maxBytes: number) {
  return z
    .string()
    .min(1)
    .refine((s) => utf8Bytes(s) <= maxBytes, { message: `must be at most ${maxBytes} UTF-8 bytes` });
}

function nsOf(c: Context): string {
  return textParam(c, 'ns', { maxBytes: LIMITS.nsBytes }) ?? DEFAULT_NS;
}

function target(c: Context<{ Bindings: Env }>): { ns: string; key: string } {
  const key = c.req.param('key') ?? '';
  if (key === '' || utf8Bytes(key) > LIMITS.keyBytes) {
    throw new ApiError(400, 'invalid_parameter', `key must be 1 to ${LIMITS.keyBytes} bytes`);
  }
  return { ns: nsOf(c), key };
}

async function jsonBody<T>(c: Context, schema: z.ZodType<T, unknown>): Promise<T> {
  const text = await readBoundedText(c.req.raw, BODY_BYTES);
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
