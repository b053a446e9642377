import { env } from 'cloudflare:test';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { event } from '../test/events';
import { Collector } from './client';
import type { DecisionEvent } from './contract';

/** One event of a generated stream, before it gets its id and time. */
type Spec = {
  emitter: number;
  /** seqs skipped before this one: an emitter whose other events went to other shards */
  gap: number;
  key: number;
  count: number;
  value: number | null;
  durationMs: number | null;
  /** 'request': sent whole and kept in the trail; 'trace': sent whole, no trail */
  whole: 'no' | 'request' | 'trace';
  /** quarter seconds before the run's start, so rows span a few seconds */
  back: number;
};

const spec: fc.Arbitrary<Spec> = fc.record({
  emitter: fc.nat({ max: 3 }),
  gap: fc.constantFrom(0, 0, 0, 0, 1, 3),
  key: fc.nat({ max: 3 }),
  count: fc.integer({ min: 1, max: 4 }),
  value: fc.option(fc.integer({ min: -50, max: 100 }), { freq: 2 }),
  durationMs: fc.option(fc.integer({ min: 0, max: 500 }), { freq: 3 }),
  whole: fc.constantFrom('no', 'no', 'no', 'no', 'request', 'trace'),
  back: fc.nat({ max: 20 }),
});

/**
 * One batch: a window of the stream (windows of two batches overlap, so a shard sees a unit in
 * part), plus some events picked anywhere (repeats within the batch, old events), in one of three
 * orders, sometimes with an invalid event among them.
 */
type BatchSpec = {
  start: number;
  length: number;
  picks: number[];
  order: 'stream' | 'reversed' | 'shuffled';
  seed: number;
  invalid: boolean;
};

const batchSpec: fc.Arbitrary<BatchSpec> = fc.record({
  start: fc.nat({ max: 60 }),
  length: fc.integer({ min: 0, max: 25 }),
  picks: fc.array(fc.nat({ max: 60 }), { maxLength: 5 }),
  order: fc.constantFrom('stream', 'reversed', 'shuffled'),
  seed: fc.nat(),
  invalid: fc.boolean(),
});

function streamOf(ns: string, specs: readonly Spec[], now: number): DecisionEvent[] {
  const next = [0, 0, 0, 0];
  return specs.map((s) => {
    const seq = next[s.emitter]! + s.gap;
    next[s.emitter] = seq + 1;
    return event({
      ns,
      emitter: `${ns}/emitter-${s.emitter}`,
      seq,
      ts: now - s.back * 250,
      key: `k${s.key}`,
      count: s.count,
      ...(s.value === null ? {} : { value: s.value }),
      ...(s.durationMs === null ? {} : { durationMs: s.durationMs }),
      ...(s.whole === 'request' ? { requestId: `${ns}/request` } : {}),
      ...(s.whole === 'trace' ? { traceId: `${ns}/trace` } : {}),
    });
  });
}

function batchOf(ns: string, stream: readonly DecisionEvent[], b: BatchSpec, i: number): unknown[] {
  const n = stream.length;
  const at = b.start % n;
  const picked = [...stream.slice(at, at + b.length), ...b.picks.map((p) => stream[p % n]!)];
  if (b.order === 'reversed') picked.reverse();
  else if (b.order === 'shuffled') {
    // Deterministic in the seed, so a shrunk counterexample replays the same order.
    let x = b.seed | 1;
    for (let j = picked.length - 1; j > 0; j--) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const k = x % (j + 1);
      [picked[j], picked[k]] = [picked[k]!, picked[j]!];
    }
  }
  const out: unknown[] = picked;
  if (b.invalid) {
    const bad = { ...event({ ns, emitter: `${ns}/invalid`, seq: i, key: 'k0' }), decision: 'acquired' };
    out.splice(b.seed % (out.length + 1), 0, bad);
  }
  return out;
}

/** Per key: the count, the value sum and how many values it stands for, each event once. */
function expectedByKey(events: Iterable<DecisionEvent>) {
  const byKey = new Map<string, { count: number; vsum: number; vn: number }>();
  for (const e of events) {
    const k = byKey.get(e.key) ?? { count: 0, vsum: 0, vn: 0 };
    k.count += e.count;
    if (e.value !== undefined) {
      k.vsum += e.value;
      k.vn += e.count;
    }
    byKey.set(e.key, k);
  }
  return byKey;
}

/** Hot keys from the rollups (not the sketches): exact counts of the last five minutes. */
function exactHotKeys(collector: Collector, ns: string) {
  return collector.hotKeys({ ns, windowSec: 300, limit: 100, now: Date.now(), exact: true });
}

async function seriesTotals(collector: Collector, ns: string, key: string) {
  const { points } = await collector.series({ ns, key, windowSec: 300, stepSec: 60, now: Date.now() });
  let count = 0;
  let vsum = 0;
  let vn = 0;
  for (const p of points) {
    count += p.count;
    vsum += p.value?.sum ?? 0;
    vn += p.value?.n ?? 0;
  }
  return { count, vsum, vn, points };
}

