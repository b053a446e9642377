// The conformance suite every QueryBackend passes (like Hono's router `common.case.test.ts`): one seeded
// stream of decision events, answers computed from it here in plain JS, and the backend's answers
// held to them. It runs inside workerd (local rollup store) and in node (AE SQL against ClickHouse),
// so it imports only vitest and project files.
//
// A backend's `setup` loads `knownStream(now)` its own way and returns the `now` it used. Events sit
// at least 60 s inside or outside every window asked about, so time-bucket granularity and window
// edges never decide an answer.
import { beforeAll, describe, expect, it } from 'vitest';
import { type DecisionEvent, decisionEventSchema, type Pattern } from '../contract';
import { fnv1a32 } from '../hash';
import type { HotKeysResult, QueryBackend, TrailEvent } from './types';

/** What a backend keeps of an event's trail; AE keeps no event or span id and whole seconds only. */
export type TrailFidelity = { ids?: boolean; spanIds?: boolean; tsResolutionMs?: number };

export type BackendUnderTest = { backend: QueryBackend; now: number; trail?: TrailFidelity };

export const SUITE_WINDOW_SEC = 300;
export const SUITE_STEP_SEC = 60;
export const SUITE_HEATMAP_BUCKETS = 4;

export const NS = {
  rateLimit: 'api.rate_limit',
  payments: 'payments.idempotency',
  locks: 'locks.lock',
  queue: 'jobs.queue',
  /** A namespace that needs escaping too. */
  nasty: "it's\\ns -- ;",
} as const;

export const HOT_KEY = 'tenant:acme';

/** Keys that break naive SQL quoting; each must come back exactly as itself. */
export const NASTY_KEYS = [
  "o'brien",
  'back\\slash\\',
  'line\nbreak\r\ttab',
  'nul\u0000key',
  'ключ-🔑-键',
  "x'; DROP TABLE keywarden_events; --",
  "\\'\\'\\\\''\\",
  "''",
  '%_*?',
  '/* not a comment */',
  `${'k'.repeat(40)}:${'é'.repeat(40)}`, // past AE's 96-byte index: stored under a hash
] as const;

export const REQUEST_ID = 'req-9f2';
export const NASTY_REQUEST_ID = "req'quote\\--;\n";

type Draft = Omit<DecisionEvent, 'v' | 'id' | 'ts' | 'count'> & { count?: number };

/**
 * The seeded stream, relative to `now` (ms). Ids are `${emitterId}:${seq}`. Identical decisions that
 * several emitters make in the same second (the hot key's `allowed`) let a sampled store keep one
 * row for many; events with a value always have count 1, so a bucket's `value.n` is unambiguous.
 */
