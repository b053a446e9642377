import { env, runInDurableObject } from 'cloudflare:test';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { event } from '../test/events';
import { shardOf } from './hash';
import {
  HotWindows,
  hotScope,
  parseHotScope,
  SKETCH_CAPACITY,
  type Summary,
  type SummaryStore,
  TIERS,
} from './hot-windows';
import { encodeShardBatch } from './shard-batch';
import { RollupStore } from './store';

/** The real SQLite store of a collector shard, driven directly; the clock is the test's. */
async function withStore<T>(name: string, f: (store: RollupStore, sql: SqlStorage) => T): Promise<T> {
  const stub = env.COLLECTOR_SHARD.get(env.COLLECTOR_SHARD.idFromName(name));
  return runInDurableObject(stub, (_, state) => f(new RollupStore(state.storage.sql), state.storage.sql));
}

describe('hot windows', () => {
  it('bounds every key of a window: count − error ≤ true ≤ count, and no key over 1/capacity is missed', async () => {
    let run = 0;
    await withStore('hot-windows-property', (store) => {
      fc.assert(
        fc.property(
          fc.array(
            fc.tuple(
              fc.integer({ min: 0, max: 400 }),
              fc.integer({ min: 0, max: 119 }),
              fc.integer({ min: 1, max: 5 }),
            ),
            {
              minLength: 1,
              maxLength: 3000,
            },
          ),
          (events) => {
            // Zipf-ish: small key ids are frequent; seconds spread over two minutes. A fresh ns per
            // run: the store is real and keeps what earlier runs wrote.
            const name = `prop.${run++}`;
            const start = 1_800_000_000_000;
            let now = start;
            const hot = new HotWindows(store, () => now);
            const truth = new Map<string, number>();
            let total = 0;
            for (const [k, sec, w] of [...events].sort((a, b) => a[1] - b[1])) {
              const key = k < 200 ? `k${k % 5}` : `k${k}`;
              now = start + sec * 1000;
              hot.add([name], key, now, w);
              hot.close(now);
              truth.set(key, (truth.get(key) ?? 0) + w);
              total += w;
            }
            const r = hot.query(name, 300, now)!;
            expect(r.total).toBe(total);
            for (const k of r.keys) {
              const t = truth.get(k.key) ?? 0;
              expect(k.count).toBeGreaterThanOrEqual(t);
              expect(k.count - k.error).toBeLessThanOrEqual(t);
            }
            const reported = new Set(r.keys.map((k) => k.key));
            for (const [key, t] of truth)
              if (t * SKETCH_CAPACITY > total) expect(reported.has(key)).toBe(true);
          },
        ),
        { numRuns: 40 },
      );
    });
  });

  it('holds in-memory summaries under a key budget, reading older ones from SQLite, with the same answers', async () => {
    await withStore('hot-windows-budget', (store) => {
      const t0 = 1_800_000_000_000;
      let now = t0;
      const budget = 600;
      const bounded = new HotWindows(store, () => now, budget);
      const unbounded = new HotWindows(store, () => now);
      const scopes = ['b.one', 'b.two', 'b.three'];
      // 20 minutes, an event every 2 s per scope: 70 keys, so summaries fill up (64 named keys).
      for (let sec = 0; sec < 20 * 60; sec += 2) {
        now = t0 + sec * 1000;
        for (const [i, scope] of scopes.entries()) {
          const key = `k${(sec * 7 + i) % 70}`;
          bounded.add([scope], key, now, 1 + (sec % 3));
          unbounded.add([`u.${scope}`], key, now, 1 + (sec % 3));
        }
        bounded.close(now);
        unbounded.close(now);
        // Check: never over budget, at any point.
        expect(bounded.stats().recentKeys).toBeLessThanOrEqual(budget);
      }
      expect(unbounded.stats().recentKeys).toBeGreaterThan(budget);
      for (const windowSec of [10, 120, 300, 900, 3600]) {
        for (const scope of scopes) {
          // Check: what memory no longer holds comes from SQLite: the answers are the same.
          expect(bounded.query(scope, windowSec, now)).toEqual(unbounded.query(`u.${scope}`, windowSec, now));
        }
      }
    });
  });

  it('keeps in memory only what each tier serves (the day tier: its last hour)', async () => {
    await withStore('hot-windows-memory', (store) => {
      const t0 = 1_800_000_000_000;
      let now = t0;
      const hot = new HotWindows(store, () => now);
      for (let min = 0; min < 150; min++) {
        now = t0 + min * 60_000;
        hot.add(['m'], `k${min % 3}`, now, 1);
        hot.close(now);
      }
      // One event a minute: at most 3 summaries of the 2 min tier, 16 of the 15 min one, 61 of the day one
      // (its last hour; the 150 minutes are in SQLite).
      expect(hot.stats().recentSummaries).toBeLessThanOrEqual(3 + 16 + 61);
      expect(hot.query('m', 2 * 3600, now)!.total).toBe(120);
    });
  });

  it('closes buckets into summaries kept in SQLite, and a restart reads them back', async () => {
    await withStore('hot-windows-restart', (store, sql) => {
      const t0 = 1_800_000_000_000;
      let now = t0;
      const hot = new HotWindows(store, () => now);
      for (let i = 0; i < 100; i++) hot.add(['r'], i % 4 === 0 ? 'hot' : `k${i}`, t0, 1);
      now = t0 + TIERS[1]!.bucketMs + TIERS[1]!.graceMs + 1;
      // Check: the 1 s and the 5 s buckets closed; the minute is still open.
      expect(hot.close(now)).toBe(2);
      const rows = sql
        .exec<{ n: number }>("SELECT count(*) AS n FROM kw_hot_summaries WHERE ns = 'r'")
        .one().n;
      expect(rows).toBe(2);
      const again = new HotWindows(store, () => now);
      const r = again.query('r', 60, now)!;
      expect(r.keys[0]).toMatchObject({ key: 'hot', count: 25 });
      expect(r.total).toBe(100);
    });
  });

  it('re-summarizes a closed bucket from the rollups when late events arrive', async () => {
    const ns = 'hot.late';
    const stub = env.COLLECTOR_SHARD.get(env.COLLECTOR_SHARD.idFromName(`shard-${shardOf(ns, 'late', 4)}`));
    const now = Date.now();
    const old = now - 60_000;
    await stub.ingest(
      encodeShardBatch([event({ ns, key: 'late', emitter: 'late', seq: 1, ts: old, count: 7 })]),
    );
    const r = await stub.hotKeys({ ns, from: 0, windowSec: 120, limit: 5 });
    expect(r.exact).toBe(false);
    expect(r.keys).toEqual([{ key: 'late', count: 7, error: 0 }]);
    // A second late event for the same (closed) bucket adds up.
    await stub.ingest(
      encodeShardBatch([event({ ns, key: 'late', emitter: 'late', seq: 2, ts: old, count: 3 })]),
    );
    expect((await stub.hotKeys({ ns, from: 0, windowSec: 120, limit: 5 })).keys[0]!.count).toBe(10);
  });

  it('forgets summaries past their tier’s keep time at the shard’s retention pass', async () => {
    await withStore('hot-windows-prune', (store, sql) => {
      const now = Date.now();
      const s = (t: number): Summary => ({
        t,
        total: 1,
        unnamedBound: 0,
        keys: [{ key: 'k', count: 1, error: 0 }],
      });
      store.saveSummary('short', 'p', s(now - 16 * 60_000));
      store.saveSummary('short', 'p', s(now - 60_000));
      store.saveSummary('long', 'p', s(now - 16 * 60_000));
      store.saveSummary('long', 'p', s(now - 25 * 3600_000));
      store.prune(now);
      const left = sql
        .exec<{ tier: string; t: number }>(
          "SELECT tier, t FROM kw_hot_summaries WHERE ns = 'p' ORDER BY tier, t",
        )
        .toArray()
        .map((r) => [r.tier, now - r.t]);
      expect(left).toEqual([
        ['long', 16 * 60_000],
        ['short', 60_000],
      ]);
    });
  });

  it('answers a pattern or decision from its own sketches, and longer-than-a-day windows exactly', async () => {
    const ns = 'hot.exact.path';
    const stub = env.COLLECTOR_SHARD.get(env.COLLECTOR_SHARD.idFromName(`shard-${shardOf(ns, 'x', 4)}`));
    await stub.ingest(
      encodeShardBatch([
        event({ ns, key: 'x', emitter: 'exact-path', seq: 1, count: 2 }),
        event({ ns, key: 'y', emitter: 'exact-path', seq: 2, count: 3, decision: 'duplicate' }),
      ]),
    );
    const applied = await stub.hotKeys({
      ns,
      from: 0,
      windowSec: 60,
      limit: 5,
      pattern: 'idempotency',
      decision: 'applied',
    });
    expect(applied).toEqual({ exact: false, total: 2, keys: [{ key: 'x', count: 2, error: 0 }] });
    const pattern = await stub.hotKeys({ ns, from: 0, windowSec: 60, limit: 5, pattern: 'idempotency' });
    expect(pattern).toMatchObject({ exact: false, total: 5 });
    const week = await stub.hotKeys({ ns, from: 0, windowSec: 7 * 86400, limit: 5 });
    expect(week).toMatchObject({ exact: true, total: 5 });
  });

  it('rebuilds a filtered scope after a restart from the rollups of that decision only', async () => {
    await withStore('hot-windows-scopes', (store) => {
      const now = Date.now();
      const scope = hotScope('scoped', 'lock', 'waited')!;
      expect(parseHotScope(scope)).toEqual({ ns: 'scoped', pattern: 'lock', decision: 'waited' });
      expect(hotScope('\u0001odd')).toBeNull();
      const hot = new HotWindows(store, () => now);
      hot.add([scope], 'sku:1', now, 4);
      expect(hot.query(scope, 10, now)?.total).toBe(4);
      expect(hot.query('scoped', 10, now)?.total).toBe(0);
    });
  });

  it('unions summaries by adding each candidate’s bounds', () => {
    const a: Summary = { t: 0, total: 10, unnamedBound: 1, keys: [{ key: 'x', count: 6, error: 0 }] };
    const b: Summary = { t: 5000, total: 10, unnamedBound: 2, keys: [{ key: 'y', count: 5, error: 1 }] };
    const u = new HotWindows({} as SummaryStore).constructor as typeof HotWindows;
    expect(u.tierFor(10)?.name).toBe('instant');
    expect(u.tierFor(300)?.name).toBe('short');
    expect(u.tierFor(3600)?.name).toBe('long');
    expect(u.tierFor(2 * 86400)).toBeNull();
    // x: 6 in a, ≤ 2 in b; y: ≤ 1 in a, 5 (±1) in b
    return import('./hot-windows').then(({ unionSummaries }) => {
      expect(unionSummaries([a, b])).toEqual({
        total: 20,
        keys: [
          { key: 'x', count: 8, error: 2 },
          { key: 'y', count: 6, error: 2 },
        ],
      });
    });
  });
});
