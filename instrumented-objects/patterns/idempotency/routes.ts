// HTTP routes for the idempotency pattern, mounted at /objects/idempotency (see README.md).
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { ApiError, LIMITS, readBoundedText, textParam, utf8Bytes } from '../../../collector';
import { objectFor } from '../../kit';
import { MAX_LEASE_MS, MAX_RESPONSE_BYTES, MAX_TTL_MS, type TraceContext } from './object';

export const idempotencyRoutes = new Hono<{ Bindings: Env }>();

const DEFAULT_NS = 'demo.idempotency';

const text = (max: number) =>
  z
    .string()
    .min(1)
    .refine((s) => utf8Bytes(s) <= max, { message: `must be at most ${max} UTF-8 bytes` });
const requestId = text(LIMITS.requestIdBytes);
const lease = text(64);

const beginBody = z.strictObject({
  requestId,
  payloadHash: text(128),
  leaseMs: z.number().int().min(1).max(MAX_LEASE_MS).optional(),
  ttlMs: z.number().int().min(1_000).max(MAX_TTL_MS).optional(),
});
const completeBody = z.strictObject({ requestId, lease, response: z.json() });
const failBody = z.strictObject({
  requestId,
  lease,
  error: text(1_000),
  retryable: z.boolean().optional(),
});
const extendBody = z.strictObject({ requestId, lease, leaseMs: z.number().int().min(1).max(MAX_LEASE_MS) });

async function body<T>(c: Context, schema: z.ZodType<T>): Promise<T> {
  const raw = await readBoundedText(c.req.raw, MAX_RESPONSE_BYTES + 4_096);
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new ApiError(400, 'invalid_json', 'the body must be a JSON object');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ApiError(400, 'invalid_body', `${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  return parsed.data;
}

/** The W3C trace context of the request, if it sent one, to stamp on the decision's event. */
function trace(c: Context): TraceContext | undefined {
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/.exec(c.req.header('traceparent') ?? '');
  return m ? { traceId: m[1]!, spanId: m[2]! } : undefined;
}

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
  const ns = textParam(c, 'ns', { maxBytes: LIMITS.nsBytes }) ?? DEFAULT_NS;
  const key = c.req.param('key')!;
  if (utf8Bytes(key) > LIMITS.keyBytes) {
    throw new ApiError(400, 'invalid_parameter', `key must be at most ${LIMITS.keyBytes} bytes`);
  }
  return { ns, key, object: objectFor((c.env as Env).IDEMPOTENCY, ns, key) };
}

idempotencyRoutes.post('/:key/begin', async (c) => {
  const { ns, key, object } = target(c);
  const b = await body(c, beginBody);
  return reply(c, await object.begin({ ns, key, ...b, trace: trace(c) }));
});

idempotencyRoutes.post('/:key/complete', async (c) => {
  const { ns, key, object } = target(c);
  const b = await body(c, completeBody);
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
    await object.complete({ ns, key, ...rest, responseJson: JSON.stringify(response), trace: trace(c) }),
  );
});

idempotencyRoutes.post('/:key/fail', async (c) => {
  const { ns, key, object } = target(c);
  const b = await body(c, failBody);
  return reply(c, await object.fail({ ns, key, ...b, trace: trace(c) }));
});

idempotencyRoutes.post('/:key/extend', async (c) => {
  const { ns, key, object } = target(c);
  const b = await body(c, extendBody);
  return reply(c, await object.extend({ ns, key, ...b }));
});

idempotencyRoutes.get('/:key/inspect', async (c) => {
  const { object } = target(c);
  const id = textParam(c, 'requestId', { maxBytes: LIMITS.requestIdBytes });
  return reply(c, await object.inspect(id));
});