export function knownStream(now: number): DecisionEvent[] {
  const nowSec = Math.floor(now / 1000);
  const seqs = new Map<string, number>();
  const events: DecisionEvent[] = [];
  const emit = (emitter: string, ago: number, d: Draft, ms = 137) => {
    const seq = seqs.get(emitter) ?? 0;
    seqs.set(emitter, seq + 1);
    events.push({ v: 1, id: `${emitter}:${seq}`, ts: (nowSec - ago) * 1000 + ms, count: 1, ...d });
  };
  const emitters = ['edge-1', 'edge-2', 'edge-3'];

  // api.rate_limit: one hot key, its neighbours, and a prefix of it that must not be mixed in.
  const rl = (key: string, decision: 'allowed' | 'limited', extra: Partial<Draft> = {}): Draft => ({
    ns: NS.rateLimit,
    key,
    pattern: 'rate_limit',
    decision,
    ...extra,
  });
  for (const ago of [20, 40, 70, 100, 130, 160, 190, 220]) {
    for (const emitter of emitters)
      for (let i = 0; i < 3; i++) emit(emitter, ago, rl(HOT_KEY, 'allowed'), 100 + i);
  }
  emit('edge-1', 25, rl(HOT_KEY, 'limited', { value: 100 }), 10);
  emit('edge-1', 25, rl(HOT_KEY, 'limited', { value: 300 }), 900);
  emit('edge-2', 135, rl(HOT_KEY, 'limited', { value: 50 }));
  for (const ago of [30, 90, 150, 210]) emit('edge-1', ago, rl('tenant:beta', 'allowed', { count: 2 }));
  emit('edge-2', 91, rl('tenant:beta', 'limited', { value: 20 }));
  emit('edge-3', 45, rl('tenant:gamma', 'allowed'));
  emit('edge-3', 145, rl('tenant:gamma', 'allowed'));
  emit('edge-2', 60, rl(`${HOT_KEY}2`, 'allowed'));
  // Outside the 300 s window, inside an hour.
  emit('edge-1', 450, rl(HOT_KEY, 'allowed', { count: 5 }));
  emit('edge-2', 1800, rl(HOT_KEY, 'allowed', { count: 7 }));
  emit('edge-3', 900, rl('tenant:old', 'allowed', { count: 4 }));

  // payments.idempotency: one request seen three times, and one whose id needs escaping.
  const pay = (
    key: string,
    decision: 'applied' | 'duplicate' | 'conflict' | 'in_flight',
    extra: Partial<Draft>,
  ) => ({
    ns: NS.payments,
    key,
    pattern: 'idempotency' as Pattern,
    decision,
    ...extra,
  });
  emit(
    'edge-1',
    200,
    pay('order:123', 'applied', {
      requestId: REQUEST_ID,
      durationMs: 12,
      traceId: 'trace-a',
      spanId: 'span-1',
    }),
  );
  emit(
    'edge-2',
    150,
    pay('order:123', 'duplicate', { requestId: REQUEST_ID, durationMs: 1, traceId: 'trace-b' }),
  );
  emit('edge-3', 60, pay('order:123', 'duplicate', { requestId: REQUEST_ID }), 999);
  emit(
    'edge-1',
    100,
    pay("o'brien", 'applied', { requestId: NASTY_REQUEST_ID, value: 42.5, shard: 2, epoch: 7 }),
  );
  emit('edge-2', 80, pay('order:456', 'applied', { requestId: 'req-7' }));
  emit('edge-2', 79, pay('order:456', 'conflict', { requestId: 'req-7' }));
  emit('edge-3', 50, pay('order:789', 'in_flight', {}));

  // locks.lock: waits carry a value (ms waited); acquisitions and releases do not.
  const lock = (decision: 'acquired' | 'waited' | 'released', extra: Partial<Draft> = {}): Draft => ({
    ns: NS.locks,
    key: 'inventory:sku-1',
    pattern: 'lock',
    decision,
    ...extra,
  });
  for (const ago of [110, 111, 170]) emit('edge-1', ago, lock('acquired'));
  emit('edge-1', 110, lock('waited', { value: 5 }), 200);
  emit('edge-1', 110, lock('waited', { value: 15 }), 300);
  emit('edge-2', 115, lock('waited', { value: 250 }));
  emit('edge-3', 230, lock('waited', { value: 30 }));
  for (const emitter of emitters) emit(emitter, 140, lock('waited', { value: 7 }));
  for (const ago of [112, 172]) emit('edge-1', ago, lock('released'));
  emit('edge-2', 171, lock('acquired', { traceId: 'trace-lock' }));

  // jobs.queue: keys that need escaping, with queue depth as the value of each enqueue.
  NASTY_KEYS.forEach((key, i) => {
    const ago = 30 + 20 * i;
    for (let j = 0; j <= i; j++) {
      emit(
        'edge-2',
        ago,
        { ns: NS.queue, key, pattern: 'queue', decision: 'enqueued', value: j + 1 },
        100 + j,
      );
    }
    emit('edge-3', ago + 1, { ns: NS.queue, key, pattern: 'queue', decision: 'delivered' });
  });
  emit('edge-3', 33, { ns: NS.queue, key: HOT_KEY, pattern: 'queue', decision: 'acked' });

  emit('edge-1', 70, { ns: NS.nasty, key: 'c1', pattern: 'counter', decision: 'incremented', count: 4 });
  emit('edge-1', 71, { ns: NS.nasty, key: 'c1', pattern: 'counter', decision: 'duplicate' });
  return events;
}

