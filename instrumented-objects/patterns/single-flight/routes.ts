// HTTP routes for the single_flight pattern, mounted at /objects/single_flight (see README.md).
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { ApiError, LIMITS, readBoundedText, textParam, utf8Bytes } from '../../../collector';
import { objectFor } from '../../kit';
import { LOADER_LIMITS, LOADERS } from './loaders';
import { MAX_TIMEOUT_MS, type TraceContext } from './object';

export const singleFlightRoutes = new Hono<{ Bindings: Env }>();

const DEFAULT_NS = 'demo.single_flight';

const loadBody = z.strictObject({
  loader: z.string().refine((name) => Object.hasOwn(LOADERS, name), {
    message: `must be one of ${Object.keys(LOADERS).join(', ')}`,
  }),
  params: z
    .strictObject({
      delayMs: z.number().int().min(0).max(LOADER_LIMITS.maxDelayMs).optional(),
      fail: z.string().min(1).max(LOADER_LIMITS.maxFailBytes).optional(),
      rounds: z.number().int().min(1).max(LOADER_LIMITS.maxRounds).optional(),
    })
    .optional(),
  requestId: z
    .string()
    .min(1)
    .refine((s) => utf8Bytes(s) <= LIMITS.requestIdBytes, {
      message: `must be at most ${LIMITS.requestIdBytes} UTF-8 bytes`,
    })
    .optional(),
  timeoutMs: z.number().int().min(1).max(MAX_TIMEOUT_MS).optional(),
});

async function body<T>(c: Context, schema: z.ZodType<T>): Promise<T> {
  const raw = await readBoundedText(c.req.raw, 4_096);
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

function target(c: Context) {
  const ns = textParam(c, 'ns', { maxBytes: LIMITS.nsBytes }) ?? DEFAULT_NS;
  const key = c.req.param('key')!;
  if (utf8Bytes(key) > LIMITS.keyBytes) {
    throw new ApiError(400, 'invalid_parameter', `key must be at most ${LIMITS.keyBytes} bytes`);
  }
  return { ns, key, object: objectFor((c.env as Env).SINGLE_FLIGHT, ns, key) };
}

singleFlightRoutes.post('/:key/load', async (c) => {
  const { ns, key, object } = target(c);
  const b = await body(c, loadBody);
  return c.json(await object.load({ ns, key, ...b, trace: trace(c) }));
});

singleFlightRoutes.get('/:key/inspect', async (c) => {
  const { object } = target(c);
  const id = textParam(c, 'requestId', { maxBytes: LIMITS.requestIdBytes });
  return c.json(await object.inspect(id));
});
