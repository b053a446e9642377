// `npm start`'s demo traffic drives the real pattern objects: after a few seconds of it, the
// collector shows decisions of most patterns, with the duplicates and retries a dashboard should
// show, and no request got a 5xx.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ESM script shared with npm start
import { startDemoTraffic as startDemoTrafficUntyped } from '../scripts/demo-traffic.mjs';
import { type DevServer, startServer, TOKENS } from './server';

type DemoStats = {
  requests: number;
  byRoute: Record<string, Record<string, number>>;
  networkErrors: number;
  serverErrors: { method: string; path: string; status: number; body: string; answer: string }[];
  reloads: number;
  ingestedEvents: number;
};
const startDemoTraffic = startDemoTrafficUntyped as (opts: {
  url: string;
  apiToken: string;
  operatorToken: string;
  ingestToken: string;
  requestsPerSecond?: number;
  seed?: number;
  log?: (line: string) => void;
}) => { stop: () => Promise<void>; stats: () => DemoStats };

type Totals = { totals: { ns: string; pattern: string; decision: string; count: number }[] };

let server: DevServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.stop();
});

const OBJECT_PATTERNS = [
  'idempotency',
  'counter',
  'rate_limit',
  'queue',
  'lock',
  'ordering',
  'single_flight',
];

async function totals(): Promise<Totals['totals']> {
  const res = await fetch(`${server.url}/api/totals?window=60`);
  expect(res.status).toBe(200);
  return ((await res.json()) as Totals).totals;
}

describe('demo traffic', () => {
  it('drives the pattern objects: decisions of many patterns, duplicates and retries, no 5xx', async () => {
    const logged: string[] = [];
    const demo = startDemoTraffic({
      url: server.url,
      apiToken: TOKENS.KEYWARDEN_API_TOKEN,
      operatorToken: TOKENS.KEYWARDEN_OPERATOR_TOKEN,
      ingestToken: TOKENS.KEYWARDEN_INGEST_TOKEN,
      requestsPerSecond: 80,
      seed: 7,
      log: (line) => logged.push(line),
    });
    await new Promise((ok) => setTimeout(ok, 6_000));
    await demo.stop();
    const stats = demo.stats();

    // Check: it sent real requests, and none was a server error or went unanswered. (A source file
    // edited during the run makes wrangler dev reload and answer 503 itself: counted apart.)
    expect(stats.requests).toBeGreaterThan(100);
    expect(stats.serverErrors).toEqual([]);
    expect(stats.networkErrors).toBe(0);
    expect(logged.filter((line) => !line.includes('wrangler dev reloaded'))).toEqual([]);

    // Check: the objects' decisions reached the collector (emitters flush every ~250 ms).
    let rows = await totals();
    const deadline = Date.now() + 8_000;
    const patternsSeen = () =>
      new Set(rows.filter((r) => OBJECT_PATTERNS.includes(r.pattern)).map((r) => r.pattern));
    while (patternsSeen().size < 6 && Date.now() < deadline) {
      await new Promise((ok) => setTimeout(ok, 250));
      rows = await totals();
    }
    expect(patternsSeen().size).toBeGreaterThanOrEqual(5);
    const count = (decision: string) =>
      rows.filter((r) => r.decision === decision).reduce((n, r) => n + r.count, 0);
    expect(count('duplicate')).toBeGreaterThan(0);
    expect(count('in_flight') + count('retried') + count('gap') + count('joined')).toBeGreaterThan(0);
    // Check: the Pay demo charged through the idempotency ledger and its counters.
    expect(rows.some((r) => r.ns === 'demo.pay' && r.decision === 'applied')).toBe(true);
    // Check: the outside producer's events came in through /ingest too.
    expect(rows.some((r) => r.ns === 'partner.webhooks' && r.pattern === 'webhook')).toBe(true);
  });
});
