import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HeavyHitters, skew } from './index';

type Event = { key: string; weight: number };

// Skewed streams over 1 to 100 keys: key index = min of two draws, so low indices are hot (a few keys
// take most of the traffic when the key space is small); weights as events' `count`.
const events = (maxEvents: number) =>
  fc.integer({ min: 1, max: 100 }).chain((keys) =>
    fc.array(
      fc
        .tuple(fc.nat({ max: keys - 1 }), fc.nat({ max: keys - 1 }), fc.integer({ min: 1, max: 5 }))
        .map(([a, b, weight]): Event => ({ key: `order:${Math.min(a, b)}`, weight })),
      { maxLength: maxEvents },
    ),
  );
const sizes = fc
  .tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 40 }))
  .map(([capacity, extra]) => ({ capacity, counters: capacity + extra }));

function sketchOf(stream: readonly Event[], capacity: number, counters: number): HeavyHitters {
  const s = new HeavyHitters(capacity, counters);
  for (const e of stream) s.add(e.key, e.weight);
  return s;
}

function truth(stream: readonly Event[]): { counts: Map<string, number>; total: number } {
  const counts = new Map<string, number>();
  let total = 0;
  for (const e of stream) {
    counts.set(e.key, (counts.get(e.key) ?? 0) + e.weight);
    total += e.weight;
  }
  return { counts, total };
}

// The sketch's promises against the exact counts of the stream behind it.
function checkGuarantees(s: HeavyHitters, stream: readonly Event[]): void {
  const { counts, total } = truth(stream);
  expect(s.total()).toBe(total);
  expect(s.absentBound()).toBeLessThanOrEqual(total / s.counters);
  const top = s.top(s.capacity);
  const reported = new Set(top.map((h) => h.key));
  for (const h of top) {
    const t = counts.get(h.key) ?? 0;
    expect(h.count - h.error).toBeLessThanOrEqual(t);
    expect(t).toBeLessThanOrEqual(h.count);
  }
  for (let i = 1; i < top.length; i++) expect(top[i - 1]!.count).toBeGreaterThanOrEqual(top[i]!.count);
  for (const [key, t] of counts) {
    const { count, error } = s.estimate(key);
    // Check count − error ≤ true ≤ count, and error ≤ N/M.
    expect(count - error).toBeLessThanOrEqual(t);
    expect(t).toBeLessThanOrEqual(count);
    expect(error).toBeLessThanOrEqual(total / s.counters);
    // Check every key over N/M is counted and every key over N/T is reported.
    if (t > total / s.counters) expect(count - error).toBeGreaterThanOrEqual(1);
    if (t > total / s.capacity) expect(reported.has(key)).toBe(true);
  }
}

