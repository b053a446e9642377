import { abortAllDurableObjects, env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { objectFor } from '../kit';
import { CHARGES_NS, PAY_NS, type PayResponse, payDemoRoutes } from '.';

const AUTH = { authorization: 'Bearer test-api-token' };
type ErrorBody = { error: { code: string; message: string } };

function pay(
  orderId: string,
  body: unknown,
  idempotencyKey?: string,
  headers: Record<string, string> = AUTH,
) {
  const h: Record<string, string> = { ...headers, 'content-type': 'application/json' };
  if (idempotencyKey !== undefined) h['idempotency-key'] = idempotencyKey;
  return payDemoRoutes.request(
    `http://keywarden.test/demo/pay/${orderId}`,
    { method: 'POST', headers: h, body: typeof body === 'string' ? body : JSON.stringify(body) },
    env,
  );
}

async function order(orderId: string): Promise<{ orderId: string; charges: number; total: number }> {
  const res = await payDemoRoutes.request(
    `http://keywarden.test/demo/pay/${orderId}`,
    { headers: AUTH },
    env,
  );
  expect(res.status).toBe(200);
  return res.json();
}

describe('the Pay-button demo', () => {
  it('charges once and replays the same charge to every retry, also after a restart', async () => {
    const first = await pay('o-1', { amount: 1250 }, 'key-1');
    expect(first.status).toBe(200);
    const charged = (await first.json()) as PayResponse;
    expect(charged).toMatchObject({ status: 'charged', orderId: 'o-1', amount: 1250, replayed: false });
    expect(charged.chargeId).toMatch(/^ch_[0-9a-f]{24}$/);
    const retry = await pay('o-1', { amount: 1250 }, 'key-1');
    expect(retry.status).toBe(200);
    expect(await retry.json()).toEqual({ ...charged, replayed: true });
    await abortAllDurableObjects();
    expect(await (await pay('o-1', { amount: 1250 }, 'key-1')).json()).toEqual({
      ...charged,
      replayed: true,
    });
    expect(await order('o-1')).toEqual({ orderId: 'o-1', charges: 1, total: 1250 });
    // Check: another key is another payment.
    const second = (await (await pay('o-1', { amount: 50 }, 'key-2')).json()) as PayResponse;
    expect(second.chargeId).not.toBe(charged.chargeId);
    expect(await order('o-1')).toEqual({ orderId: 'o-1', charges: 2, total: 1300 });
  });

  it('charges exactly once for 50 concurrent requests with one Idempotency-Key', async () => {
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => pay('o-50', { amount: 999 }, 'burst')),
    );
    const bodies = await Promise.all(
      responses.map(async (r) => ({
        status: r.status,
        retryAfter: r.headers.get('retry-after'),
        body: await r.json(),
      })),
    );
    // Contract: every answer is the charge (first or replayed) or a 409 in_flight with Retry-After.
    const charged = bodies.filter((b) => b.status === 200).map((b) => b.body as PayResponse);
    const busy = bodies.filter((b) => b.status === 409);
    expect(charged.length + busy.length).toBe(50);
    expect(charged.filter((b) => !b.replayed)).toHaveLength(1);
    const chargeId = charged.find((b) => !b.replayed)!.chargeId;
    for (const b of charged) expect(b).toMatchObject({ status: 'charged', chargeId, amount: 999 });
    for (const b of busy) {
      expect((b.body as ErrorBody).error.code).toBe('in_flight');
      expect(Number(b.retryAfter)).toBeGreaterThanOrEqual(1);
    }
    expect(await order('o-50')).toEqual({ orderId: 'o-50', charges: 1, total: 999 });
    // Check: the ones told to retry get the same charge when they do.
    const retried = await Promise.all(busy.map(() => pay('o-50', { amount: 999 }, 'burst')));
    for (const r of retried) {
      expect(r.status).toBe(200);
      expect(await r.json()).toMatchObject({ chargeId, replayed: true });
    }
    expect(await order('o-50')).toEqual({ orderId: 'o-50', charges: 1, total: 999 });
  });

  it('refuses the same key with another amount (409) and charges nothing for it', async () => {
    await pay('o-conflict', { amount: 10 }, 'k');
    const res = await pay('o-conflict', { amount: 11 }, 'k');
    expect(res.status).toBe(409);
    expect(((await res.json()) as ErrorBody).error.code).toBe('idempotency_conflict');
    expect(await order('o-conflict')).toEqual({ orderId: 'o-conflict', charges: 1, total: 10 });
  });

  it('finishes the charge once when the request that owned the key died mid-charge', async () => {
    const orderId = 'o-crash';
    const key = `order:${orderId}`;
    // A request began, charged one counter of two, and died: its lease is all that is left of it.
    const digest = await crypto.subtle.digest(
      'SHA-256',
      new TextEncoder().encode(JSON.stringify({ orderId, amount: 700 })),
    );
    const payloadHash = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
    const ledger = objectFor(env.IDEMPOTENCY, PAY_NS, key);
    const dead = await ledger.begin({ ns: PAY_NS, key, requestId: 'crash-key', payloadHash, leaseMs: 200 });
    expect(dead.decision).toBe('proceed');
    await objectFor(env.COUNTER, CHARGES_NS, key).increment({ ns: CHARGES_NS, key, requestId: 'crash-key' });
    // While its lease runs, a retry is told to come back.
    const early = await pay(orderId, { amount: 700 }, 'crash-key');
    expect(early.status).toBe(409);
    expect(early.headers.get('retry-after')).toBe('1');
    await new Promise((r) => setTimeout(r, 250));
    const res = await pay(orderId, { amount: 700 }, 'crash-key');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'charged', replayed: false });
    // Check: one charge, the full amount — the dead request's half is not counted twice.
    expect(await order(orderId)).toEqual({ orderId, charges: 1, total: 700 });
    expect(await ledger.inspect('crash-key')).toMatchObject({ state: 'applied', attempts: 2 });
  });

  it('refuses bad requests with a 4xx that says what to fix', async () => {
    const cases: [Response, number, string][] = [
      [await pay('o-bad', { amount: 1 }), 400, 'missing_idempotency_key'],
      [await pay('o-bad', { amount: 1 }, ''), 400, 'missing_idempotency_key'],
      [await pay('o-bad', { amount: 1 }, 'has space'), 400, 'invalid_idempotency_key'],
      [await pay('o-bad', '{"amount":', 'b1'), 400, 'invalid_json'],
      [await pay('o-bad', '', 'b1'), 400, 'invalid_json'],
      [await pay('o-bad', { amount: 0 }, 'b1'), 400, 'invalid_amount'],
      [await pay('o-bad', { amount: -5 }, 'b1'), 400, 'invalid_amount'],
      [await pay('o-bad', { amount: 1.5 }, 'b1'), 400, 'invalid_amount'],
      [await pay('o-bad', { amount: '10' }, 'b1'), 400, 'invalid_amount'],
      [await pay('o-bad', { amount: 1e10 }, 'b1'), 400, 'invalid_amount'],
      [await pay('o-bad', { amount: 1, currency: 'EUR' }, 'b1'), 400, 'invalid_amount'],
      [await pay('o-bad', [1], 'b1'), 400, 'invalid_amount'],
      [await pay('o%20bad', { amount: 1 }, 'b1'), 400, 'invalid_order'],
      [await pay('o-bad', { amount: 1 }, 'b1', {}), 401, 'unauthorized'],
      [await pay('o-bad', { amount: 1 }, 'b1', { authorization: 'Bearer wrong' }), 401, 'unauthorized'],
      [await payDemoRoutes.request('http://keywarden.test/demo/pay/o-bad', {}, env), 401, 'unauthorized'],
    ];
    for (const [res, status, code] of cases) {
      expect(res.status).toBe(status);
      expect(((await res.json()) as ErrorBody).error.code).toBe(code);
    }
    // Check: nothing was charged by any of them.
    expect(await order('o-bad')).toEqual({ orderId: 'o-bad', charges: 0, total: 0 });
  });
});
