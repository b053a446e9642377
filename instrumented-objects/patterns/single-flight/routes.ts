// HTTP routes for the single_flight pattern, mounted at /objects/single_flight (see README.md).
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { LIMITS, textParam } from '../../../collector';
import { boundedText, jsonBody, objectFor, requestTarget, traceContext } from '../../kit';
import { LOADER_LIMITS, LOADERS } from './loaders';
import { MAX_TIMEOUT_MS } from './object';

export const singleFlightRoutes = new Hono<{ Bindings: Env }>();

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
  requestId: boundedText(LIMITS.requestIdBytes).optional(),
  timeoutMs: z.number().int().min(1).max(MAX_TIMEOUT_MS).optional(),
});

function target(c: Context) {
  const { ns, key } = requestTarget(c, 'single_flight');
  return { ns, key, object: objectFor((c.env as Env).SINGLE_FLIGHT, ns, key) };
}

singleFlightRoutes.post('/:key/load', async (c) => {
  const { ns, key, object } = target(c);
  const b = await jsonBody(c, loadBody, { maxBytes: 4_096 });
  return c.json(await object.load({ ns, key, ...b, trace: traceContext(c) }));
});

singleFlightRoutes.get('/:key/inspect', async (c) => {
  const { object } = target(c);
  const id = textParam(c, 'requestId', { maxBytes: LIMITS.requestIdBytes });
  return c.json(await object.inspect(id));
});
