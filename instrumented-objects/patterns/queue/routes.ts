// HTTP routes for the queue pattern (see README.md): the application's, mounted at /objects/queue,
// and the operator's, which change how a queue delivers, mounted at /ops/objects/queue.
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { ApiError, intParam, LIMITS, textParam } from '../../../collector';
import { boundedText, jsonBody, objectFor, requestTarget, traceContext } from '../../kit';
import { type AckResult, type NackResult, QUEUE_BOUNDS } from './object';

export const queueRoutes = new Hono<{ Bindings: Env }>();
/** Retry policy and redrives change what every consumer of a queue gets: the operator's to do. */
export const queueOpsRoutes = new Hono<{ Bindings: Env }>();

const SMALL_BODY = { maxBytes: 4096, emptyIsObject: true };

const messageId = () => boundedText(LIMITS.requestIdBytes);
const ms = (min: number, max: number) => z.number().int().min(min).max(max);

const enqueueBody = z.strictObject({
  body: z.json(),
  id: messageId().optional(),
  delayMs: ms(0, QUEUE_BOUNDS.delayMs).optional(),
});
const receiveBody = z.strictObject({
  max: z.number().int().min(1).max(QUEUE_BOUNDS.receive).optional(),
  leaseMs: ms(1, QUEUE_BOUNDS.leaseMs).optional(),
});
const leaseBody = z.strictObject({ id: messageId(), leaseToken: z.string().min(1).max(64) });
const redriveBody = z.strictObject({ id: messageId() });
const configBody = z.strictObject({
  maxAttempts: z.number().int().min(1).max(QUEUE_BOUNDS.maxAttempts).optional(),
  leaseMs: ms(1, QUEUE_BOUNDS.leaseMs).optional(),
  backoffBaseMs: ms(0, QUEUE_BOUNDS.backoffMs).optional(),
  backoffCapMs: ms(0, QUEUE_BOUNDS.backoffMs).optional(),
});

queueRoutes.post('/:key/enqueue', async (c) => {
  const { ns, key } = requestTarget(c, 'queue');
  const input = await jsonBody(c, enqueueBody, {
    maxBytes: QUEUE_BOUNDS.bodyBytes + 1024,
    emptyIsObject: true,
  });
  const result = await objectFor(c.env.QUEUE, ns, key).enqueue({ ns, key, ...input, trace: traceContext(c) });
  return c.json(result, result.duplicate ? 200 : 201);
});

queueRoutes.post('/:key/receive', async (c) => {
  const { ns, key } = requestTarget(c, 'queue');
  const input = await jsonBody(c, receiveBody, SMALL_BODY);
  return c.json(await objectFor(c.env.QUEUE, ns, key).receive({ ns, key, ...input, trace: traceContext(c) }));
});

queueRoutes.post('/:key/ack', async (c) => {
  const { ns, key } = requestTarget(c, 'queue');
  const input = await jsonBody(c, leaseBody, SMALL_BODY);
  return refusedOr(
    c,
    await objectFor(c.env.QUEUE, ns, key).ack({ ns, key, ...input, trace: traceContext(c) }),
  );
});

queueRoutes.post('/:key/nack', async (c) => {
  const { ns, key } = requestTarget(c, 'queue');
  const input = await jsonBody(c, leaseBody, SMALL_BODY);
  return refusedOr(
    c,
    await objectFor(c.env.QUEUE, ns, key).nack({ ns, key, ...input, trace: traceContext(c) }),
  );
});

queueRoutes.get('/:key/dead-letters', async (c) => {
  const { ns, key } = requestTarget(c, 'queue');
  const limit = intParam(c, 'limit', 100, 1, 1000);
  return c.json(await objectFor(c.env.QUEUE, ns, key).deadLetters({ ns, key, limit }));
});

queueRoutes.get('/:key/inspect', async (c) => {
  const { ns, key } = requestTarget(c, 'queue');
  const requestId = textParam(c, 'requestId', { maxBytes: LIMITS.requestIdBytes });
  return c.json(await objectFor(c.env.QUEUE, ns, key).inspect(requestId));
});

queueOpsRoutes.post('/:key/redrive', async (c) => {
  const { ns, key } = requestTarget(c, 'queue');
  const { id } = await jsonBody(c, redriveBody, SMALL_BODY);
  const result = await objectFor(c.env.QUEUE, ns, key).redrive({ ns, key, id, trace: traceContext(c) });
  if ('reason' in result) throw new ApiError(404, 'not_dead', `no dead letter with id ${id}`);
  return c.json(result);
});

/** The queue's config: readable by the application and the operator, set only by the operator. */
async function queueConfig(c: Context<{ Bindings: Env }>) {
  const { ns, key } = requestTarget(c, 'queue');
  return c.json(await objectFor(c.env.QUEUE, ns, key).config({ ns, key }));
}

queueRoutes.get('/:key/config', queueConfig);
queueOpsRoutes.get('/:key/config', queueConfig);

queueOpsRoutes.put('/:key/config', async (c) => {
  const { ns, key } = requestTarget(c, 'queue');
  const config = await jsonBody(c, configBody, SMALL_BODY);
  return c.json(await objectFor(c.env.QUEUE, ns, key).configure({ ns, key, config }));
});

const REFUSALS = {
  stale_lease: [409, 'another delivery of this message holds the lease; this token is stale'],
  lease_expired: [409, 'this lease lapsed; the message was retried and will be delivered again'],
  already_acked: [409, 'the message was already acked under another lease'],
  dead_lettered: [409, 'the message is in the dead-letter table'],
  not_found: [404, 'no such message in this queue'],
} as const;

/** An ack or nack that did not apply: a 409 (or 404) naming why, with the object's answer. */
function refusedOr(c: Context, result: AckResult | NackResult): Response {
  if (!('reason' in result)) return c.json(result);
  const [status, message] = REFUSALS[result.reason];
  return c.json({ ...result, error: { code: result.reason, message } }, status);
}
