// HTTP routes for the idempotency pattern, mounted at /objects/idempotency (see README.md).
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { ApiError, LIMITS, textParam, utf8Bytes } from '../../../collector';
import { boundedText, jsonBody, objectFor, requestTarget, traceContext } from '../../kit';
import { MAX_LEASE_MS, MAX_RESPONSE_BYTES, MAX_TTL_MS } from './object';

export const idempotencyRoutes = new Hono<{ Bindings: Env }>();

const requestId = boundedText(LIMITS.requestIdBytes);
const lease = boundedText(64);

const beginBody = z.strictObject({
  requestId,
  payloadHash: boundedText(128),
  leaseMs: z.number().int().min(1).max(MAX_LEASE_MS).optional(),
  ttlMs: z.number().int().min(1_000).max(MAX_TTL_MS).optional(),
});
const completeBody = z.strictObject({ requestId, lease, response: z.json() });
const failBody = z.strictObject({
  requestId,
  lease,
  error: boundedText(1_000),
  retryable: z.boolean().optional(),
});
const extendBody = z.strictObject({ requestId, lease, leaseMs: z.number().int().min(1).max(MAX_LEASE_MS) });
/** Room for the largest response plus the fields around it. */
const BODY = { maxBytes: MAX_RESPONSE_BYTES + 4_096 };

/** The object keeps responses as JSON text; over HTTP they are JSON again (`responseJson` → `response`). */
function reply(c: Context, answer: object): Response {
  return c.json(present(answer) as Record<string, unknown>);
}

function present(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(present);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'responseJson') out.response = typeof x === 'string' ? (JSON.parse(x) as unknown) : null;
    else out[k] = present(x);
  }
  return out;
}

function target(c: Context) {
  const { ns, key } = requestTarget(c, 'idempotency');
  return { ns, key, object: objectFor((c.env as Env).IDEMPOTENCY, ns, key) };
}

idempotencyRoutes.post('/:key/begin', async (c) => {
  const { ns, key, object } = target(c);
  const b = await jsonBody(c, beginBody, BODY);
  return reply(c, await object.begin({ ns, key, ...b, trace: traceContext(c) }));
});

idempotencyRoutes.post('/:key/complete', async (c) => {
  const { ns, key, object } = target(c);
  const b = await jsonBody(c, completeBody, BODY);
  if (utf8Bytes(JSON.stringify(b.response)) > MAX_RESPONSE_BYTES) {
    throw new ApiError(
      413,
      'payload_too_large',
      `response must be at most ${MAX_RESPONSE_BYTES} bytes of JSON`,
    );
  }
  const { response, ...rest } = b;
  return reply(
    c,
    await object.complete({
      ns,
      key,
      ...rest,
      responseJson: JSON.stringify(response),
      trace: traceContext(c),
    }),
  );
});

idempotencyRoutes.post('/:key/fail', async (c) => {
  const { ns, key, object } = target(c);
  const b = await jsonBody(c, failBody, BODY);
  return reply(c, await object.fail({ ns, key, ...b, trace: traceContext(c) }));
});

idempotencyRoutes.post('/:key/extend', async (c) => {
  const { ns, key, object } = target(c);
  const b = await jsonBody(c, extendBody, BODY);
  return reply(c, await object.extend({ ns, key, ...b }));
});

idempotencyRoutes.get('/:key/inspect', async (c) => {
  const { object } = target(c);
  const id = textParam(c, 'requestId', { maxBytes: LIMITS.requestIdBytes });
  return reply(c, await object.inspect(id));
});
