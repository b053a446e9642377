import { abortAllDurableObjects, env, SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { Collector } from '../../../collector';
import { thrown } from '../../../test/errors';
import { API_AUTH, patternRoutes } from '../../../test/routes';
import { answered, flushTelemetry, runConformance } from '../../conformance';
import { objectFor } from '../../kit';
import type { LoadResult, SingleFlightInspect } from './object';

const NS = 'test.single_flight';
const flights = (key: string) => objectFor(env.SINGLE_FLIGHT, NS, key);
const AUTH = API_AUTH;

/** The digest demo.digest must have computed for this flight: checked independently of the object. */
async function expectedDigest(ns: string, key: string, generation: number, rounds: number): Promise<string> {
  let data: ArrayBuffer = new TextEncoder().encode(`${ns}:${key}:${generation}`).buffer as ArrayBuffer;
  for (let i = 0; i < rounds; i++) data = await crypto.subtle.digest('SHA-256', data);
  return [...new Uint8Array(data)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

type Summary = Extract<SingleFlightInspect, { recent: unknown }>;

runConformance({
  pattern: 'single_flight',
  callers: 16,
  object: (ns, key) => objectFor(env.SINGLE_FLIGHT, ns, key),
  operation: (object, call) =>
    object.load({
      ns: call.ns,
      key: call.key,
      loader: 'demo.digest',
      params: { delayMs: 40, rounds: 20 },
      requestId: call.requestId,
    }),
  check: async ({ ns, key, calls, inspect }) => {
    const summary = inspect as Summary;
    const ok = answered(calls);
    const byFlight = new Map<number, typeof ok>();
    for (const c of ok) byFlight.set(c.result.flightId, [...(byFlight.get(c.result.flightId) ?? []), c]);
    // Check: callers were coalesced, not each given its own refresh.
    expect(byFlight.size).toBeLessThan(ok.length / 2);
    for (const [flightId, members] of byFlight) {
      // Check: one leader per flight, everyone else joined, and all share one real answer.
      expect(members.filter((c) => c.result.decision === 'led')).toHaveLength(1);
      expect(members.every((c) => ['led', 'joined'].includes(c.result.decision))).toBe(true);
      const digest = await expectedDigest(ns, key, flightId, 20);
      for (const c of members) {
        expect(c.result.result).toMatchObject({ digest, generation: flightId });
        expect(c.result.callers).toBe(members.length);
      }
    }
    // Check: never two refreshes at once — each flight starts after the previous one finished.
    const settled = [...summary.recent].reverse();
    expect(settled).toHaveLength(byFlight.size);
    for (let i = 1; i < settled.length; i++) {
      expect(settled[i]!.startedAt).toBeGreaterThanOrEqual(settled[i - 1]!.finishedAt!);
    }
    expect(summary.totals).toMatchObject({ running: 0, abandoned: 0, failed: 0, callers: ok.length });
    expect(summary.running).toEqual([]);
  },
});

describe('the single-flight object', () => {
  it('runs one refresh for 50 concurrent callers and gives every one of them its answer', async () => {
    const key = 'fifty';
    const o = flights(key);
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        o.load({ ns: NS, key, loader: 'demo.digest', params: { delayMs: 50 }, requestId: `fifty-${i}` }),
      ),
    );
    expect(answers.filter((a) => a.decision === 'led')).toHaveLength(1);
    expect(answers.filter((a) => a.decision === 'joined')).toHaveLength(49);
    const flightId = answers[0]!.flightId;
    const digest = await expectedDigest(NS, key, flightId, 1_000);
    for (const a of answers)
      expect(a).toMatchObject({ flightId, callers: 50, result: { digest }, error: null });
    expect(await o.inspect('fifty-7')).toMatchObject({
      found: true,
      role: 'joined',
      decision: 'joined',
      flight: { flightId, state: 'succeeded', callers: 50, loader: 'demo.digest' },
    });
    // Check: one event per caller, each valued at the 50 callers the flight served.
    await flushTelemetry(o);
    const collector = new Collector(env);
    const events = (await Promise.all(answers.map((_, i) => collector.lookup(`fifty-${i}`)))).flat();
    expect(events).toHaveLength(50);
    expect(events.filter((e) => e.decision === 'led')).toHaveLength(1);
    expect(
      events.every((e) => e.pattern === 'single_flight' && e.value === 50 && e.ns === NS && e.key === key),
    ).toBe(true);
  });

  it('shares a failure with every caller of the flight, and does not keep it for the next one', async () => {
    const key = 'failing';
    const o = flights(key);
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        o.load({
          ns: NS,
          key,
          loader: 'demo.digest',
          params: { delayMs: 30, fail: 'backend is down' },
          requestId: `fail-${i}`,
        }),
      ),
    );
    expect(new Set(answers.map((a) => a.flightId)).size).toBe(1);
    for (const a of answers)
      expect(a).toMatchObject({ decision: 'failed', error: 'backend is down', result: null, callers: 10 });
    expect(answers.filter((a) => a.role === 'led')).toHaveLength(1);
    const next = await o.load({ ns: NS, key, loader: 'demo.digest' });
    expect(next).toMatchObject({ decision: 'led', flightId: answers[0]!.flightId + 1, callers: 1 });
    expect(await o.inspect()).toMatchObject({ totals: { flights: 2, failed: 1, succeeded: 1, callers: 11 } });
    await flushTelemetry(o);
    const events = await new Collector(env).lookup('fail-3');
    expect(events).toMatchObject([{ decision: 'failed', value: 10, requestId: 'fail-3' }]);
  });

  it('caches nothing: calls one after another each lead their own refresh', async () => {
    const o = flights('sequential');
    const a = await o.load({ ns: NS, key: 'sequential', loader: 'demo.digest', params: { rounds: 3 } });
    const b = await o.load({ ns: NS, key: 'sequential', loader: 'demo.digest', params: { rounds: 3 } });
    expect([a.decision, b.decision]).toEqual(['led', 'led']);
    expect(b.flightId).toBe(a.flightId + 1);
    expect(b.result?.digest).not.toBe(a.result?.digest);
  });

  it('fails a refresh that outlives its timeout, for all its callers', async () => {
    const o = flights('slow');
    const answers = await Promise.all(
      [1, 2].map(() =>
        o.load({ ns: NS, key: 'slow', loader: 'demo.digest', params: { delayMs: 300 }, timeoutMs: 20 }),
      ),
    );
    for (const a of answers)
      expect(a).toMatchObject({ decision: 'failed', error: 'the refresh took longer than 20 ms' });
  });

  it('marks a refresh that was running when the object restarted as abandoned, and leads a new one after', async () => {
    const key = 'restart';
    const inFlight = flights(key).load({
      ns: NS,
      key,
      loader: 'demo.digest',
      params: { delayMs: 2_000 },
      requestId: 'lost',
    });
    // Let the call reach the object before it goes away.
    await new Promise((r) => setTimeout(r, 50));
    await abortAllDurableObjects();
    // Check: its caller got an error from the runtime (workerd reports it ~2 s later), never a result.
    expect(await thrown(() => inFlight)).toMatch(/abortAllDurableObjects/);
    const o = flights(key);
    expect(await o.inspect('lost')).toMatchObject({
      found: true,
      role: 'led',
      decision: null,
      flight: { state: 'abandoned', error: 'the object restarted while this refresh ran' },
    });
    const after = await o.load({ ns: NS, key, loader: 'demo.digest' });
    expect(after).toMatchObject({ decision: 'led', callers: 1 });
    expect(await o.inspect()).toMatchObject({ totals: { abandoned: 1, succeeded: 1, running: 0 } });
  });

  it('refuses an unknown loader or bad params', async () => {
    const o = flights('bad');
    expect(await thrown(() => o.load({ ns: NS, key: 'bad', loader: 'nope' }))).toMatch(
      /unknown loader "nope"/,
    );
    expect(
      await thrown(() => o.load({ ns: NS, key: 'bad', loader: 'demo.digest', params: { delayMs: -1 } })),
    ).toMatch(/delayMs/);
    expect(await o.inspect()).toMatchObject({ totals: { flights: 0 } });
  });
});

