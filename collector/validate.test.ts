import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DECISIONS, decisionEventSchema, PATTERNS } from './contract';
import { emptyRanges, MAX_RANGES, markSeen } from './dedupe';
import { validateEvent } from './validate';

const valid = {
  v: 1,
  id: 'do-abc:41',
  ts: 1_700_000_000_000,
  ns: 'payments.idempotency',
  key: 'order:123',
  pattern: 'idempotency',
  decision: 'applied',
  count: 1,
};

// Values near every boundary the contract draws, so random events land on both sides of each.
const anyValue = fc.oneof(
  fc.constantFrom(
    undefined,
    null,
    0,
    -1,
    1,
    1.5,
    65535,
    65536,
    8.64e15,
    8.64e15 + 2,
    Number.MAX_SAFE_INTEGER,
    2 ** 60,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    '',
    'x',
    'k'.repeat(128),
    'é'.repeat(64),
    'é'.repeat(65),
    'k'.repeat(129),
    'k'.repeat(512),
    'k'.repeat(513),
    '😀'.repeat(128),
    '😀'.repeat(129),
    'a:1',
    'a:01',
    'a:-1',
    ':1',
    'a:b:2',
    'x:99999999999999999',
    true,
    [],
    {},
  ),
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.constantFrom(...PATTERNS),
  fc.constantFrom(...Object.values(DECISIONS).flat()),
);

const fields = [
  ...Object.keys(valid),
  'value',
  'min',
  'max',
  'durationMs',
  'requestId',
  'traceId',
  'spanId',
  'shard',
  'epoch',
  'extra',
];

const mutatedEvent = fc
  .array(fc.tuple(fc.constantFrom(...fields), anyValue), { maxLength: 5 })
  .map((changes) => {
    const e: Record<string, unknown> = { ...valid };
    for (const [k, v] of changes) {
      if (v === undefined) delete e[k];
      else e[k] = v;
    }
    return e;
  });

describe('the hand-written validator', () => {
  it('gives the same verdict as the zod schema on any input', () => {
    fc.assert(
      fc.property(fc.oneof(mutatedEvent, fc.anything()), (input) => {
        const fast = validateEvent(input).ok;
        const schema = decisionEventSchema.safeParse(input).success;
        expect(fast).toBe(schema);
      }),
      { numRuns: 5_000 },
    );
  });

  it('accepts every pattern with each of its decisions and nothing else', () => {
    for (const p of PATTERNS) {
      for (const d of DECISIONS[p])
        expect(validateEvent({ ...valid, pattern: p, decision: d }).ok).toBe(true);
      expect(validateEvent({ ...valid, pattern: p, decision: 'nope' })).toMatchObject({
        ok: false,
        code: 'invalid_decision',
      });
    }
  });

  it('says what to fix', () => {
    expect(validateEvent({ ...valid, key: 'k'.repeat(513) })).toMatchObject({
      code: 'too_long',
      message: expect.stringContaining('key'),
    });
    expect(validateEvent({ ...valid, ns: 'é'.repeat(65) })).toMatchObject({ code: 'too_long' });
    expect(validateEvent({ ...valid, surprise: 1 })).toMatchObject({
      code: 'unknown_field',
      message: expect.stringContaining('surprise'),
    });
    expect(validateEvent({ ...valid, v: 2 })).toMatchObject({ code: 'unsupported_version' });
    expect(validateEvent({ ...valid, count: 0 })).toMatchObject({ code: 'invalid_value' });
  });
});

describe('seen-seq ranges (dedupe)', () => {
  it('reports each seq new exactly once, in any order, however often replayed', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 600 }), (seqs) => {
        const s = emptyRanges();
        const seen = new Set<number>();
        for (const q of seqs) {
          expect(markSeen(s, q)).toBe(!seen.has(q));
          seen.add(q);
        }
        // Ranges stay sorted, disjoint and non-adjacent, and above the floor.
        for (let i = 0; i < s.ranges.length; i += 2) {
          expect(s.ranges[i]!).toBeLessThanOrEqual(s.ranges[i + 1]!);
          expect(s.ranges[i]!).toBeGreaterThan((i === 0 ? s.floor : s.ranges[i - 1]!) + 1);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('keeps an in-order emitter at one range, and bounds a fragmented one', () => {
    const s = emptyRanges();
    for (let q = 1000; q < 101_000; q++) markSeen(s, q);
    expect(s.ranges).toEqual([1000, 100_999]);
    const f = emptyRanges();
    for (let q = 0; q < 4 * MAX_RANGES * 3; q += 3) markSeen(f, q);
    expect(f.ranges.length).toBeLessThanOrEqual(MAX_RANGES * 2);
  });
});
