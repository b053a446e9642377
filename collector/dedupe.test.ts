import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  emptyRanges,
  intervalsOf,
  MAX_RANGES,
  markIntervals,
  markSeen,
  type Overlap,
  overlapOf,
  type SeenRanges,
} from './dedupe';

/** Seqs 0..300 keep an emitter far below MAX_RANGES intervals, where the ranges are exact. */
const MAX_SEQ = 300;

/** Small seqs often, so the floor (everything from 0) rises and the ranges meet it. */
const seq = fc.oneof(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: MAX_SEQ }));

/** The seqs of flat inclusive intervals, one by one. */
function seqsOf(intervals: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < intervals.length; i += 2) {
    for (let q = intervals[i]!; q <= intervals[i + 1]!; q++) out.push(q);
  }
  return out;
}

/**
 * Sorted distinct seqs as flat inclusive intervals: maximal runs, each cut where `cuts` says (so a
 * unit may also hold two intervals that touch, which is still sorted and disjoint).
 */
function toIntervals(seqs: Iterable<number>, cuts: readonly boolean[] = []): number[] {
  const sorted = [...new Set(seqs)].sort((a, b) => a - b);
  const out: number[] = [];
  sorted.forEach((q, i) => {
    if (out.length > 0 && out[out.length - 1] === q - 1 && !cuts[i % Math.max(cuts.length, 1)]) {
      out[out.length - 1] = q;
    } else out.push(q, q);
  });
  return out;
}

function modelOverlap(model: ReadonlySet<number>, intervals: readonly number[]): Overlap {
  const seqs = seqsOf(intervals);
  const seen = seqs.filter((q) => model.has(q)).length;
  return seen === 0 ? 'none' : seen === seqs.length ? 'all' : 'some';
}

/** Sorted, disjoint, non-adjacent (else they would be one), all above floor + 1, and few. */
function expectWellFormed(s: SeenRanges): void {
  expect(s.ranges.length % 2).toBe(0);
  expect(s.ranges.length).toBeLessThanOrEqual(MAX_RANGES * 2);
  for (let i = 0; i < s.ranges.length; i += 2) {
    expect(s.ranges[i]!).toBeLessThanOrEqual(s.ranges[i + 1]!);
    expect(s.ranges[i]!).toBeGreaterThan((i === 0 ? s.floor : s.ranges[i - 1]!) + 1);
  }
}

/** What `s` holds, as seqs: the floor counts from 0 (seqs are non-negative). */
function expectHolds(s: SeenRanges, model: ReadonlySet<number>): void {
  expect(seqsOf(intervalsOf(s))).toEqual([...model].sort((a, b) => a - b));
}

type Op =
  | { kind: 'seq'; seq: number }
  | { kind: 'unit'; seqs: number[]; cuts: boolean[] }
  | { kind: 'query'; seqs: number[]; cuts: boolean[] };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('seq' as const), seq }),
  fc.record({
    kind: fc.constant('unit' as const),
    seqs: fc.oneof(
      fc.array(seq, { minLength: 1, maxLength: 12 }),
      // A run, as one emitter's batch mostly is.
      fc
        .tuple(seq, fc.integer({ min: 1, max: 25 }))
        .map(([a, n]) => Array.from({ length: n }, (_, i) => Math.min(a + i, MAX_SEQ))),
    ),
    cuts: fc.array(fc.boolean(), { maxLength: 5 }),
  }),
  fc.record({
    kind: fc.constant('query' as const),
    seqs: fc.array(seq, { minLength: 1, maxLength: 30 }),
    cuts: fc.array(fc.boolean(), { maxLength: 5 }),
  }),
);

