// HTTP routes for the counter pattern, mounted at /objects/counter (see README.md).
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { ApiError, LIMITS, textParam } from '../../../collector';
import { boundedText, jsonBody, objectFor, requestTarget, traceContext } from '../../kit';

export const counterRoutes = new Hono<{ Bindings: Env }>();

const incrementBody = z.strictObject({
  requestId: boundedText(LIMITS.requestIdBytes).optional(),
  by: z
    .number()
    .int()
    .refine((n) => Number.isSafeInteger(n), { message: 'must be a safe integer' })
    .optional(),
});

function target(c: Context) {
  const { ns, key } = requestTarget(c, 'counter');
  return { ns, key, object: objectFor((c.env as Env).COUNTER, ns, key) };
}

counterRoutes.post('/:key/increment', async (c) => {
  const { ns, key, object } = target(c);
  const b = await jsonBody(c, incrementBody, { maxBytes: 4_096, emptyIsObject: true });
  let answer: Awaited<ReturnType<typeof object.increment>>;
  try {
    answer = await object.increment({ ns, key, ...b, trace: traceContext(c) });
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
