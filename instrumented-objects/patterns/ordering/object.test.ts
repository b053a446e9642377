import { abortAllDurableObjects, env, SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { Collector } from '../../../collector';
import { decisionsFromResults, flushTelemetry, runConformance } from '../../conformance';
import { objectFor } from '../../kit';
import { MAX_REORDER_DISTANCE, type WriteResult } from './object';

const NS = 'test.ordering';
const ordering = (key: string, ns = NS) => objectFor(env.ORDERING, ns, key);
const AUTH = { authorization: 'Bearer test-api-token' };

async function trail(requestId: string) {
  return (await new Collector(env).lookup(requestId)).filter((e) => e.pattern === 'ordering');
}

describe('the ordering object', () => {
  it('applies writes in sequence and keeps them readable as a log', async () => {
    const key = 'in-order';
    const o = ordering(key);
    for (const seq of [1, 2, 3]) {
      const r = await o.write({ ns: NS, key, seq, payload: { n: seq }, requestId: `${key}-${seq}` });
      expect(r).toMatchObject({ decision: 'applied', seq, expected: seq + 1, distance: 0, applied: [seq] });
    }
    const log = await o.read({ ns: NS, key });
    expect(log.entries.map((e) => [e.seq, e.payload, e.requestId])).toEqual([
      [1, { n: 1 }, 'in-order-1'],
      [2, { n: 2 }, 'in-order-2'],
      [3, { n: 3 }, 'in-order-3'],
    ]);
    expect(log).toMatchObject({ expected: 4, nextSeq: null });
    expect(await o.read({ ns: NS, key, fromSeq: 2, limit: 1 })).toMatchObject({
      entries: [{ seq: 2 }],
      nextSeq: 3,
    });
    expect(await o.inspect()).toMatchObject({
      ns: NS,
      key,
      expected: 4,
      appliedTotal: 3,
      gaps: [],
      buffered: [],
    });
    // Check: one event per write, with its requestId, the reorder distance and a duration.
    await flushTelemetry(o);
    const events = await trail('in-order-2');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ ns: NS, key, decision: 'applied', value: 0, count: 1 });
    expect(typeof events[0]!.durationMs).toBe('number');
  });

  it('buffers early writes, reports the gap they open, and applies them in order once it fills', async () => {
    const key = 'gaps';
    const o = ordering(key);
    const w = (seq: number) => o.write({ ns: NS, key, seq, payload: seq, requestId: `${key}-${seq}` });
    expect(await w(3)).toMatchObject({
      decision: 'gap',
      distance: 2,
      expected: 1,
      gaps: [{ from: 1, to: 2 }],
    });
    expect(await w(2)).toMatchObject({ decision: 'buffered', distance: 1, gaps: [{ from: 1, to: 1 }] });
    expect(await w(5)).toMatchObject({
      decision: 'gap',
      gaps: [
        { from: 1, to: 1 },
        { from: 4, to: 4 },
      ],
    });
    // Check: inspect lists what waits and the open gaps; the ledger knows a buffered request.
    expect(await o.inspect()).toMatchObject({
      expected: 1,
      buffered: [{ seq: 2 }, { seq: 3 }, { seq: 5 }],
      gaps: [
        { from: 1, to: 1 },
        { from: 4, to: 4 },
      ],
    });
    expect(await o.inspect('gaps-3')).toMatchObject({
      found: true,
      seq: 3,
      state: 'buffered',
      appliedAt: null,
    });
    expect((await o.read({ ns: NS, key })).entries).toEqual([]);
    // The missing write releases the ones it was holding back, in order; 5 still waits for 4.
    expect(await w(1)).toMatchObject({
      decision: 'applied',
      applied: [1, 2, 3],
      expected: 4,
      gaps: [{ from: 4, to: 4 }],
    });
    expect((await o.inspect()) as { buffered: unknown[] }).toMatchObject({ buffered: [{ seq: 5 }] });
    expect(await w(4)).toMatchObject({ decision: 'applied', applied: [4, 5], expected: 6 });
    expect((await o.read({ ns: NS, key })).entries.map((e) => e.payload)).toEqual([1, 2, 3, 4, 5]);
    expect(await o.inspect('gaps-3')).toMatchObject({ found: true, state: 'applied' });
    // Check: a released write's trail shows it was held back, then applied.
    await flushTelemetry(o);
    expect((await trail('gaps-3')).map((e) => [e.decision, e.value])).toEqual([
      ['gap', 2],
      ['applied', 0],
    ]);
    expect((await trail('gaps-2')).map((e) => e.decision)).toEqual(['buffered', 'applied']);
    expect((await trail('gaps-1')).map((e) => e.decision)).toEqual(['applied']);
  });

  it('refuses a write past the reorder bound, stores nothing, and says which seq it expects', async () => {
    const key = 'bound';
    const o = ordering(key);
    await o.write({ ns: NS, key, seq: 1 });
    const last = 2 + MAX_REORDER_DISTANCE;
    expect(await o.write({ ns: NS, key, seq: last, requestId: 'bound-last' })).toMatchObject({
      decision: 'gap',
    });
    const refused = await o.write({ ns: NS, key, seq: last + 1, requestId: 'bound-over' });
    expect(refused).toMatchObject({ decision: 'refused', expected: 2, maxAccepted: last, applied: [] });
    expect(await o.inspect('bound-over')).toEqual({ found: false, requestId: 'bound-over' });
    await flushTelemetry(o);
    expect((await trail('bound-over')).map((e) => [e.decision, e.value])).toEqual([
      ['refused', MAX_REORDER_DISTANCE + 1],
    ]);
  });

  it('answers a re-sent write as a duplicate and changes nothing', async () => {
    const key = 'dupes';
    const o = ordering(key);
    await o.write({ ns: NS, key, seq: 1, payload: 'a', requestId: 'dupes-1' });
    await o.write({ ns: NS, key, seq: 3, payload: 'c', requestId: 'dupes-3' });
    expect(await o.write({ ns: NS, key, seq: 1, payload: 'a', requestId: 'dupes-1' })).toMatchObject({
      decision: 'duplicate',
      state: 'applied',
      samePayload: true,
      distance: -1,
      expected: 2,
    });
    // A writer that reuses a sequence number for other data is told so.
    expect(await o.write({ ns: NS, key, seq: 1, payload: 'z' })).toMatchObject({ samePayload: false });
    expect(await o.write({ ns: NS, key, seq: 3, payload: 'c', requestId: 'dupes-3' })).toMatchObject({
      decision: 'duplicate',
      state: 'buffered',
      samePayload: true,
    });
    expect((await o.read({ ns: NS, key })).entries.map((e) => e.payload)).toEqual(['a']);
    expect(await o.inspect()).toMatchObject({ appliedTotal: 1, buffered: [{ seq: 3 }] });
  });

  it('keeps order under shuffled, concurrent, re-sent writes across a restart', async () => {
    const key = 'storm';
    const total = 40;
    const send = (seq: number) =>
      ordering(key).write({ ns: NS, key, seq, payload: { seq }, requestId: `${key}-${seq}` });
    const shuffled = (seqs: number[]) =>
      seqs
        .map((s) => ({ s, r: Math.random() }))
        .sort((a, b) => a.r - b.r)
        .map((x) => x.s);
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    // Wave 1: seqs 1..20 in random order, a third of them sent twice at once.
    const wave1 = shuffled([...range(1, 20), ...range(1, 20).filter((s) => s % 3 === 0)]);
    const results: WriteResult[] = await Promise.all(wave1.map(send));
    await flushTelemetry(ordering(key));
    await abortAllDurableObjects();
    // Wave 2, on a fresh instance: seqs 21..40 and every wave-1 write again, shuffled together.
    results.push(...(await Promise.all(shuffled([...range(21, total), ...range(1, 20)]).map(send))));
    // Check: every seq was applied exactly once, by its own call or by the call that released it.
    const applied = results.flatMap((r) => r.applied);
    expect(applied.sort((a, b) => a - b)).toEqual(range(1, total));
    const log = await ordering(key).read({ ns: NS, key, limit: 1000 });
    expect(log.entries.map((e) => e.seq)).toEqual(range(1, total));
    expect(log.entries.every((e) => (e.payload as { seq: number }).seq === e.seq)).toBe(true);
    // Applied in the order written: each entry applied no earlier than the one before it.
    for (let i = 1; i < log.entries.length; i++) {
      expect(log.entries[i]!.appliedAt).toBeGreaterThanOrEqual(log.entries[i - 1]!.appliedAt);
    }
    expect(await ordering(key).inspect()).toMatchObject({ expected: total + 1, buffered: [], gaps: [] });
  });

  it('serves one key: a call naming another key is refused rather than mixing two sequences', async () => {
    const o = ordering('owner');
    await o.write({ ns: NS, key: 'owner', seq: 1 });
    // (Wrapped: vitest would otherwise probe the RPC promise's properties, each a remote call.)
    await expect((async () => o.write({ ns: NS, key: 'intruder', seq: 2 }))()).rejects.toThrow(/coordinates/);
    expect(await o.inspect()).toMatchObject({ expected: 2 });
  });
});