describe('seen-seq ranges against a set of seqs', () => {
  it('marks, dedupes and answers overlap exactly as a set would, in any order', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const s = emptyRanges();
        const model = new Set<number>();
        for (const o of ops) {
          if (o.kind === 'seq') {
            // Check: a seq is new exactly when the set lacks it.
            expect(markSeen(s, o.seq)).toBe(!model.has(o.seq));
            model.add(o.seq);
          } else if (o.kind === 'unit') {
            // A shard marks a unit only when none of it was seen: keep the seqs the set lacks.
            const intervals = toIntervals(
              o.seqs.filter((q) => !model.has(q)),
              o.cuts,
            );
            if (intervals.length === 0) continue;
            expect(overlapOf(s, intervals)).toBe('none');
            markIntervals(s, intervals);
            for (const q of seqsOf(intervals)) model.add(q);
            // Check: the whole unit now reads as seen.
            expect(overlapOf(s, intervals)).toBe('all');
          } else {
            const intervals = toIntervals(o.seqs, o.cuts);
            // Check: none, all or some, exactly as the set says.
            expect(overlapOf(s, intervals)).toBe(modelOverlap(model, intervals));
          }
          expectWellFormed(s);
          expectHolds(s, model);
        }
        // Check: every seq in 0..MAX_SEQ + 1 reads as the set says, alone and as a duplicate.
        for (let q = 0; q <= MAX_SEQ + 1; q++) {
          expect(overlapOf(s, [q, q]), `seq ${q}`).toBe(model.has(q) ? 'all' : 'none');
        }
      }),
      { numRuns: 1_000 },
    );
  });

  it('rebuilds the same ranges from intervalsOf (what a unit carries from the Worker to the shard)', () => {
    fc.assert(
      fc.property(fc.array(seq, { maxLength: 200 }), (seqs) => {
        const s = emptyRanges();
        for (const q of seqs) markSeen(s, q);
        const intervals = intervalsOf(s);
        // Check: the intervals are sorted and disjoint; a fresh shard takes them as unseen, then as seen.
        for (let i = 2; i < intervals.length; i += 2)
          expect(intervals[i]!).toBeGreaterThan(intervals[i - 1]!);
        const shard = emptyRanges();
        expect(overlapOf(shard, intervals)).toBe('none');
        markIntervals(shard, intervals);
        expect(shard).toEqual(s);
        if (seqs.length > 0) expect(overlapOf(shard, intervals)).toBe('all');
      }),
      { numRuns: 500 },
    );
  });

  it('starts empty: nothing seen, no intervals', () => {
    const s = emptyRanges();
    expect(intervalsOf(s)).toEqual([]);
    expect(overlapOf(s, [0, 0])).toBe('none');
    expect(overlapOf(s, [0, 5, 9, 12])).toBe('none');
    // Check: a fresh value each time, not a shared one that a mark would change for everyone.
    markSeen(s, 0);
    expect(emptyRanges()).toEqual({ floor: -1, ranges: [] });
  });
});

describe('markIntervals out of order', () => {
  it('joins an interval below the newest to the neighbours it touches, and to the floor', () => {
    const s = emptyRanges();
    markIntervals(s, [10, 12, 20, 22, 30, 31]);
    expect(s).toEqual({ floor: -1, ranges: [10, 12, 20, 22, 30, 31] });
    // Check: a gap filled exactly fuses both sides.
    expect(overlapOf(s, [13, 19])).toBe('none');
    markIntervals(s, [13, 19]);
    expect(s).toEqual({ floor: -1, ranges: [10, 22, 30, 31] });
    // Check: touching only the next interval extends it downwards, and not the one before.
    markIntervals(s, [5, 8]);
    expect(s).toEqual({ floor: -1, ranges: [5, 8, 10, 22, 30, 31] });
    markIntervals(s, [24, 25]);
    expect(s).toEqual({ floor: -1, ranges: [5, 8, 10, 22, 24, 25, 30, 31] });
    // Check: touching only the previous interval extends it upwards.
    markIntervals(s, [26, 27]);
    expect(s).toEqual({ floor: -1, ranges: [5, 8, 10, 22, 24, 27, 30, 31] });
    // Check: one seq between two intervals fuses them.
    markIntervals(s, [9, 9]);
    expect(s).toEqual({ floor: -1, ranges: [5, 22, 24, 27, 30, 31] });
    // Check: reaching 0 turns the first interval into the floor.
    markIntervals(s, [0, 4]);
    expect(s).toEqual({ floor: 22, ranges: [24, 27, 30, 31] });
    // Check: one unit of two intervals filling two gaps leaves everything under the floor.
    expect(overlapOf(s, [23, 23, 28, 29])).toBe('none');
    markIntervals(s, [23, 23, 28, 29]);
    expect(s).toEqual({ floor: 31, ranges: [] });
    expect(overlapOf(s, [0, 31])).toBe('all');
    expect(overlapOf(s, [31, 32])).toBe('some');
    expect(overlapOf(s, [32, 40])).toBe('none');
  });

  it('fills a gap under the newest interval in a unit that also extends it', () => {
    const s = emptyRanges();
    markIntervals(s, [3, 5, 10, 12]);
    markIntervals(s, [7, 8, 13, 15]);
    expect(s).toEqual({ floor: -1, ranges: [3, 5, 7, 8, 10, 15] });
    expect(overlapOf(s, [6, 6, 9, 9])).toBe('none');
    expect(overlapOf(s, [5, 7])).toBe('some');
    expect(overlapOf(s, [4, 5, 7, 8, 10, 10])).toBe('all');
    markIntervals(s, [6, 6, 9, 9]);
    expect(s).toEqual({ floor: -1, ranges: [3, 15] });
  });
});
