import { env, runDurableObjectAlarm, SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { Collector } from '../../../collector';
import { thrown } from '../../../test/errors';
import { API_AUTH, patternRoutes } from '../../../test/routes';
import { flushTelemetry, runConformance } from '../../conformance';
import { objectFor } from '../../kit';

runConformance({
  pattern: 'counter',
  callers: 16,
  object: (ns, key) => objectFor(env.COUNTER, ns, key),
  operation: (counter, call) =>
    counter.increment({ ns: call.ns, key: call.key, requestId: call.requestId, by: call.index + 1 }),
  check: ({ ns, key, calls, byRequest, inspect }) => {
    // Check: exact — every distinct request added its amount once, whatever the retries.
    let expected = 0;
    for (const [, tries] of byRequest) {
      const applied = tries.filter((c) => c.ok && c.result.decision === 'incremented');
      expect(applied).toHaveLength(1);
      expected += applied[0]!.index + 1;
    }
    expect(inspect).toMatchObject({ counters: [{ ns, key, value: expected }] });
    // Check: every duplicate reports the value its request produced, and no increment saw a value twice.
    const appliedValues = calls
      .filter((c) => c.ok && c.result.decision === 'incremented')
      .map((c) => c.ok && c.result.value);
    expect(new Set(appliedValues).size).toBe(appliedValues.length);
  },
});

const NS = 'test.counter';
const counter = (key: string) => objectFor(env.COUNTER, NS, key);
const AUTH = API_AUTH;

describe('the counter object', () => {
  it('counts exactly, dedupes by requestId, and reports a reused id with another amount', async () => {
    const c = counter('exact');
    const t = { ns: NS, key: 'exact' };
    expect(await c.increment({ ...t, requestId: 'a', by: 5 })).toEqual({
      decision: 'incremented',
      value: 5,
      by: 5,
      appliedValue: 5,
      mismatch: false,
    });
    expect(await c.increment({ ...t, requestId: 'b', by: -2 })).toMatchObject({ value: 3 });
    // Check: a retry changes nothing and tells what it had done.
    expect(await c.increment({ ...t, requestId: 'a', by: 5 })).toEqual({
      decision: 'duplicate',
      value: 3,
      by: 5,
      appliedValue: 5,
      mismatch: false,
    });
    expect(await c.increment({ ...t, requestId: 'a', by: 7 })).toMatchObject({
      decision: 'conflict',
      value: 3,
      by: 5,
      mismatch: true,
    });
    // Without a requestId nothing is deduped.
    await c.increment(t);
    await c.increment(t);
    expect(await c.read(t)).toEqual({ ...t, value: 5 });
    expect(await c.inspect('a')).toMatchObject({ found: true, by: 5, appliedValue: 5, ns: NS, key: 'exact' });
    expect(await c.inspect('zzz')).toEqual({ found: false, requestId: 'zzz' });
    expect(await c.inspect()).toMatchObject({ counters: [{ ...t, value: 5 }], remembered: 2 });
  });

  it('refuses an increment that is not a safe integer or would overflow, and changes nothing', async () => {
    const c = counter('bounds');
    const t = { ns: NS, key: 'bounds' };
    expect(await thrown(() => c.increment({ ...t, by: 1.5 }))).toMatch(/safe integer/);
    await c.increment({ ...t, by: Number.MAX_SAFE_INTEGER });
    expect(await thrown(() => c.increment({ ...t, requestId: 'over', by: 1 }))).toMatch(/safe integer range/);
    expect(await c.read(t)).toMatchObject({ value: Number.MAX_SAFE_INTEGER });
    expect(await c.inspect('over')).toMatchObject({ found: false });
  });

  it('forgets requestIds after their TTL, from the purge timer', async () => {
    const c = counter('ttl');
    const t = { ns: NS, key: 'ttl' };
    await c.increment({ ...t, requestId: 'old' });
    expect(await c.inspect()).toMatchObject({ remembered: 1 });
    expect(await runDurableObjectAlarm(c)).toBe(true);
    expect(await c.inspect()).toMatchObject({ remembered: 0, nextPurgeAt: null });
    // Check: past its TTL, the same id counts again (the documented limit of dedupe).
    expect(await c.increment({ ...t, requestId: 'old' })).toMatchObject({
      decision: 'incremented',
      value: 2,
    });
  });

  it('emits one event per increment, valued at the counter after it, with request and trace ids', async () => {
    const c = counter('events');
    const t = { ns: NS, key: 'events' };
    const trace = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' };
    await c.increment({ ...t, requestId: 'ev-1', by: 10, trace });
    await c.increment({ ...t, requestId: 'ev-1', by: 10 });
    await c.read(t);
    await flushTelemetry(c);
    const events = (await new Collector(env).lookup('ev-1')).filter((e) => e.pattern === 'counter');
    expect(events.map((e) => [e.decision, e.value]).sort()).toEqual([
      ['duplicate', 10],
      ['incremented', 10],
    ]);
    expect(events.find((e) => e.decision === 'incremented')).toMatchObject({ ...t, ...trace, count: 1 });
    expect(events.every((e) => typeof e.durationMs === 'number')).toBe(true);
  });

  it('emits one conflict event for a reused requestId with another amount, and counts nothing', async () => {
    const c = counter('conflict-events');
    const t = { ns: NS, key: 'conflict-events' };
    const trace = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' };
    await c.increment({ ...t, requestId: 'cf-1', by: 4 });
    await c.increment({ ...t, by: 1 });
    expect(await c.increment({ ...t, requestId: 'cf-1', by: 40, trace })).toMatchObject({
      decision: 'conflict',
      value: 5,
    });
    await flushTelemetry(c);
    const events = (await new Collector(env).lookup('cf-1')).filter((e) => e.pattern === 'counter');
    // Check: the applied increment and the conflict, one event each; the conflict is valued at the
    // counter it left unchanged, and carries the caller's trace.
    expect(events.map((e) => e.decision).sort()).toEqual(['conflict', 'incremented']);
    const conflict = events.find((e) => e.decision === 'conflict')!;
    expect(conflict).toMatchObject({ ...t, ...trace, requestId: 'cf-1', value: 5, count: 1 });
    expect(conflict.durationMs).toBeGreaterThanOrEqual(0);
    expect(await c.read(t)).toMatchObject({ value: 5 });
  });
});

describe('the counter routes', () => {
  const { url, post } = patternRoutes('counter');

  it('increments, reads and inspects over HTTP', async () => {
    expect(
      await (await post('views/increment?ns=shop.views', { requestId: 'v1', by: 3 })).json(),
    ).toMatchObject({
      decision: 'incremented',
      value: 3,
    });
    expect(
      await (await post('views/increment?ns=shop.views', { requestId: 'v1', by: 3 })).json(),
    ).toMatchObject({
      decision: 'duplicate',
      value: 3,
    });
    expect(await (await post('views/increment?ns=shop.views', '')).json()).toMatchObject({ value: 4 });
    const read = await SELF.fetch(url('views?ns=shop.views'), { headers: AUTH });
    expect(await read.json()).toEqual({ ns: 'shop.views', key: 'views', value: 4 });
    const inspect = await SELF.fetch(url('views/inspect?ns=shop.views&requestId=v1'), { headers: AUTH });
    expect(await inspect.json()).toMatchObject({ found: true, by: 3 });
  });

  it('refuses bad input with a 4xx that says what to fix', async () => {
    await post('c/increment', { requestId: 'r', by: 1 });
    const cases: [Response, number, string][] = [
      [await post('c/increment', { requestId: 'r', by: 2 }), 409, 'conflict'],
      [await post('c/increment', '[1'), 400, 'invalid_json'],
      [await post('c/increment', { by: 0.5 }), 400, 'invalid_body'],
      [await post('c/increment', { by: 2 ** 60 }), 400, 'invalid_body'],
      [await post('c/increment', { requestId: '' }), 400, 'invalid_body'],
      [await post('c/increment', { amount: 1 }), 400, 'invalid_body'],
      [await SELF.fetch(url('c'), {}), 401, 'unauthorized'],
    ];
    for (const [res, status, code] of cases) {
      expect(res.status).toBe(status);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    }
    await post('big/increment', { by: Number.MAX_SAFE_INTEGER });
    const over = await post('big/increment', { by: 1 });
    expect(over.status).toBe(400);
    expect(((await over.json()) as { error: { code: string } }).error.code).toBe('invalid_value');
  });
});
