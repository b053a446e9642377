// HTTP routes for the lock pattern, mounted at /objects/lock (see README.md).
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { intParam, LIMITS, textParam } from '../../../collector';
import { boundedText, jsonBody, objectFor, requestTarget, traceContext } from '../../kit';
import { type GuardedWriteResult, LOCK_BOUNDS, type ReleaseResult } from './object';

export const lockRoutes = new Hono<{ Bindings: Env }>();

const SMALL_BODY = { maxBytes: 4096, emptyIsObject: true };

const ms = (min: number, max: number) => z.number().int().min(min).max(max);
const token = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

const acquireBody = z.strictObject({
  requestId: boundedText(LIMITS.requestIdBytes).optional(),
  ttlMs: ms(1, LOCK_BOUNDS.ttlMs).optional(),
  waitMs: ms(0, LOCK_BOUNDS.waitMs).optional(),
  pollMs: ms(0, LOCK_BOUNDS.pollMs).optional(),
});
const releaseBody = z.strictObject({ token });
const writeBody = z.strictObject({
  token,
  payload: z.json(),
  requestId: boundedText(LIMITS.requestIdBytes).optional(),
});

lockRoutes.post('/:key/acquire', async (c) => {
  const { ns, key } = requestTarget(c, 'lock');
  const input = await jsonBody(c, acquireBody, SMALL_BODY);
  const r = await objectFor(c.env.LOCK, ns, key).acquire({ ns, key, ...input, trace: traceContext(c) });
  if (r.acquired) return c.json(r, 200);
  if (r.decision === 'released' || r.decision === 'expired') {
    const error = {
      code: 'lease_ended',
      message: `${r.requestId} already held the lock (${r.decision}); acquire with a new requestId`,
    };
    return c.json({ ...r, error }, 409);
  }
  if (r.decision === 'waited') {
    // Still queued: poll again with the same requestId to keep the place.
    c.header('Retry-After', '0');
    return c.json(r, 202);
  }
  const error = {
    code: 'lock_timeout',
    message: `the lock was not free within waitMs; ${r.requestId} left the queue`,
  };
  return c.json({ ...r, error }, 409);
});

lockRoutes.post('/:key/release', async (c) => {
  const { ns, key } = requestTarget(c, 'lock');
  const input = await jsonBody(c, releaseBody, SMALL_BODY);
  return fencedOr(
    c,
    await objectFor(c.env.LOCK, ns, key).release({ ns, key, ...input, trace: traceContext(c) }),
  );
});

lockRoutes.post('/:key/write', async (c) => {
  const { ns, key } = requestTarget(c, 'lock');
  const input = await jsonBody(c, writeBody, {
    maxBytes: LOCK_BOUNDS.payloadBytes + 1024,
    emptyIsObject: true,
  });
  return fencedOr(
    c,
    await objectFor(c.env.LOCK, ns, key).write({ ns, key, ...input, trace: traceContext(c) }),
  );
});

lockRoutes.get('/:key/record', async (c) => {
  const { ns, key } = requestTarget(c, 'lock');
  const limit = intParam(c, 'limit', 100, 1, 1000);
  return c.json(await objectFor(c.env.LOCK, ns, key).record({ ns, key, limit }));
});

lockRoutes.get('/:key/inspect', async (c) => {
  const { ns, key } = requestTarget(c, 'lock');
  const requestId = textParam(c, 'requestId', { maxBytes: LIMITS.requestIdBytes });
  return c.json(await objectFor(c.env.LOCK, ns, key).inspect(requestId));
});

/** A release or write under a token that is not the live holder's: 409 `fenced`, saying why. */
function fencedOr(c: Context, r: ReleaseResult | GuardedWriteResult): Response {
  if (!('decision' in r) || r.decision !== 'fenced') return c.json(r);
  const why = {
    expired: 'its lease expired',
    stale: 'a later token was issued',
    unknown: 'it was never issued here',
  };
  const error = { code: 'fenced', message: `token ${r.token} is not the lock holder's: ${why[r.reason]}` };
  return c.json({ ...r, error }, 409);
}
