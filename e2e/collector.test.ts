import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './browser';
import { type DevServer, startServer, TOKENS } from './server';

let server: DevServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.stop();
});

function event(i: number, key: string) {
  return {
    v: 1,
    id: `e2e-emitter:${i}`,
    ts: Date.now(),
    ns: 'e2e.orders',
    key,
    pattern: 'idempotency',
    decision: 'applied',
    count: 1,
    requestId: `e2e-req-${i}`,
  };
}

async function post(events: unknown[]) {
  const res = await fetch(`${server.url}/ingest`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKENS.KEYWARDEN_INGEST_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ events }),
  });
  return { status: res.status, body: (await res.json()) as { accepted: number; duplicates: number } };
}

describe('collector under wrangler dev', () => {
  it('ingests over real HTTP, dedupes replays, and answers hot keys, series and lookup', async () => {
    const events = Array.from({ length: 500 }, (_, i) =>
      event(i, i % 5 === 0 ? 'order:hot' : `order:${i % 40}`),
    );
    expect(await post(events)).toEqual({ status: 200, body: { accepted: 500, duplicates: 0, rejected: [] } });
    expect((await post(events)).body).toMatchObject({ accepted: 0, duplicates: 500 });
    const hot = (await (
      await fetch(`${server.url}/api/hot-keys?ns=e2e.orders&window=60&limit=3`)
    ).json()) as {
      total: number;
      keys: { key: string; count: number }[];
    };
    expect(hot.total).toBe(500);
    expect(hot.keys[0]).toMatchObject({ key: 'order:hot', count: 100 });
    const series = (await (
      await fetch(`${server.url}/api/keys/e2e.orders/order:hot/series?window=60&step=60`)
    ).json()) as { points: { count: number }[] };
    expect(series.points.reduce((n, p) => n + p.count, 0)).toBe(100);
    const lookup = (await (await fetch(`${server.url}/api/lookup?requestId=e2e-req-5`)).json()) as {
      trail: { id: string; key: string }[];
    };
    expect(lookup.trail.map((e) => e.id)).toEqual(['e2e-emitter:5']);
  });

  it('counts a later replay of an acknowledged batch once', async () => {
    const events = Array.from({ length: 50 }, (_, i) => event(10_000 + i, 'order:restart'));
    await post(events);
    expect((await post(events)).body.duplicates).toBe(50);
  });

  it('shows the hottest keys on the first page in a real browser', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`${server.url}/`);
      // Check: the page fetched the API and drew the hot key of the namespace.
      const firstKey = page.locator('section[data-ns="e2e.orders"] tr[data-key]').first();
      await firstKey.waitFor({ timeout: 10_000 });
      expect(await firstKey.getAttribute('data-key')).toBe('order:hot');
      await page.screenshot({ path: '.tmp/first-page.png' }).catch(() => {});
    } finally {
      await browser.close();
    }
  });
});