// ---- expectations, computed from the stream ----

function inWindow(e: DecisionEvent, now: number, windowSec: number): boolean {
  const sec = Math.floor(e.ts / 1000);
  const nowSec = Math.floor(now / 1000);
  return sec > nowSec - windowSec && sec <= nowSec;
}

function bucketOf(ts: number, stepSec: number): number {
  return Math.floor(ts / (stepSec * 1000)) * stepSec * 1000;
}

function expectedKeyCounts(
  events: DecisionEvent[],
  now: number,
  q: { ns: string; windowSec: number; pattern?: string; decision?: string },
): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of events) {
    if (e.ns !== q.ns || !inWindow(e, now, q.windowSec)) continue;
    if (q.pattern !== undefined && e.pattern !== q.pattern) continue;
    if (q.decision !== undefined && e.decision !== q.decision) continue;
    counts.set(e.key, (counts.get(e.key) ?? 0) + e.count);
  }
  return counts;
}

type ExpectedPoint = {
  count: number;
  decisions: Record<string, number>;
  value: { sum: number; min: number; max: number; n: number } | null;
};

function expectedSeries(
  events: DecisionEvent[],
  now: number,
  ns: string,
  key: string,
  windowSec: number,
  stepSec: number,
) {
  const points = new Map<number, ExpectedPoint>();
  for (const e of events) {
    if (e.ns !== ns || e.key !== key || !inWindow(e, now, windowSec)) continue;
    const t = bucketOf(e.ts, stepSec);
    const p = points.get(t) ?? { count: 0, decisions: {}, value: null };
    p.count += e.count;
    const name = `${e.pattern}.${e.decision}`;
    p.decisions[name] = (p.decisions[name] ?? 0) + e.count;
    if (e.value !== undefined) {
      const v = p.value ?? { sum: 0, min: e.value, max: e.value, n: 0 };
      v.sum += e.value;
      v.min = Math.min(v.min, e.value);
      v.max = Math.max(v.max, e.value);
      v.n += e.count;
      p.value = v;
    }
    points.set(t, p);
  }
  return points;
}

function expectedTrail(events: DecisionEvent[], requestId: string): TrailEvent[] {
  return events
    .filter((e) => e.requestId === requestId)
    .sort((a, b) => a.ts - b.ts)
    .map((e) => ({
      id: e.id,
      ts: e.ts,
      ns: e.ns,
      key: e.key,
      pattern: e.pattern,
      decision: e.decision,
      count: e.count,
      value: e.value,
      durationMs: e.durationMs,
      requestId,
      traceId: e.traceId,
      spanId: e.spanId,
      shard: e.shard,
      epoch: e.epoch,
    }));
}

/** Check a hot-key answer against true counts: exact when it says so, else within its error bound. */
function expectHotKeys(got: HotKeysResult, truth: Map<string, number>, limit: number) {
  const ranked = [...truth.entries()].filter(([, c]) => c > 0).sort((a, b) => b[1] - a[1]);
  expect(got.total).toBe(ranked.reduce((s, [, c]) => s + c, 0));
  expect(got.keys.length).toBe(Math.min(limit, ranked.length));
  for (let i = 1; i < got.keys.length; i++)
    expect(got.keys[i - 1]!.count).toBeGreaterThanOrEqual(got.keys[i]!.count);
  for (const k of got.keys) {
    const truthCount = truth.get(k.key);
    expect(truthCount, `unexpected key ${JSON.stringify(k.key)}`).toBeDefined();
    if (got.exact) expect(k.error).toBe(0);
    expect(k.count - k.error).toBeLessThanOrEqual(truthCount!);
    expect(k.count).toBeGreaterThanOrEqual(truthCount!);
  }
  return ranked;
}