describe('HeavyHitters', () => {
  it('reports the heaviest keys with their counts, exactly while they fit', () => {
    const s = new HeavyHitters(4, 16);
    s.add('order:1', 5);
    s.add('order:2');
    s.add('order:1');
    s.add('order:3', 2);
    expect(s.top(2)).toEqual([
      { key: 'order:1', count: 6, error: 0 },
      { key: 'order:3', count: 2, error: 0 },
    ]);
    expect(s.total()).toBe(9);
    expect(s.estimate('order:2')).toEqual({ count: 1, error: 0 });
    expect(s.estimate('never')).toEqual({ count: 0, error: 0 });
  });

  it('rejects weights that are not integers ≥ 1 and sizes that make no sense', () => {
    const s = new HeavyHitters();
    for (const w of [0, -1, 1.5, Number.NaN, 2 ** 53]) expect(() => s.add('k', w)).toThrow(RangeError);
    expect(s.total()).toBe(0);
    expect(() => new HeavyHitters(0)).toThrow(RangeError);
    expect(() => new HeavyHitters(8, 4)).toThrow(RangeError);
  });

  it('keeps its guarantees on any stream', () => {
    fc.assert(
      fc.property(events(600), sizes, (stream, { capacity, counters }) => {
        checkGuarantees(sketchOf(stream, capacity, counters), stream);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps its guarantees at every step while purges move counters around', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: 9 }), fc.integer({ min: 1, max: 3 })), {
          minLength: 20,
          maxLength: 300,
        }),
        fc.integer({ min: 1, max: 3 }),
        (draws, capacity) => {
          // Four recurring keys among one-off keys, in a table of a few cells: a purge every few events.
          const s = new HeavyHitters(capacity, capacity + 1);
          const seen: Event[] = [];
          draws.forEach(([d, weight], i) => {
            const key = d < 4 ? `hot:${d}` : `cold:${i}`;
            s.add(key, weight);
            seen.push({ key, weight });
            if (i % 5 === 0) checkGuarantees(s, seen);
          });
        },
      ),
      { numRuns: 150 },
    );
  });

  it('finds a heavy key among 20,000 one-off keys in bounded memory', () => {
    const s = new HeavyHitters(8, 64);
    const stream: Event[] = [];
    for (let i = 0; i < 20_000; i++) {
      stream.push({ key: `tail:${i}`, weight: 1 });
      if (i % 10 === 0) stream.push({ key: 'hot', weight: 3 });
    }
    // The table grows to its full size with the first few hundred keys, then never again.
    for (const e of stream.slice(0, 500)) s.add(e.key, e.weight);
    const before = s.byteSize();
    for (const e of stream.slice(500)) s.add(e.key, e.weight);
    checkGuarantees(s, stream);
    expect(s.top(1)[0]).toMatchObject({ key: 'hot' });
    expect(s.top(1)[0]!.count - 6_000).toBeLessThanOrEqual(s.absentBound());
    // Check memory does not grow with distinct keys: only short names were added.
    expect(s.byteSize() - before).toBeLessThan(8 * 100);
  });

  it('starts small and grows with distinct keys, exact until its table is full', () => {
    const few = new HeavyHitters(64, 1024);
    for (let i = 0; i < 30; i++) few.add(`k${i}`, i + 1);
    const big = new HeavyHitters(64, 1024);
    for (let i = 0; i < 5_000; i++) big.add(`k${i % 1500}`, 1);
    // Check: a sketch of a few keys holds a few KB, not the full table.
    expect(few.byteSize()).toBeLessThan(big.byteSize() / 4);
    expect(few.absentBound()).toBe(0);
    expect(few.top(3)).toEqual([
      { key: 'k29', count: 30, error: 0 },
      { key: 'k28', count: 29, error: 0 },
      { key: 'k27', count: 28, error: 0 },
    ]);
    // 1,500 keys fit the full table (1,536 cells in use at most): grown, never purged, still exact.
    expect(big.absentBound()).toBe(0);
    expect(big.estimate('k7')).toEqual({ count: 4, error: 0 });
    // Check: a grown sketch survives serialization with its names and bounds.
    const again = HeavyHitters.fromBytes(big.toBytes());
    expect(again.top(5)).toEqual(big.top(5));
    again.add('k7', 2);
    expect(again.estimate('k7')).toEqual({ count: 6, error: 0 });
  });

  it('merges shard sketches into one that keeps the guarantees of the whole stream', () => {
    fc.assert(
      fc.property(
        events(600),
        sizes,
        fc.integer({ min: 1, max: 5 }),
        fc.boolean(),
        (stream, { capacity, counters }, parts, byKey) => {
          // Shards split by key (as CollectorShard routing does); time buckets split by position.
          const split: Event[][] = Array.from({ length: parts }, () => []);
          stream.forEach((e, i) => {
            const part = byKey
              ? Number(e.key.slice(6)) % parts
              : Math.floor((i * parts) / (stream.length || 1));
            split[part]!.push(e);
          });
          const merged = HeavyHitters.merged(split.map((p) => sketchOf(p, capacity, counters)));
          checkGuarantees(merged, stream);
          // Check merged bounds overlap the whole-stream sketch's: both contain the truth.
          const whole = sketchOf(stream, capacity, counters);
          for (const { key } of stream) {
            const a = merged.estimate(key);
            const b = whole.estimate(key);
            expect(Math.max(a.count - a.error, b.count - b.error)).toBeLessThanOrEqual(
              Math.min(a.count, b.count),
            );
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps counting after a merge, and merge() folds in place', () => {
    fc.assert(
      fc.property(events(300), events(300), events(300), sizes, (a, b, c, { capacity, counters }) => {
        const s = sketchOf(a, capacity, counters);
        s.merge(sketchOf(b, capacity, counters));
        for (const e of c) s.add(e.key, e.weight);
        checkGuarantees(s, [...a, ...b, ...c]);
      }),
      { numRuns: 150 },
    );
  });

  it('round-trips through its serialized form and keeps counting the same way', () => {
    fc.assert(
      fc.property(events(400), events(200), sizes, (head, tail, { capacity, counters }) => {
        const s = sketchOf(head, capacity, counters);
        const text = s.serialize();
        const back = HeavyHitters.deserialize(text);
        expect(back.top()).toEqual(s.top());
        expect(back.total()).toBe(s.total());
        expect(back.absentBound()).toBe(s.absentBound());
        expect(HeavyHitters.fromBytes(s.toBytes()).top()).toEqual(s.top());
        expect(JSON.parse(JSON.stringify({ sketch: s })).sketch).toBe(text);
        for (const e of tail) {
          s.add(e.key, e.weight);
          back.add(e.key, e.weight);
        }
        expect(back.top()).toEqual(s.top());
        for (const { key } of [...head, ...tail]) expect(back.estimate(key)).toEqual(s.estimate(key));
      }),
      { numRuns: 200 },
    );
  });

  it('round-trips counts far beyond 32 bits', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: 20 }), fc.integer({ min: 1, max: 2 ** 45 })), { maxLength: 60 }),
        (draws) => {
          const s = new HeavyHitters(4, 8);
          for (const [k, w] of draws) s.add(`big:${k}`, w);
          const back = HeavyHitters.deserialize(s.serialize());
          expect(back.top()).toEqual(s.top());
          expect(back.total()).toBe(s.total());
        },
      ),
      { numRuns: 100 },
    );
  });

  it('refuses corrupt serialized sketches', () => {
    const s = new HeavyHitters(2, 8);
    for (let i = 0; i < 50; i++) s.add(`k${i % 7}`, 1 + (i % 3));
    const bytes = s.toBytes();
    expect(() => HeavyHitters.fromBytes(bytes.subarray(0, bytes.length - 1))).toThrow(RangeError);
    expect(() => HeavyHitters.fromBytes(new Uint8Array([...bytes, 0]))).toThrow(RangeError);
    expect(() => HeavyHitters.fromBytes(new Uint8Array([9, ...bytes.subarray(1)]))).toThrow(RangeError);
  });
});

