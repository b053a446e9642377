// HTTP routes for the ordering pattern, mounted at /objects/ordering (see README.md).
import { Hono } from 'hono';
import { z } from 'zod';
import { intParam, LIMITS, textParam } from '../../../collector';
import { boundedText, jsonBody, objectFor, requestTarget, traceContext } from '../../kit';
import { MAX_PAYLOAD_BYTES, type WriteResult } from './object';

export const orderingRoutes = new Hono<{ Bindings: Env }>();

const writeBody = z.strictObject({
  seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  payload: z.json().optional(),
  requestId: boundedText(LIMITS.requestIdBytes).optional(),
});

orderingRoutes.post('/:key/write', async (c) => {
  const { ns, key } = requestTarget(c, 'ordering');
  const body = await jsonBody(c, writeBody, { maxBytes: MAX_PAYLOAD_BYTES + 1024, emptyIsObject: true });
  const result = await objectFor(c.env.ORDERING, ns, key).write({ ns, key, ...body, trace: traceContext(c) });
  return c.json(withError(result), statusOf(result));
});

orderingRoutes.get('/:key/log', async (c) => {
  const { ns, key } = requestTarget(c, 'ordering');
  const fromSeq = intParam(c, 'fromSeq', 1, 1, Number.MAX_SAFE_INTEGER);
  const limit = intParam(c, 'limit', 100, 1, 1000);
  return c.json(await objectFor(c.env.ORDERING, ns, key).read({ ns, key, fromSeq, limit }));
});

orderingRoutes.get('/:key/inspect', async (c) => {
  const { ns, key } = requestTarget(c, 'ordering');
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
