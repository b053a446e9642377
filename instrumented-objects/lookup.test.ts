import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { Collector } from '../collector';
import { flushTelemetry } from './conformance';
import { CHARGES_NS, PAY_NS, payDemoRoutes, TOTAL_NS } from './demo';
import { objectFor } from './kit';
import { authoritativeLookup } from './lookup';

describe('the authoritative lookup', () => {
  it('asks every object in a request’s trail for its own ledger entry', async () => {
    const res = await pay();
    expect(res.status).toBe(200);
    await payAgain();
    const key = 'order:o-lookup';
    await flushTelemetry(objectFor(env.IDEMPOTENCY, PAY_NS, key));
    await flushTelemetry(objectFor(env.COUNTER, CHARGES_NS, key));
    await flushTelemetry(objectFor(env.COUNTER, TOTAL_NS, key));
    const trail = await new Collector(env).lookup('lookup-key');
    // The trail: applied + duplicate on the ledger, one increment on each counter.
    expect(trail.map((e) => `${e.pattern}.${e.decision}`).sort()).toEqual([
      'counter.incremented',
      'counter.incremented',
      'idempotency.applied',
      'idempotency.duplicate',
    ]);
    const answers = await authoritativeLookup(env, [
      ...trail,
      { pattern: 'telemetry', ns: PAY_NS, key, requestId: 'lookup-key' },
    ]);
    // Check: one answer per object (not per event), each from the object's own storage.
    expect(answers).toHaveLength(3);
    const by = (ns: string) => answers.find((a) => a.ns === ns);
    expect(by(PAY_NS)).toMatchObject({
      pattern: 'idempotency',
      key,
      requestId: 'lookup-key',
      answer: { found: true, state: 'applied', attempts: 1 },
    });
    expect(by(CHARGES_NS)).toMatchObject({ pattern: 'counter', answer: { found: true, by: 1 } });
    expect(by(TOTAL_NS)).toMatchObject({ pattern: 'counter', answer: { found: true, by: 42 } });
    expect(answers.every((a) => a.error === undefined)).toBe(true);
  });

  it('answers found: false from an object that never saw the request, and respects a shard', async () => {
    await objectFor(env.COUNTER, 'lookup.test', 'k', { shard: 3 }).increment({
      ns: 'lookup.test',
      key: 'k',
      requestId: 'sharded',
    });
    const answers = await authoritativeLookup(env, [
      { pattern: 'counter', ns: 'lookup.test', key: 'k', requestId: 'sharded', shard: 3 },
      { pattern: 'counter', ns: 'lookup.test', key: 'k', requestId: 'sharded' },
    ]);
    expect(answers).toMatchObject([
      { shard: 3, answer: { found: true, by: 1 } },
      { answer: { found: false } },
    ]);
  });

  it('asks at most maxObjects objects', async () => {
    const trail = Array.from({ length: 5 }, (_, i) => ({
      pattern: 'counter',
      ns: 'lookup.test',
      key: `k${i}`,
      requestId: 'many',
    }));
    expect(await authoritativeLookup(env, trail, { maxObjects: 2 })).toHaveLength(2);
  });
});

/** The one payment these tests look up (the same Idempotency-Key each time). */
async function pay(): Promise<Response> {
  return payDemoRoutes.request(
    'http://keywarden.test/demo/pay/o-lookup',
    {
      method: 'POST',
      headers: { authorization: 'Bearer test-api-token', 'idempotency-key': 'lookup-key' },
      body: JSON.stringify({ amount: 42 }),
    },
    env,
  );
}

/** A retry of the same payment, so the ledger's trail holds a duplicate too. */
async function payAgain() {
  const res = await pay();
  expect(await res.json()).toMatchObject({ replayed: true });
}