describe('the ordering routes', () => {
  const url = (key: string, action: string, query = '') =>
    `http://x/objects/ordering/${encodeURIComponent(key)}/${action}?ns=${NS}${query}`;
  const post = (key: string, body: unknown, headers: Record<string, string> = {}) =>
    SELF.fetch(url(key, 'write'), {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('writes, buffers, refuses with 409, and reads the log and the ledger', async () => {
    const key = 'http:1';
    const early = await post(key, { seq: 2, payload: 'b', requestId: 'http-2' });
    expect(early.status).toBe(202);
    expect(await early.json()).toMatchObject({ decision: 'gap', gaps: [{ from: 1, to: 1 }] });
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const first = await post(
      key,
      { seq: 1, payload: 'a', requestId: 'http-1' },
      { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    );
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ decision: 'applied', applied: [1, 2], expected: 3 });
    const refused = await post(key, { seq: 3 + MAX_REORDER_DISTANCE + 1 });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({
      decision: 'refused',
      expected: 3,
      error: { code: 'out_of_order' },
    });
    const log = await SELF.fetch(url(key, 'log', '&fromSeq=2'), { headers: AUTH });
    expect(await log.json()).toMatchObject({ entries: [{ seq: 2, payload: 'b' }], expected: 3 });
    const ledger = await SELF.fetch(url(key, 'inspect', '&requestId=http-1'), { headers: AUTH });
    expect(await ledger.json()).toMatchObject({ found: true, seq: 1, state: 'applied' });
    // Check: the caller's trace context reached the event.
    await flushTelemetry(ordering(key));
    expect((await trail('http-1'))[0]).toMatchObject({ traceId, spanId: '00f067aa0ba902b7' });
  });

  it('answers bad input with a 4xx that says what to fix', async () => {
    const cases: [unknown, string][] = [
      [{ seq: 0 }, 'invalid_body'],
      [{ seq: 1.5 }, 'invalid_body'],
      [{ seq: '1' }, 'invalid_body'],
      [{}, 'invalid_body'],
      [{ seq: 1, extra: true }, 'invalid_body'],
      [{ seq: 1, requestId: '' }, 'invalid_body'],
      ['{not json', 'invalid_json'],
    ];
    for (const [body, code] of cases) {
      const res = await post('http:bad', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code } });
    }
    const big = await post('http:bad', { seq: 1, payload: 'x'.repeat(70_000) });
    expect(big.status).toBe(413);
    const badLimit = await SELF.fetch(url('http:bad', 'log', '&limit=0'), { headers: AUTH });
    expect(badLimit.status).toBe(400);
    const unauthorized = await SELF.fetch(url('http:bad', 'log'));
    expect(unauthorized.status).toBe(401);
    expect(await ordering('http:bad').inspect()).toMatchObject({ appliedTotal: 0 });
  });
});

