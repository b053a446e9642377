import { describe, expect, it } from 'vitest';
import type { DecisionEvent } from './contract';
import { MinuteBuffer, RollupBuffer, type RollupRow } from './rollups';

const MINUTE = 60_000;
const t0 = Date.UTC(2026, 11, 4, 12, 0, 0);

function rows(events: Partial<DecisionEvent>[]): RollupRow[] {
  const b = new RollupBuffer();
  for (const e of events) {
    b.add({
      v: 1,
      id: 'x:1',
      ts: t0,
      ns: 'n',
      key: 'k',
      pattern: 'rate_limit',
      decision: 'allowed',
      count: 1,
      ...e,
    } as DecisionEvent);
  }
  return b.drain();
}

describe('RollupBuffer', () => {
  it('keeps one row per key, decision and second, apart by what one data point must not mix', () => {
    const r = rows([
      { ts: t0 + 10 },
      { ts: t0 + 900, count: 2 },
      { ts: t0 + 1000 },
      { ts: t0 + 20, value: 5 },
      { ts: t0 + 30, value: 7, count: 3, min: 1, max: 9 },
      { ts: t0 + 40, requestId: 'r1' },
    ]);
    const byShape = r.map((x) => [x.t - t0, x.count, x.vn, x.vsum, x.vmin, x.vmax, x.own]);
    expect(byShape).toEqual([
      [0, 3, 0, 0, null, null, false],
      [1000, 1, 0, 0, null, null, false],
      [0, 4, 4, 12, 1, 9, false],
      [0, 1, 0, 0, null, null, true],
    ]);
  });
});

describe('MinuteBuffer', () => {
  it('writes a minute whole once it closes, not per flush', () => {
    const m = new MinuteBuffer();
    const now = t0 + 30_000;
    expect(m.add(rows([{ ts: t0 + 1000 }, { ts: t0 + 2000, count: 4 }]), now)).toEqual([]);
    expect(m.add(rows([{ ts: t0 + 3000, decision: 'limited' }]), now + 1000)).toEqual([]);
    expect(m.closeDue(now + 1000)).toBeNull();
    // Check: the open minute is there for a query, and stays open.
    expect(m.open().map((r) => [r.decision, r.count])).toEqual([
      ['allowed', 5],
      ['limited', 1],
    ]);
    const closed = m.closeDue(t0 + MINUTE + MinuteBuffer.GRACE_MS);
    expect(closed?.through).toBe(t0 + MINUTE);
    expect(closed?.rows.map((r) => [r.t, r.decision, r.count])).toEqual([
      [t0, 'allowed', 5],
      [t0, 'limited', 1],
    ]);
    expect(m.size).toBe(0);
  });

  it('hands back rows of a minute that closed before they came (added to it, not replacing it)', () => {
    const m = new MinuteBuffer();
    const late = m.add(rows([{ ts: t0 + 5000 }]), t0 + MINUTE + MinuteBuffer.GRACE_MS);
    expect(late.map((r) => r.t)).toEqual([t0 + 5000]);
    expect(m.size).toBe(0);
  });

  it('takes minutes rebuilt after a restart and keeps adding to them', () => {
    const m = new MinuteBuffer();
    m.load([
      {
        ns: 'n',
        key: 'k',
        pattern: 'rate_limit',
        decision: 'allowed',
        t: t0,
        count: 10,
        vsum: 0,
        vmin: null,
        vmax: null,
        vn: 0,
        dsum: 0,
        dn: 0,
      },
    ]);
    m.add(rows([{ ts: t0 + 59_000, count: 2 }]), t0 + 59_500);
    expect(m.closeDue(t0 + 2 * MINUTE)?.rows.map((r) => r.count)).toEqual([12]);
  });
});
