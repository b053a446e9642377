// HTTP routes for the counter pattern, mounted at /objects/counter (see README.md).
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { ApiError, LIMITS, readBoundedText, textParam, utf8Bytes } from '../../../collector';
import { objectFor } from '../../kit';
import type { TraceContext } from './object';

export const counterRoutes = new Hono<{ Bindings: Env }>();

const DEFAULT_NS = 'demo.counter';

const incrementBody = z.strictObject({
  requestId: z
    .string()
    .min(1)
    .refine((s) => utf8Bytes(s) <= LIMITS.requestIdBytes, {
      message: `must be at most ${LIMITS.requestIdBytes} UTF-8 bytes`,
    })
    .optional(),
  by: z
    .number()
    .int()
    .refine((n) => Number.isSafeInteger(n), { message: 'must be a safe integer' })
    .optional(),
});

async function body<T>(c: Context, schema: z.ZodType<T>): Promise<T> {
  const raw = await readBoundedText(c.req.raw, 4_096);
  let json: unknown;
  try {
    json = raw === '' ? {} : JSON.parse(raw);
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

function target(c: Context) {
  const ns = textParam(c, 'ns', { maxBytes: LIMITS.nsBytes }) ?? DEFAULT_NS;
  const key = c.req.param('key')!;
  if (utf8Bytes(key) > LIMITS.keyBytes) {
    throw new ApiError(400, 'invalid_parameter', `key must be at most ${LIMITS.keyBytes} bytes`);
  }
  return { ns, key, object: objectFor((c.env as Env).COUNTER, ns, key) };
}

counterRoutes.post('/:key/increment', async (c) => {
  const { ns, key, object } = target(c);
  const b = await body(c, incrementBody);
  let answer: Awaited<ReturnType<typeof object.increment>>;
  try {
    answer = await object.increment({ ns, key, ...b, trace: trace(c) });
  } catch (err) {
    if (err instanceof RangeError) throw new ApiError(400, 'invalid_value', err.message);
    throw err;
  }
  if (answer.mismatch) {
    throw new ApiError(
      409,
      'conflict',
      `requestId ${b.requestId} already added ${answer.by}, not ${b.by ?? 1}; use a new requestId for another increment`,
    );
  }
  return c.json(answer);
});

counterRoutes.get('/:key', async (c) => {
  const { ns, key, object } = target(c);
  return c.json(await object.read({ ns, key }));
});

counterRoutes.get('/:key/inspect', async (c) => {
  const { object } = target(c);
  const id = textParam(c, 'requestId', { maxBytes: LIMITS.requestIdBytes });
  return c.json(await object.inspect(id));
});
