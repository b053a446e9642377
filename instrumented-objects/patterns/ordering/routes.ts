// HTTP routes for the ordering pattern, mounted at /objects/ordering (see README.md).
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { ApiError, intParam, LIMITS, readBoundedText, textParam, utf8Bytes } from '../../../collector';
import { objectFor } from '../../kit';
import { MAX_PAYLOAD_BYTES, type TraceContext, type WriteResult } from './object';

export const orderingRoutes = new Hono<{ Bindings: Env }>();

const DEFAULT_NS = 'demo.ordering';

const writeBody = z.strictObject({
  seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  payload: z.json().optional(),
  requestId: boundedText(LIMITS.requestIdBytes).optional(),
});

orderingRoutes.post('/:key/write', async (c) => {
  const { ns, key } = target(c);
  const body = await jsonBody(c, writeBody, MAX_PAYLOAD_BYTES + 1024);
  const result = await objectFor(c.env.ORDERING, ns, key).write({ ns, key, ...body, trace: traceOf(c) });
  return c.json(withError(result), statusOf(result));
});

orderingRoutes.get('/:key/log', async (c) => {
  const { ns, key } = target(c);
  const fromSeq = intParam(c, 'fromSeq', 1, 1, Number.MAX_SAFE_INTEGER);
  const limit = intParam(c, 'limit', 100, 1, 1000);
  return c.json(await objectFor(c.env.ORDERING, ns, key).read({ ns, key, fromSeq, limit }));
});

orderingRoutes.get('/:key/inspect', async (c) => {
  const { ns, key } = target(c);
  const requestId = textParam(c, 'requestId', { maxBytes: LIMITS.requestIdBytes });
  return c.json(await objectFor(c.env.ORDERING, ns, key).inspect(requestId));
});

function statusOf(r: WriteResult): 200 | 202 | 409 {
  if (r.decision === 'refused') return 409;
  return r.decision === 'buffered' || r.decision === 'gap' ? 202 : 200;
}

/** A refused write is the caller's to fix (resend from `expected`): say so in the error shape too. */
function withError(r: WriteResult) {
  if (r.decision !== 'refused') return r;
  return {
    ...r,
    error: {
      code: 'out_of_order',
      message: `seq ${r.seq} is more than ${r.maxAccepted - r.expected} ahead of the expected seq ${r.expected}; send ${r.expected} first`,
    },
  };
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
  if (key === '' || new TextEncoder().encode(key).byteLength > LIMITS.keyBytes) {
    throw new ApiError(400, 'invalid_parameter', `key must be 1 to ${LIMITS.keyBytes} bytes`);
  }
  const ns = textParam(c, 'ns', { maxBytes: LIMITS.nsBytes }) ?? DEFAULT_NS;
  return { ns, key };
}

async function jsonBody<T>(c: Context, schema: z.ZodType<T>, maxBytes: number): Promise<T> {
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
