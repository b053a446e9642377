import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { event, postIngest } from '../test/events';
import { fnv1a32 } from './hash';

type Heatmap = {
  times: number[];
  cells: { count: number; hottestKey: string | null; hottestCount: number }[][];
  step: number;
  buckets: number;
};

describe('GET /api/heatmap', () => {
  it('is a time × key-bucket matrix whose cells add up and name their hottest key', async () => {
    const ns = 'heatmap.route';
    const keys = ['a', 'b', 'c', 'hot'];
    const events = keys.flatMap((key, k) =>
      Array.from({ length: key === 'hot' ? 40 : 5 }, (_, i) =>
        event({ ns, key, emitter: `hm-${k}`, seq: i }),
      ),
    );
    const { url, init } = postIngest({ events });
    expect((await SELF.fetch(url, init)).status).toBe(200);
    const res = await SELF.fetch(`http://keywarden.test/api/heatmap?ns=${ns}&window=120&step=60&buckets=16`);
    expect(res.status).toBe(200);
    const h = (await res.json()) as Heatmap;
    // Check the shape: one row per step over the window, one cell per key bucket.
    expect(h.times.length).toBeGreaterThanOrEqual(2);
    expect(h.times.length).toBeLessThanOrEqual(3);
    for (const t of h.times) expect(t % 60_000).toBe(0);
    for (const row of h.cells) expect(row).toHaveLength(16);
    // Check: everything sent is in some cell, and the hot key's cell names it.
    expect(h.cells.flat().reduce((n, c) => n + c.count, 0)).toBe(55);
    const hotCell = h.cells.map((row) => row[fnv1a32('hot') % 16]!).find((c) => c.count > 0)!;
    expect(hotCell.hottestKey).toBe('hot');
    expect(hotCell.hottestCount).toBe(40);
  });

  it('refuses more than 1,000 key buckets', async () => {
    const res = await SELF.fetch('http://keywarden.test/api/heatmap?ns=x&buckets=1001');
    expect(res.status).toBe(400);
  });
});

describe('GET /api/lookup', () => {
  it('lists one request’s events in time order, and by seq within a millisecond', async () => {
    const ts = Date.now();
    const events = [10, 9, 2, 11].map((seq) =>
      event({ key: 'order:ties', emitter: 'ties', seq, ts, requestId: 'req-ties' }),
    );
    const { url, init } = postIngest({ events });
    expect((await SELF.fetch(url, init)).status).toBe(200);
    const res = await SELF.fetch('http://keywarden.test/api/lookup?requestId=req-ties');
    const body = (await res.json()) as { trail: { id: string }[] };
    expect(body.trail.map((e) => e.id)).toEqual(['ties:2', 'ties:9', 'ties:10', 'ties:11']);
  });
});
