import { abortAllDurableObjects, env, runDurableObjectAlarm, SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { Collector } from '../../../collector';
import { type CallRecord, flushTelemetry, runConformance } from '../../conformance';
import { objectFor } from '../../kit';
import type { BeginResult, SettleResult } from './object';

const NS = 'test.idempotency';
const ledger = (key: string, ns = NS) => objectFor(env.IDEMPOTENCY, ns, key);
const AUTH = { authorization: 'Bearer test-api-token' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function trail(requestId: string) {
  return (await new Collector(env).lookup(requestId)).filter((e) => e.pattern === 'idempotency');
}

// The side effect the ledger guards: a counter bumped with a fresh id per execution, so it is NOT
// deduped by itself — if the ledger let a request through twice, the counter would show it.
const sideEffects = (key: string) => objectFor(env.COUNTER, 'test.idempotency.side-effects', key);

type Outcome = Exclude<BeginResult, { decision: 'proceed' }> | SettleResult;

runConformance({
  pattern: 'idempotency',
  callers: 16,
  object: (ns, key) => objectFor(env.IDEMPOTENCY, ns, key),
  operation: async (object, call): Promise<Outcome> => {
    const target = { ns: call.ns, key: call.key, requestId: call.requestId };
    const begun = await object.begin({ ...target, payloadHash: `hash-of-${call.requestId}` });
    if (begun.decision !== 'proceed') return begun;
    const effect = await sideEffects(call.key).increment({
      ns: 'test.idempotency.side-effects',
      key: call.key,
      requestId: crypto.randomUUID(),
    });
    return object.complete({
      ...target,
      lease: begun.lease,
      responseJson: JSON.stringify({ effect: effect.value, by: call.caller }),
    });
  },
  check: async ({ key, byRequest, inspect }) => {
    // Check: never applied twice — the side effect ran exactly once per distinct request.
    const effects = await sideEffects(key).read({ ns: 'test.idempotency.side-effects', key });
    expect(effects.value).toBe(byRequest.size);
    for (const [requestId, tries] of byRequest) {
      const ok = tries.filter((c): c is CallRecord<Outcome> & { ok: true } => c.ok);
      const applied = ok.filter((c) => c.result.decision === 'applied');
      expect(applied, requestId).toHaveLength(1);
      const response =
        applied[0]!.result.decision === 'applied' ? applied[0]!.result.entry.responseJson : null;
      for (const c of ok) {
        // Check: every other answer is a replay of that response, or "in flight" while it was.
        expect(['applied', 'duplicate', 'in_flight']).toContain(c.result.decision);
        if (c.result.decision === 'duplicate') expect(c.result.responseJson).toBe(response);
        if (c.result.decision === 'in_flight') expect(c.seq).toBeLessThan(applied[0]!.seq + 1);
      }
    }
    expect(inspect).toMatchObject({
      entries: byRequest.size,
      byState: { applied: byRequest.size, in_flight: 0, failed: 0 },
      oldestInFlight: null,
    });
  },
});

describe('the idempotency object', () => {
  it('applies a request once and replays its response to every retry, also after a restart', async () => {
    const key = 'order:replay';
    const target = { ns: NS, key, requestId: 'pay-1' };
    const begun = await ledger(key).begin({ ...target, payloadHash: 'h1' });
    expect(begun).toMatchObject({ decision: 'proceed', attempt: 1, takeover: false });
    if (begun.decision !== 'proceed') throw new Error('unreachable');
    const done = await ledger(key).complete({
      ...target,
      lease: begun.lease,
      responseJson: '{"chargeId":"ch_1"}',
    });
    expect(done).toMatchObject({ decision: 'applied', entry: { state: 'applied', attempts: 1 } });
    expect(await ledger(key).begin({ ...target, payloadHash: 'h1' })).toMatchObject({
      decision: 'duplicate',
      responseJson: '{"chargeId":"ch_1"}',
    });
    // Check: a settle retried by its owner (its answer was lost) answers the same, once.
    expect(
      await ledger(key).complete({ ...target, lease: begun.lease, responseJson: '{"chargeId":"other"}' }),
    ).toMatchObject({ decision: 'applied', entry: { responseJson: '{"chargeId":"ch_1"}' } });
    await flushTelemetry(ledger(key));
    await abortAllDurableObjects();
    expect(await ledger(key).begin({ ...target, payloadHash: 'h1' })).toMatchObject({
      decision: 'duplicate',
      responseJson: '{"chargeId":"ch_1"}',
    });
    const entry = await ledger(key).inspect('pay-1');
    expect(entry).toMatchObject({
      found: true,
      requestId: 'pay-1',
      ns: NS,
      key,
      state: 'applied',
      payloadHash: 'h1',
      responseJson: '{"chargeId":"ch_1"}',
      attempts: 1,
      leaseUntil: null,
    });
    expect(await ledger(key).inspect('never-sent')).toEqual({ found: false, requestId: 'never-sent' });
  });

  it('answers a concurrent duplicate in_flight at once, and the same id with another payload conflict', async () => {
    const key = 'order:busy';
    const target = { ns: NS, key, requestId: 'pay-2' };
    // Concurrent calls arrive in no promised order: whichever is first proceeds.
    const [first, second] = await Promise.all([
      ledger(key).begin({ ...target, payloadHash: 'h' }),
      ledger(key).begin({ ...target, payloadHash: 'h' }),
    ]);
    const [a, b] = first.decision === 'proceed' ? [first, second] : [second, first];
    const c = await ledger(key).begin({ ...target, payloadHash: 'other' });
    expect(a.decision).toBe('proceed');
    expect(b).toMatchObject({ decision: 'in_flight', entry: { state: 'in_flight' } });
    if (b.decision !== 'in_flight') throw new Error('unreachable');
    expect(b.retryAfterMs).toBeGreaterThan(0);
    expect(b.retryAfterMs).toBeLessThanOrEqual(1_000);
    expect(b.leaseRemainingMs).toBeGreaterThan(25_000);
    expect(c).toMatchObject({ decision: 'conflict', entry: { payloadHash: 'h' } });
    if (a.decision !== 'proceed') throw new Error('unreachable');
    await ledger(key).complete({ ...target, lease: a.lease, responseJson: '"ok"' });
    expect(await ledger(key).begin({ ...target, payloadHash: 'other' })).toMatchObject({
      decision: 'conflict',
    });
    expect(await ledger(key).inspect()).toMatchObject({
      entries: 1,
      byState: { applied: 1, in_flight: 0, failed: 0 },
    });
  });

  it('lets a retryable failure run again, and replays a permanent failure', async () => {
    const key = 'order:fail';
    const t = (requestId: string) => ({ ns: NS, key, requestId });
    const first = await ledger(key).begin({ ...t('soft'), payloadHash: 'h' });
    if (first.decision !== 'proceed') throw new Error('expected proceed');
    expect(
      await ledger(key).fail({ ...t('soft'), lease: first.lease, error: 'gateway timeout' }),
    ).toMatchObject({
      decision: 'failed',
      entry: { state: 'failed', error: 'gateway timeout', retryable: true },
    });
    const again = await ledger(key).begin({ ...t('soft'), payloadHash: 'h' });
    expect(again).toMatchObject({ decision: 'proceed', attempt: 2, takeover: false });

    const hard = await ledger(key).begin({ ...t('hard'), payloadHash: 'h' });
    if (hard.decision !== 'proceed') throw new Error('expected proceed');
    await ledger(key).fail({ ...t('hard'), lease: hard.lease, error: 'card declined', retryable: false });
    expect(await ledger(key).begin({ ...t('hard'), payloadHash: 'h' })).toMatchObject({
      decision: 'failed',
      error: 'card declined',
      entry: { attempts: 1, retryable: false },
    });
  });

  it('lets a retry take over when the owner died, and refuses the old owner afterwards', async () => {
    const key = 'order:crash';
    const target = { ns: NS, key, requestId: 'pay-3' };
    const owner = await ledger(key).begin({ ...target, payloadHash: 'h', leaseMs: 300 });
    if (owner.decision !== 'proceed') throw new Error('expected proceed');
    // The object restarts; the owner's lease is in SQLite, so it still blocks a retry…
    await abortAllDurableObjects();
    expect(await ledger(key).begin({ ...target, payloadHash: 'h' })).toMatchObject({ decision: 'in_flight' });
    expect(await ledger(key).inspect()).toMatchObject({ oldestInFlight: { requestId: 'pay-3' } });
    // …until it lapses (a lease is a clock comparison, not an alarm: waiting is the test).
    await sleep(owner.leaseUntil - Date.now() + 20);
    const heir = await ledger(key).begin({ ...target, payloadHash: 'h' });
    expect(heir).toMatchObject({ decision: 'proceed', attempt: 2, takeover: true });
    if (heir.decision !== 'proceed') throw new Error('unreachable');
    // Check: the late owner cannot settle it any more, in either direction.
    expect(
      await ledger(key).complete({ ...target, lease: owner.lease, responseJson: '"late"' }),
    ).toMatchObject({
      decision: 'lease_lost',
      entry: { state: 'in_flight', attempts: 2 },
    });
    expect(await ledger(key).fail({ ...target, lease: owner.lease, error: 'x' })).toMatchObject({
      decision: 'lease_lost',
    });
    expect(await ledger(key).extend({ ...target, lease: owner.lease, leaseMs: 1000 })).toMatchObject({
      extended: false,
    });
    expect(
      await ledger(key).complete({ ...target, lease: heir.lease, responseJson: '"heir"' }),
    ).toMatchObject({
      decision: 'applied',
      entry: { responseJson: '"heir"', attempts: 2 },
    });
  });

  it('reports a takeover and every late settle of the lost owner as events, one each', async () => {
    const key = 'order:takeover-events';
    const trace = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' };
    const target = { ns: NS, key, requestId: 'pay-takeover' };
    const o = ledger(key);
    const owner = await o.begin({ ...target, payloadHash: 'h', leaseMs: 50 });
    if (owner.decision !== 'proceed') throw new Error('expected proceed');
    await sleep(owner.leaseUntil - Date.now() + 20);
    const heir = await o.begin({ ...target, payloadHash: 'h', trace });
    expect(heir).toMatchObject({ decision: 'proceed', takeover: true });
    if (heir.decision !== 'proceed') throw new Error('unreachable');
    await o.complete({ ...target, lease: owner.lease, responseJson: '"late"', trace });
    await o.fail({ ...target, lease: owner.lease, error: 'late too' });
    await o.complete({ ...target, lease: heir.lease, responseJson: '"heir"' });
    await flushTelemetry(o);
    const events = await trail('pay-takeover');
    // Check: the takeover is one `taken_over` (the begin emits nothing else), each refused settle
    // one `lease_lost`, and the heir's completion the request's one `applied`.
    expect(events.map((e) => e.decision).sort()).toEqual([
      'applied',
      'lease_lost',
      'lease_lost',
      'taken_over',
    ]);
    for (const e of events) {
      expect(e).toMatchObject({ ns: NS, key, requestId: 'pay-takeover', count: 1 });
      expect(e.durationMs).toBeGreaterThanOrEqual(0);
      // The request's age: at least the lapsed lease.
      expect(e.value).toBeGreaterThanOrEqual(50);
    }
    expect(events.find((e) => e.decision === 'taken_over')).toMatchObject(trace);
    expect(events.filter((e) => e.decision === 'lease_lost' && e.traceId === trace.traceId)).toHaveLength(1);
  });

  it('keeps a lease alive with extend', async () => {
    const key = 'order:extend';
    const target = { ns: NS, key, requestId: 'pay-4' };
    const owner = await ledger(key).begin({ ...target, payloadHash: 'h', leaseMs: 100 });
    if (owner.decision !== 'proceed') throw new Error('expected proceed');
    const ext = await ledger(key).extend({ ...target, lease: owner.lease, leaseMs: 60_000 });
    expect(ext.extended).toBe(true);
    await sleep(150);
    expect(await ledger(key).begin({ ...target, payloadHash: 'h' })).toMatchObject({ decision: 'in_flight' });
  });

  it('forgets settled entries after their TTL, from the purge timer', async () => {
    const key = 'order:ttl';
    const target = { ns: NS, key, requestId: 'pay-5' };
    const o = ledger(key);
    const begun = await o.begin({ ...target, payloadHash: 'h', ttlMs: 1_000 });
    if (begun.decision !== 'proceed') throw new Error('expected proceed');
    await o.complete({ ...target, lease: begun.lease, responseJson: '1' });
    const summary = await o.inspect();
    expect(summary).toMatchObject({ entries: 1 });
    if (!('nextPurgeAt' in summary)) throw new Error('expected a summary');
    expect(summary.nextPurgeAt).toBeGreaterThan(Date.now());
    expect(await runDurableObjectAlarm(o)).toBe(true);
    expect(await o.inspect('pay-5')).toEqual({ found: false, requestId: 'pay-5' });
    expect(await o.inspect()).toMatchObject({ entries: 0, nextPurgeAt: null });
    // Check: once forgotten, the id is new again.
    expect(await o.begin({ ...target, payloadHash: 'other' })).toMatchObject({
      decision: 'proceed',
      attempt: 1,
    });
  });

  it('emits one event per decision, with the request and trace ids, and none for proceed', async () => {
    const key = 'order:events';
    const trace = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' };
    const target = { ns: NS, key, requestId: 'pay-events' };
    const o = ledger(key);
    const begun = await o.begin({ ...target, payloadHash: 'h', trace });
    if (begun.decision !== 'proceed') throw new Error('expected proceed');
    await o.begin({ ...target, payloadHash: 'h' });
    await o.complete({ ...target, lease: begun.lease, responseJson: 'null', trace });
    await o.begin({ ...target, payloadHash: 'h' });
    await o.begin({ ...target, payloadHash: 'x' });
    await flushTelemetry(o);
    const events = await trail('pay-events');
    expect(events.map((e) => e.decision).sort()).toEqual(['applied', 'conflict', 'duplicate', 'in_flight']);
    for (const e of events) {
      expect(e).toMatchObject({ ns: NS, key, requestId: 'pay-events', count: 1 });
      expect(e.durationMs).toBeGreaterThanOrEqual(0);
      expect(e.value).toBeGreaterThanOrEqual(0);
    }
    expect(events.find((e) => e.decision === 'applied')).toMatchObject(trace);
  });
});

describe('the idempotency routes', () => {
  const url = (path: string) => `http://keywarden.test/objects/idempotency/${path}`;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    SELF.fetch(url(path), {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('runs begin → complete → duplicate over HTTP, and answers inspect', async () => {
    const res = await post(
      'order:http/begin?ns=shop.payments',
      { requestId: 'h-1', payloadHash: 'p' },
      { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    );
    expect(res.status).toBe(200);
    const begun = (await res.json()) as { decision: string; lease: string };
    expect(begun.decision).toBe('proceed');
    const done = await post('order:http/complete?ns=shop.payments', {
      requestId: 'h-1',
      lease: begun.lease,
      response: { ok: true },
    });
    expect(await done.json()).toMatchObject({ decision: 'applied' });
    const dup = await post('order:http/begin?ns=shop.payments', { requestId: 'h-1', payloadHash: 'p' });
    expect(await dup.json()).toMatchObject({ decision: 'duplicate', response: { ok: true } });
    const inspect = await SELF.fetch(url('order:http/inspect?ns=shop.payments&requestId=h-1'), {
      headers: AUTH,
    });
    expect(await inspect.json()).toMatchObject({ found: true, ns: 'shop.payments', state: 'applied' });
    // Check: the default namespace is another object, which has never seen it.
    const other = await SELF.fetch(url('order:http/inspect?requestId=h-1'), { headers: AUTH });
    expect(await other.json()).toEqual({ found: false, requestId: 'h-1' });
  });

  it('refuses bad input with a 4xx that says what to fix', async () => {
    const cases: [Response, number, string][] = [
      [await post('k/begin', '{not json'), 400, 'invalid_json'],
      [await post('k/begin', { payloadHash: 'p' }), 400, 'invalid_body'],
      [await post('k/begin', { requestId: 'r', payloadHash: 'p', leaseMs: 0 }), 400, 'invalid_body'],
      [await post('k/begin', { requestId: 'r', payloadHash: 'p', extra: 1 }), 400, 'invalid_body'],
      [await post('k/complete', { requestId: 'r', lease: 'l' }), 400, 'invalid_body'],
      [await post('k/fail', { requestId: 'r', lease: 'l', error: '' }), 400, 'invalid_body'],
      [
        await post(`${'k'.repeat(600)}/begin`, { requestId: 'r', payloadHash: 'p' }),
        400,
        'invalid_parameter',
      ],
      [await SELF.fetch(url('k/begin'), { method: 'POST', body: '{}' }), 401, 'unauthorized'],
    ];
    for (const [res, status, code] of cases) {
      expect(res.status).toBe(status);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    }
  });
});
