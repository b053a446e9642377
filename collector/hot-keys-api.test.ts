import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { event, postIngest } from '../test/events';

type HotKeys = {
  total: number;
  exact: boolean;
  capacity: number;
  keys: { key: string; count: number; error: number; share: number; rate: number; utilization: number }[];
  skew: { top1Share: number; maxOverMean: number; cv: number };
};

async function send(ns: string, counts: Record<string, number>, emitter: string) {
  let seq = 0;
  const events = Object.entries(counts).flatMap(([key, n]) =>
    Array.from({ length: n }, () => event({ ns, key, emitter, seq: seq++ })),
  );
  const { url, init } = postIngest({ events });
  expect((await SELF.fetch(url, init)).status).toBe(200);
}

async function hot(ns: string, query = ''): Promise<HotKeys> {
  const res = await SELF.fetch(`http://keywarden.test/api/hot-keys?ns=${ns}&window=10&limit=100${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as HotKeys;
}

describe('GET /api/hot-keys from the sketches', () => {
  it('gives each key its count, error bound, share, rate and utilization of the per-object capacity', async () => {
    await send('capacity.ns', { hot: 60, warm: 30, cold: 10 }, 'cap');
    const r = await hot('capacity.ns');
    expect(r.exact).toBe(false);
    expect(r.capacity).toBe(2); // KEYWARDEN_NS_CAPACITY in vitest.config.ts
    expect(r.total).toBe(100);
    expect(r.keys.map((k) => [k.key, k.count, k.error])).toEqual([
      ['hot', 60, 0],
      ['warm', 30, 0],
      ['cold', 10, 0],
    ]);
    expect(r.keys[0]).toMatchObject({ share: 0.6, rate: 6, utilization: 3 });
  });

  it('reports skew: none for a uniform namespace, a lot for one hot key', async () => {
    await send('skew.uniform', { a: 10, b: 10, c: 10, d: 10 }, 'uni');
    expect((await hot('skew.uniform')).skew).toEqual({ top1Share: 0.25, maxOverMean: 1, cv: 0 });
    await send('skew.single', { only: 25, x: 1, y: 1, z: 1 }, 'single');
    const s = (await hot('skew.single')).skew;
    expect(s.top1Share).toBeCloseTo(25 / 28);
    expect(s.maxOverMean).toBeCloseTo(25 / 7);
    expect(s.cv).toBeGreaterThan(1);
  });

  it('uses the default capacity of 1,000/s for other namespaces, and filters by pattern and decision', async () => {
    await send('capacity.default', { k: 5 }, 'def');
    const r = await hot('capacity.default', '&pattern=idempotency&decision=applied');
    expect(r).toMatchObject({ capacity: 1000, exact: false, total: 5 });
    expect(r.keys).toMatchObject([{ key: 'k', count: 5, error: 0 }]);
    expect((await hot('capacity.default', '&pattern=idempotency&decision=duplicate')).total).toBe(0);
    expect((await hot('capacity.default', '&pattern=idempotency')).total).toBe(5);
    // A decision without its pattern is answered exactly, from the rollups.
    expect(await hot('capacity.default', '&decision=applied')).toMatchObject({ exact: true, total: 5 });
  });
});

describe('GET /api/hot-keys?exact=true', () => {
  it('counts from the rollups when asked, and refuses a value that is not a boolean', async () => {
    await send('exact.asked', { a: 3, b: 1 }, 'exact-asked');
    const r = await hot('exact.asked', '&exact=true');
    expect(r).toMatchObject({ exact: true, total: 4 });
    expect(r.keys.map((k) => [k.key, k.count, k.error])).toEqual([
      ['a', 3, 0],
      ['b', 1, 0],
    ]);
    const bad = await SELF.fetch('http://keywarden.test/api/hot-keys?ns=exact.asked&exact=maybe');
    expect(bad.status).toBe(400);
  });
});