describe('the single-flight routes', () => {
  const { url, post } = patternRoutes('single_flight');

  it('coalesces concurrent HTTP callers and answers inspect', async () => {
    const responses = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        post('prices/load?ns=shop.prices', {
          loader: 'demo.digest',
          params: { delayMs: 50 },
          requestId: `http-${i}`,
        }).then((r) => r.json() as Promise<LoadResult>),
      ),
    );
    expect(responses.map((r) => r.decision).sort()).toEqual(['joined', 'joined', 'joined', 'joined', 'led']);
    const inspect = await SELF.fetch(url('prices/inspect?ns=shop.prices&requestId=http-0'), {
      headers: AUTH,
    });
    expect(await inspect.json()).toMatchObject({ found: true, flight: { callers: 5, state: 'succeeded' } });
  });

  it('refuses bad input with a 4xx that says what to fix', async () => {
    const cases: [Response, number, string][] = [
      [await post('k/load', 'nope'), 400, 'invalid_json'],
      [await post('k/load', { loader: 'nope' }), 400, 'invalid_body'],
      [await post('k/load', { loader: 'demo.digest', params: { delayMs: 60_000 } }), 400, 'invalid_body'],
      [await post('k/load', { loader: 'demo.digest', timeoutMs: 0 }), 400, 'invalid_body'],
      [await post('k/load', { loader: 'demo.digest', params: { other: 1 } }), 400, 'invalid_body'],
      [await SELF.fetch(url('k/inspect')), 401, 'unauthorized'],
    ];
    for (const [res, status, code] of cases) {
      expect(res.status).toBe(status);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    }
  });
});
