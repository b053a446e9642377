// The Pay-button demo: a payment endpoint that charges exactly once per Idempotency-Key, built
// from the pattern objects — the idempotency ledger of the order guards the charge, and the charge
// itself is two counters of the order (charges, total), each incremented with the key as requestId.
//
//   POST /demo/pay/:orderId   Idempotency-Key: <key>   {"amount": n}
//     200 {"status":"charged","chargeId","orderId","amount","replayed":false}   the first request
//     200 {... the same chargeId ..., "replayed":true}                          every retry after it
//     409 {"error":{"code":"in_flight"}} + Retry-After                          a retry while the first runs
//     409 {"error":{"code":"idempotency_conflict"}}                             the same key, another amount
//     400 no Idempotency-Key, bad JSON, bad amount
//   GET /demo/pay/:orderId → {"orderId","charges","total"}
//
// Why the charge is idempotent on its own too: if the request that owns the key dies mid-charge,
// its lease lapses and a retry takes over (see the idempotency README); the counters then answer
// `duplicate` for whatever the dead owner already did, so the order is still charged once.
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { ApiError, errorBody, requireToken } from '../../collector';
import { jsonBody, objectFor, traceContext } from '../kit';

export const PAY_NS = 'demo.pay';
export const CHARGES_NS = 'demo.pay.charges';
export const TOTAL_NS = 'demo.pay.total';
/** How long a request may own its key before a retry may take over (the charge takes milliseconds). */
const LEASE_MS = 10_000;
export const MAX_AMOUNT = 1_000_000_000;

export type PayResponse = {
  status: 'charged';
  chargeId: string;
  orderId: string;
  amount: number;
  replayed: boolean;
};

export const payDemoRoutes = new Hono<{ Bindings: Env }>();

payDemoRoutes.use('/demo/*', requireToken('KEYWARDEN_API_TOKEN'));

// Standalone (and in tests) the Worker's onError is not there to render our 4xx; mounted, this
// handler runs first and passes anything else on to it.
payDemoRoutes.onError((err, c) => {
  if (err instanceof ApiError) return c.json(errorBody(err.code, err.message), err.status);
  throw err;
});

const orderIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;
const idempotencyKeyPattern = /^[\x21-\x7e]{1,255}$/;
const payBody = z.strictObject({ amount: z.number().int().min(1).max(MAX_AMOUNT) });

function orderKey(c: Context): { orderId: string; key: string } {
  const orderId = c.req.param('orderId') ?? '';
  if (!orderIdPattern.test(orderId)) {
    throw new ApiError(400, 'invalid_order', 'orderId must be 1–128 characters of A-Z a-z 0-9 . _ : -');
  }
  return { orderId, key: `order:${orderId}` };
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

payDemoRoutes.post('/demo/pay/:orderId', async (c) => {
  const { orderId, key } = orderKey(c);
  const requestId = c.req.header('idempotency-key');
  if (requestId === undefined || requestId === '') {
    throw new ApiError(
      400,
      'missing_idempotency_key',
      'send an Idempotency-Key header: the same one on every retry',
    );
  }
  if (!idempotencyKeyPattern.test(requestId)) {
    throw new ApiError(
      400,
      'invalid_idempotency_key',
      'Idempotency-Key must be 1–255 printable ASCII characters',
    );
  }
  const { amount } = await jsonBody(c, payBody, {
    maxBytes: 1_024,
    expected: '{"amount": <positive integer>}',
    invalid: {
      code: 'invalid_amount',
      message: `the body must be {"amount": <integer from 1 to ${MAX_AMOUNT}>}`,
    },
  });
  const env = c.env;
  const t = traceContext(c);
  const ledger = objectFor(env.IDEMPOTENCY, PAY_NS, key);
  const target = { ns: PAY_NS, key, requestId, trace: t };

  const begun = await ledger.begin({
    ...target,
    payloadHash: await sha256(JSON.stringify({ orderId, amount })),
    leaseMs: LEASE_MS,
  });
  switch (begun.decision) {
    case 'duplicate':
      return c.json(replay(begun.responseJson));
    case 'in_flight':
      return inFlight(c, begun.retryAfterMs);
    case 'conflict':
      throw new ApiError(
        409,
        'idempotency_conflict',
        'this Idempotency-Key was used for another payment; use a new key for a new payment',
      );
    case 'failed':
      throw new ApiError(409, 'payment_failed', `this payment failed for good: ${begun.error}`);
  }

  // This request owns the key: charge, then record the answer every retry will get.
  const chargeId = `ch_${crypto.randomUUID().replaceAll('-', '').slice(0, 24)}`;
  try {
    await objectFor(env.COUNTER, CHARGES_NS, key).increment({
      ns: CHARGES_NS,
      key,
      requestId,
      by: 1,
      trace: t,
    });
    await objectFor(env.COUNTER, TOTAL_NS, key).increment({
      ns: TOTAL_NS,
      key,
      requestId,
      by: amount,
      trace: t,
    });
  } catch (err) {
    // Retryable: both increments are keyed by the requestId, so a retry completes what is missing.
    await ledger.fail({ ...target, lease: begun.lease, error: String(err), retryable: true });
    throw err;
  }
  const response: PayResponse = { status: 'charged', chargeId, orderId, amount, replayed: false };
  const settled = await ledger.complete({
    ...target,
    lease: begun.lease,
    responseJson: JSON.stringify(response),
  });
  if (settled.decision === 'lease_lost') {
    // We were too slow and another request took the key over: its answer is the one that counts.
    if (settled.entry?.state === 'applied') return c.json(replay(settled.entry.responseJson));
    return inFlight(c, 1_000);
  }
  return c.json(response);
});

payDemoRoutes.get('/demo/pay/:orderId', async (c) => {
  const { orderId, key } = orderKey(c);
  const [charges, total] = await Promise.all([
    objectFor(c.env.COUNTER, CHARGES_NS, key).read({ ns: CHARGES_NS, key }),
    objectFor(c.env.COUNTER, TOTAL_NS, key).read({ ns: TOTAL_NS, key }),
  ]);
  return c.json({ orderId, charges: charges.value, total: total.value });
});

function replay(responseJson: string | null): PayResponse {
  return { ...(JSON.parse(responseJson ?? 'null') as PayResponse), replayed: true };
}

function inFlight(c: Context, retryAfterMs: number): Response {
  c.header('Retry-After', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
  return c.json(
    errorBody(
      'in_flight',
      'a payment with this Idempotency-Key is being processed; retry it after Retry-After seconds',
    ),
    409,
  );
}