export function runBackendSuite(name: string, setup: () => Promise<BackendUnderTest>): void {
  describe(`${name}: QueryBackend conformance`, () => {
    let b: QueryBackend;
    let now: number;
    let trail: Required<TrailFidelity>;
    let events: DecisionEvent[];
    const W = SUITE_WINDOW_SEC;
    const STEP = SUITE_STEP_SEC;

    beforeAll(async () => {
      const s = await setup();
      b = s.backend;
      now = s.now;
      trail = { ids: true, spanIds: true, tsResolutionMs: 1, ...s.trail };
      events = knownStream(now);
    });

    it('seeds a stream that contract v1 accepts, with unique ids', () => {
      for (const e of events) expect(decisionEventSchema.safeParse(e).error).toBeUndefined();
      expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    });

    describe('hotKeys', () => {
      it('ranks the hot key first, with counts and the namespace total', async () => {
        const got = await b.hotKeys({ ns: NS.rateLimit, windowSec: W, limit: 3, now });
        const ranked = expectHotKeys(
          got,
          expectedKeyCounts(events, now, { ns: NS.rateLimit, windowSec: W }),
          3,
        );
        // Check the order: the stream's top counts are distinct.
        expect(got.keys.map((k) => k.key)).toEqual(ranked.slice(0, 3).map(([k]) => k));
        expect(got.keys[0]).toMatchObject({ key: HOT_KEY, count: 75 });
      });

      it('filters by decision and pattern', async () => {
        const q = {
          ns: NS.rateLimit,
          windowSec: W,
          limit: 10,
          now,
          pattern: 'rate_limit',
          decision: 'limited',
        } as const;
        const got = await b.hotKeys(q);
        expectHotKeys(got, expectedKeyCounts(events, now, q), 10);
        expect(got.keys.map((k) => [k.key, k.count])).toEqual([
          [HOT_KEY, 3],
          ['tenant:beta', 1],
        ]);
      });

      it('counts what a longer window holds, and nothing for an empty namespace', async () => {
        const got = await b.hotKeys({ ns: NS.rateLimit, windowSec: 3600, limit: 10, now });
        expectHotKeys(got, expectedKeyCounts(events, now, { ns: NS.rateLimit, windowSec: 3600 }), 10);
        expect(got.keys.find((k) => k.key === HOT_KEY)?.count).toBe(75 + 5 + 7);
        const empty = await b.hotKeys({ ns: 'nobody.here', windowSec: W, limit: 10, now });
        expect(empty.total).toBe(0);
        expect(empty.keys).toEqual([]);
      });

      it('returns keys that need escaping exactly as themselves', async () => {
        const got = await b.hotKeys({ ns: NS.queue, windowSec: W, limit: 50, now });
        const truth = expectedKeyCounts(events, now, { ns: NS.queue, windowSec: W });
        expectHotKeys(got, truth, 50);
        expect(new Map(got.keys.map((k) => [k.key, k.count]))).toEqual(truth);
        const nasty = await b.hotKeys({ ns: NS.nasty, windowSec: W, limit: 5, now });
        expect(nasty.keys).toMatchObject([{ key: 'c1', count: 5 }]);
      });
    });

    describe('series', () => {
      const checkSeries = async (ns: string, key: string, windowSec: number, stepSec: number) => {
        const got = await b.series({ ns, key, windowSec, stepSec, now });
        const want = expectedSeries(events, now, ns, key, windowSec, stepSec);
        const ts = got.points.map((p) => p.t);
        for (const t of ts) expect(t % (stepSec * 1000)).toBe(0);
        expect([...ts].sort((x, y) => x - y)).toEqual(ts);
        expect(new Set(ts).size).toBe(ts.length);
        for (const t of ts) {
          expect(t).toBeGreaterThan(now - (windowSec + stepSec) * 1000);
          expect(t).toBeLessThanOrEqual(now);
        }
        const nonEmpty = got.points.filter((p) => p.count > 0);
        expect(nonEmpty.map((p) => p.t)).toEqual([...want.keys()].sort((x, y) => x - y));
        for (const p of nonEmpty) {
          const w = want.get(p.t)!;
          expect(p.count).toBe(w.count);
          expect(Object.fromEntries(Object.entries(p.decisions).filter(([, c]) => c > 0))).toEqual(
            w.decisions,
          );
          if (w.value === null) expect(p.value).toBeNull();
          else {
            expect(p.value).not.toBeNull();
            expect(p.value!.sum).toBeCloseTo(w.value.sum, 6);
            expect(p.value).toMatchObject({ min: w.value.min, max: w.value.max, n: w.value.n });
          }
        }
        return got;
      };

      it('buckets the hot key by step, aligned to multiples of it, with decisions and values', async () => {
        const got = await checkSeries(NS.rateLimit, HOT_KEY, W, STEP);
        expect(got.points.reduce((s, p) => s + p.count, 0)).toBe(75);
      });

      it('keeps value sum, min, max and n per bucket', async () => {
        await checkSeries(NS.locks, 'inventory:sku-1', W, 30);
        await checkSeries(NS.payments, "o'brien", W, 10);
      });

      it('matches keys that need escaping, and only them', async () => {
        for (const key of NASTY_KEYS) await checkSeries(NS.queue, key, W, STEP);
        await checkSeries(NS.nasty, 'c1', W, STEP);
      });

      it('answers a window past an hour from per-minute buckets, the current minute included', async () => {
        // Every bucket as the stream says, including events older than the 300 s window above.
        const got = await checkSeries(NS.rateLimit, HOT_KEY, 7200, 600);
        expect(got.points.reduce((s, p) => s + p.count, 0)).toBeGreaterThan(75);
      });

      it('never widens a key into a pattern or an injection', async () => {
        for (const key of ["tenant:acme' OR '1'='1", 'tenant:%', `${HOT_KEY}\u0000`, "' OR 1=1 --"]) {
          const got = await b.series({ ns: NS.rateLimit, key, windowSec: W, stepSec: STEP, now });
          expect(got.points.every((p) => p.count === 0)).toBe(true);
        }
      });
    });

    describe('heatmap', () => {
      it('has one row per time bucket and one cell per key bucket, totals and hottest keys', async () => {
        for (const ns of [NS.rateLimit, NS.queue]) {
          const buckets = SUITE_HEATMAP_BUCKETS;
          const got = await b.heatmap({ ns, windowSec: W, stepSec: STEP, buckets, now });
          expect(got.cells.length).toBe(got.times.length);
          for (const row of got.cells) expect(row.length).toBe(buckets);
          for (const t of got.times) expect(t % (STEP * 1000)).toBe(0);
          expect([...got.times].sort((x, y) => x - y)).toEqual(got.times);

          const want = new Map<number, Map<number, Map<string, number>>>();
          for (const e of events) {
            if (e.ns !== ns || !inWindow(e, now, W)) continue;
            const t = bucketOf(e.ts, STEP);
            const row = want.get(t) ?? new Map<number, Map<string, number>>();
            const j = fnv1a32(e.key) % buckets;
            const cell = row.get(j) ?? new Map<string, number>();
            cell.set(e.key, (cell.get(e.key) ?? 0) + e.count);
            row.set(j, cell);
            want.set(t, row);
          }
          for (const t of want.keys()) expect(got.times).toContain(t);
          got.times.forEach((t, i) => {
            for (let j = 0; j < buckets; j++) {
              const cell = got.cells[i]![j]!;
              const keys = want.get(t)?.get(j);
              if (!keys) {
                expect(cell).toEqual({ count: 0, hottestKey: null, hottestCount: 0 });
                continue;
              }
              const counts = [...keys.values()];
              const top = Math.max(...counts);
              expect(cell.count).toBe(counts.reduce((s, c) => s + c, 0));
              expect(cell.hottestCount).toBe(top);
              const tied = [...keys].filter(([, c]) => c === top).map(([k]) => k);
              expect(tied).toContain(cell.hottestKey);
            }
          });
          const total = got.cells.flat().reduce((s, c) => s + c.count, 0);
          expect(total).toBe(
            [...expectedKeyCounts(events, now, { ns, windowSec: W }).values()].reduce((s, c) => s + c, 0),
          );
        }
      });
    });

    describe('totals', () => {
      const expectTotals = async (windowSec: number, ns?: string) => {
        const want = new Map<string, { ns: string; pattern: string; decision: string; count: number }>();
        for (const e of events) {
          if (!inWindow(e, now, windowSec) || (ns !== undefined && e.ns !== ns)) continue;
          const id = JSON.stringify([e.ns, e.pattern, e.decision]);
          const t = want.get(id) ?? { ns: e.ns, pattern: e.pattern, decision: e.decision, count: 0 };
          t.count += e.count;
          want.set(id, t);
        }
        const got = await b.totals(ns === undefined ? { windowSec, now } : { windowSec, now, ns });
        const key = (t: { ns: string; pattern: string; decision: string }) =>
          JSON.stringify([t.ns, t.pattern, t.decision]);
        const sorted = <T extends { ns: string; pattern: string; decision: string }>(xs: T[]) =>
          [...xs].sort((x, y) => (key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : 0));
        expect(sorted(got.filter((t) => t.count > 0))).toEqual(sorted([...want.values()]));
      };

      it('counts decisions by namespace, pattern and decision', async () => {
        await expectTotals(W);
        await expectTotals(3600);
        await expectTotals(7200);
      });

      it('narrows to one namespace, even one that needs escaping', async () => {
        await expectTotals(W, NS.rateLimit);
        await expectTotals(W, NS.nasty);
        expect(await b.totals({ windowSec: W, now, ns: "' OR '1'='1" })).toEqual([]);
      });
    });

    describe('lookup', () => {
      const expectTrail = async (requestId: string) => {
        const got = await b.lookup(requestId);
        const want = expectedTrail(events, requestId);
        expect(got.length).toBe(want.length);
        got.forEach((g, i) => {
          const w = want[i]!;
          // Check the time first, to the backend's resolution; then everything else it keeps.
          expect(w.ts - g.ts).toBeGreaterThanOrEqual(0);
          expect(w.ts - g.ts).toBeLessThan(trail.tsResolutionMs);
          const { id, ts: _ts, spanId, ...rest } = g;
          const { id: wantId, ts: _wantTs, spanId: wantSpan, ...wantRest } = w;
          expect(rest).toEqual(wantRest);
          if (trail.ids) expect(id).toBe(wantId);
          if (trail.spanIds) expect(spanId).toBe(wantSpan);
        });
        return got;
      };

      it('returns every event of a request, oldest first', async () => {
        const got = await expectTrail(REQUEST_ID);
        expect(got.map((e) => e.decision)).toEqual(['applied', 'duplicate', 'duplicate']);
        await expectTrail('req-7');
      });

      it('finds a request id that needs escaping, with value, shard and epoch', async () => {
        const [e] = await expectTrail(NASTY_REQUEST_ID);
        expect(e).toMatchObject({ key: "o'brien", value: 42.5, shard: 2, epoch: 7 });
      });

      it('finds nothing for unknown or injected ids', async () => {
        for (const id of ['req-unknown', "req-9f2' OR '1'='1", `${REQUEST_ID} `, 'req-9f%']) {
          expect(await b.lookup(id)).toEqual([]);
        }
      });
    });

    describe('input validation', () => {
      it('rejects windows, steps, limits and buckets that are not positive integers in range', async () => {
        const base = { ns: NS.rateLimit, now };
        await expect(b.hotKeys({ ...base, windowSec: 0, limit: 3 })).rejects.toThrow();
        await expect(b.hotKeys({ ...base, windowSec: W, limit: 0 })).rejects.toThrow();
        await expect(b.hotKeys({ ...base, windowSec: W, limit: 2.5 })).rejects.toThrow();
        await expect(b.hotKeys({ ...base, windowSec: Number.NaN, limit: 3 })).rejects.toThrow();
        await expect(b.series({ ...base, key: HOT_KEY, windowSec: W, stepSec: -60 })).rejects.toThrow();
        await expect(b.series({ ...base, key: HOT_KEY, windowSec: W, stepSec: 0.5 })).rejects.toThrow();
        await expect(b.heatmap({ ...base, windowSec: W, stepSec: STEP, buckets: 0 })).rejects.toThrow();
        await expect(b.totals({ windowSec: -1, now })).rejects.toThrow();
      });
    });
  });
}