describe('coalesced shard batches, through the collector and its shards', () => {
  it('counts every event once, however the batches repeat, overlap and reorder the stream', async () => {
    const collector = new Collector(env);
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(spec, { minLength: 1, maxLength: 40 }),
        fc.array(batchSpec, { minLength: 1, maxLength: 6 }),
        async (specs, batches) => {
          // A namespace (and emitters) of its own: runs share the shards.
          const ns = `shard-batch.property.${run++}`;
          const stream = streamOf(ns, specs, Date.now());
          const sent = new Map<string, DecisionEvent>();
          let accepted = 0;
          let duplicates = 0;
          let valid = 0;
          for (const [i, b] of batches.entries()) {
            const events = batchOf(ns, stream, b, i);
            const fresh = new Set<string>();
            for (const e of events as DecisionEvent[]) {
              if (e.decision === 'acquired') continue;
              if (!sent.has(e.id)) fresh.add(e.id);
            }
            const validHere = events.length - (b.invalid ? 1 : 0);
            const r = await collector.ingest(events);
            // Check: each call takes exactly the ids not seen before, the rest are duplicates.
            expect(r.accepted, `batch ${i}`).toBe(fresh.size);
            expect(r.duplicates, `batch ${i}`).toBe(validHere - fresh.size);
            expect(r.rejected.map((x) => x.code)).toEqual(b.invalid ? ['invalid_decision'] : []);
            for (const e of events as DecisionEvent[]) if (e.decision !== 'acquired') sent.set(e.id, e);
            accepted += r.accepted;
            duplicates += r.duplicates;
            valid += validHere;
          }
          // Check: over all calls, one acceptance per distinct id, and every valid event answered once.
          expect(accepted).toBe(sent.size);
          expect(accepted + duplicates).toBe(valid);

          const expected = expectedByKey(sent.values());
          const hot = await exactHotKeys(collector, ns);
          // Check: the exact hot keys are the model's per-key totals, each distinct event counted once.
          expect(Object.fromEntries(hot.keys.map((k) => [k.key, k.count]))).toEqual(
            Object.fromEntries([...expected].map(([key, k]) => [key, k.count])),
          );
          expect(hot.total).toBe([...sent.values()].reduce((n, e) => n + e.count, 0));
          // Check: the series carries the same counts and each value once.
          for (const [key, k] of expected) {
            const s = await seriesTotals(collector, ns, key);
            expect({ key, count: s.count, vsum: s.vsum, vn: s.vn }).toEqual({ key, ...k });
          }
          // Check: the trail holds each event with the request id once.
          const trail = await collector.lookup(`${ns}/request`);
          expect(trail.map((e) => e.id).sort()).toEqual(
            [...sent.values()]
              .filter((e) => e.requestId !== undefined)
              .map((e) => e.id)
              .sort(),
          );
        },
      ),
      { numRuns: 25 },
    );
  }, 120_000);

  it('takes only the new part of a unit the shard has seen in part', async () => {
    const ns = 'shard-batch.partial';
    const collector = new Collector(env);
    const e = (seq: number) =>
      event({ ns, key: 'k', emitter: 'partial-E', seq, count: 1 + (seq % 2), value: seq, durationMs: 10 });
    const first = await collector.ingest(Array.from({ length: 10 }, (_, i) => e(i)));
    expect(first).toEqual({ accepted: 10, duplicates: 0, rejected: [] });
    // Seqs 5..14: 5..9 were taken by the first batch, 10..14 are new.
    const second = await collector.ingest(Array.from({ length: 10 }, (_, i) => e(5 + i)));
    expect(second).toEqual({ accepted: 5, duplicates: 5, rejected: [] });
    // Check: seqs 0..14 counted once each, odd ones count 2: 15 + 7.
    const hot = await exactHotKeys(collector, ns);
    expect(hot.keys).toEqual([{ key: 'k', count: 22, error: 0 }]);
    // Check: each value once, standing for its event's count: 0 + 1 + … + 14.
    const s = await seriesTotals(collector, ns, 'k');
    expect({ count: s.count, vsum: s.vsum, vn: s.vn }).toEqual({ count: 22, vsum: 105, vn: 22 });
    const values = s.points.flatMap((p) => (p.value ? [p.value] : []));
    expect(Math.min(...values.map((v) => v.min))).toBe(0);
    expect(Math.max(...values.map((v) => v.max))).toBe(14);
  });

  it('counts an event repeated within one batch once', async () => {
    const ns = 'shard-batch.repeat';
    const collector = new Collector(env);
    const once = event({ ns, key: 'k', emitter: 'repeat-E', seq: 7, count: 3 });
    expect(await collector.ingest([once, once])).toEqual({ accepted: 1, duplicates: 1, rejected: [] });
    const hot = await exactHotKeys(collector, ns);
    // Check: the key counts the event's count once, not twice.
    expect(hot.keys).toEqual([{ key: 'k', count: 3, error: 0 }]);
    expect(hot.total).toBe(3);
  });

  it('keeps each request event of a unit seen in part in the trail once', async () => {
    const ns = 'shard-batch.trail';
    const requestId = 'shard-batch-trail-request';
    const collector = new Collector(env);
    // Even seqs carry the request id (sent whole), odd ones are coalesced into rows: one unit holds both.
    const e = (seq: number) =>
      event({ ns, key: 'k', emitter: 'trail-E', seq, ...(seq % 2 === 0 ? { requestId } : {}) });
    expect(await collector.ingest([0, 1, 2, 3].map(e))).toMatchObject({ accepted: 4, duplicates: 0 });
    expect(await collector.ingest([2, 3, 4, 5, 6, 7].map(e))).toMatchObject({ accepted: 4, duplicates: 2 });
    // Check: the lookup shows seqs 0, 2, 4, 6, each once.
    const trail = await collector.lookup(requestId);
    expect(trail.map((t) => t.id).sort()).toEqual(['trail-E:0', 'trail-E:2', 'trail-E:4', 'trail-E:6']);
    const hot = await exactHotKeys(collector, ns);
    expect(hot.keys).toEqual([{ key: 'k', count: 8, error: 0 }]);
  });
});