describe('skew', () => {
  it('is flat for a uniform distribution: top-1 share 1/n, max/mean 1, cv 0', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 1, max: 10_000 }), (n, c) => {
        const figures = skew(
          Array.from({ length: n }, () => c),
          n * c,
        );
        expect(figures.top1Share).toBeCloseTo(1 / n, 12);
        expect(figures.maxOverMean).toBeCloseTo(1, 12);
        expect(figures.cv).toBeCloseTo(0, 12);
      }),
    );
  });

  it('gives the whole share to a lone key, and measures it against all traffic', () => {
    expect(skew([42], 42)).toEqual({ top1Share: 1, maxOverMean: 1, cv: 0 });
    // The other 58 events went to keys the sketch did not report.
    expect(skew([42], 100)).toEqual({ top1Share: 0.42, maxOverMean: 1, cv: 0 });
    expect(skew([], 0)).toEqual({ top1Share: 0, maxOverMean: 0, cv: 0 });
  });

  it('takes mean and deviation over the reported keys', () => {
    // Mean 2, population standard deviation 1.
    expect(skew([3, 1], 4)).toEqual({ top1Share: 0.75, maxOverMean: 1.5, cv: 0.5 });
    // One key with 91 of 100 events and nine with 1: mean 10, max/mean 9.1.
    const figures = skew([91, 1, 1, 1, 1, 1, 1, 1, 1, 1], 100);
    expect(figures.top1Share).toBe(0.91);
    expect(figures.maxOverMean).toBeCloseTo(9.1, 12);
    expect(figures.cv).toBeCloseTo(27 / 10, 12);
  });

  it('stays within its ranges on any counts', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 1e6 }), { minLength: 1, maxLength: 200 }), (counts) => {
        const total = counts.reduce((a, b) => a + b, 0);
        const { top1Share, maxOverMean, cv } = skew(counts, total);
        expect(top1Share).toBeGreaterThan(0);
        expect(top1Share).toBeLessThanOrEqual(1);
        expect(maxOverMean).toBeGreaterThanOrEqual(1 - 1e-12);
        expect(maxOverMean).toBeLessThanOrEqual(counts.length + 1e-9);
        expect(cv).toBeGreaterThanOrEqual(0);
      }),
    );
  });
});
