import { describe, expect, it } from 'vitest';
import { AnalyticsWriter } from './ae-writer';

function recorder(failEvery = 0) {
  const written: number[] = [];
  let calls = 0;
  const dataset = {
    writeDataPoint(p?: AnalyticsEngineDataPoint) {
      calls++;
      if (failEvery > 0 && calls % failEvery === 0) throw new Error('AE refused the point');
      written.push(p!.doubles![0] as number);
    },
  } as AnalyticsEngineDataset;
  return { dataset, written };
}

const point = (n: number): AnalyticsEngineDataPoint => ({ doubles: [n] });

describe('AnalyticsWriter', () => {
  it('writes at most the budget per invocation, in order, until the backlog is gone', () => {
    const { dataset, written } = recorder();
    const w = new AnalyticsWriter(dataset, 100_000);
    const sent: number[] = [];
    let next = 0;
    // Check: a backlog that grows past the compaction point over many invocations keeps its order.
    for (let round = 0; round < 200; round++) {
      const batch = Array.from({ length: round % 3 === 0 ? 600 : 50 }, () => point(next++));
      for (const p of batch) sent.push(p.doubles![0] as number);
      w.enqueue(batch);
      expect(w.drain(100)).toBeLessThanOrEqual(100);
    }
    while (w.pending > 0) expect(w.drain(250)).toBeGreaterThan(0);
    expect(written).toEqual(sent);
    expect(w.written).toBe(sent.length);
    expect(w.dropped).toBe(0);
  });

  it('keeps at most maxPending points and counts every one it drops or AE refuses', () => {
    const { dataset, written } = recorder(10);
    const w = new AnalyticsWriter(dataset, 1_000);
    w.enqueue(Array.from({ length: 1_500 }, (_, i) => point(i)));
    expect(w.pending).toBe(1_000);
    expect(w.dropped).toBe(500);
    while (w.pending > 0) w.drain(250);
    // Check: every 10th write failed and was counted, never silently lost.
    expect(written).toHaveLength(900);
    expect(w.dropped).toBe(600);
    expect(written.at(-1)).toBe(998);
  });

  it('does nothing without a dataset binding', () => {
    const w = new AnalyticsWriter(undefined);
    w.enqueue([point(1)]);
    expect(w.pending).toBe(0);
    expect(w.drain()).toBe(0);
  });
});