// The shared suite: request i writes seq i + 1, so concurrent callers arrive out of order and
// every retry re-sends a seq. Writes released from the buffer emit their `applied` later, under
// their own requestId, so each request's trail is its answers plus that `applied`.
runConformance<ReturnType<typeof ordering>, WriteResult>({
  pattern: 'ordering',
  callers: 16,
  object: (ns, key) => objectFor(env.ORDERING, ns, key),
  operation: (o, call) =>
    o.write({
      ns: call.ns,
      key: call.key,
      seq: call.index + 1,
      payload: call.index,
      requestId: call.requestId,
    }),
  telemetry: {
    expected: (run) => {
      const released = new Set(run.calls.flatMap((c) => (c.ok ? c.result.applied.slice(1) : [])));
      const expected = decisionsFromResults(run);
      for (const [requestId, decisions] of expected) {
        const seq = run.byRequest.get(requestId)![0]!.index + 1;
        if (released.has(seq)) decisions.push('applied');
      }
      return expected;
    },
  },
  check: async ({ calls, byRequest, inspect, object, ns, key }) => {
    const n = byRequest.size;
    // Check: each seq applied exactly once — by its own call or by the call that released it.
    const applied = calls.flatMap((c) => (c.ok ? c.result.applied : [])).sort((a, b) => a - b);
    expect(applied).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(inspect).toMatchObject({ expected: n + 1, appliedTotal: n, buffered: [], gaps: [] });
    const log = await object.read({ ns, key, limit: 1000 });
    expect(log.entries.map((e) => [e.seq, e.payload])).toEqual(
      Array.from({ length: n }, (_, i) => [i + 1, i]),
    );
    // Check: a retry is answered as a duplicate, never applied again.
    for (const [, tries] of byRequest) {
      expect(tries.filter((c) => c.ok && c.result.decision === 'applied').length).toBeLessThanOrEqual(1);
    }
  },
});
