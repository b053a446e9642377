// The AE SQL backend against a real engine: ClickHouse 18.16 (Debian's), which runs the SQL AE's
// reference documents, behind a fetch that speaks AE's SQL API. scripts/clickhouse.sh starts a server
// on KEYWARDEN_CH_PORT (default 18123) or reuses the one there, under a lease: runs on one machine may
// overlap, and the last one out stops a server that a test run started (never one started by hand).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DecisionEvent } from '../contract';
import { knownStream, runBackendSuite } from '../query/backend.case';
import { AnalyticsEngineBackend, AnalyticsEngineError } from './index';
import { aeRowsFromStream, aeTableDdl, clickhouseFetch, clickhouseQuery, type SeenRequest } from './testing';

// The repo's types are workerd's (no @types/node): the few node APIs used here are typed by hand.
type ExecFile = (
  file: string,
  args: string[],
  opts: { timeout: number; env: Record<string, string | undefined> },
  cb: (err: Error | null, stdout: string, stderr: string) => void,
) => void;
const proc = (globalThis as unknown as { process: { env: Record<string, string | undefined>; pid: number } })
  .process;

const CH_URL = `http://127.0.0.1:${proc.env.KEYWARDEN_CH_PORT ?? '18123'}/`;
// Tables of their own, so overlapping runs never read each other's rows.
const DATASET = `keywarden_events_${proc.pid}`;
const ESCAPING_DATASET = `keywarden_escaping_${proc.pid}`;
const TOKEN = 'kw-test-token-5f3a9c';

async function clickhouseScript(command: 'start' | 'release'): Promise<string> {
  const { execFile } = (await import('node:child_process' as string)) as { execFile: ExecFile };
  const env = { ...proc.env, KEYWARDEN_CH_LEASE: String(proc.pid) };
  return new Promise((resolve, reject) => {
    execFile('bash', ['scripts/clickhouse.sh', command], { timeout: 110_000, env }, (err, stdout, stderr) =>
      err
        ? reject(new Error(`scripts/clickhouse.sh ${command} failed: ${stderr || err.message}`))
        : resolve(stdout),
    );
  });
}

async function loadTable(dataset: string, events: readonly DecisionEvent[]) {
  await clickhouseQuery(CH_URL, `DROP TABLE IF EXISTS ${dataset}`);
  await clickhouseQuery(CH_URL, aeTableDdl(dataset));
  const rows = aeRowsFromStream(events, dataset);
  await clickhouseQuery(
    CH_URL,
    `INSERT INTO ${dataset} FORMAT JSONEachRow`,
    rows.map((r) => JSON.stringify(r)).join('\n'),
  );
  const seen: SeenRequest[] = [];
  const backend = new AnalyticsEngineBackend({
    accountId: '0123456789abcdef0123456789abcdef',
    apiToken: TOKEN,
    dataset,
    fetch: clickhouseFetch(CH_URL, seen),
  });
  return { backend, rows, seen };
}

let engine: Promise<{ now: number } & Awaited<ReturnType<typeof loadTable>>> | undefined;
function seeded() {
  engine ??= (async () => {
    await clickhouseScript('start');
    const now = Date.now();
    return { now, ...(await loadTable(DATASET, knownStream(now))) };
  })();
  return engine;
}

afterAll(async () => {
  if (!engine) return;
  await clickhouseQuery(CH_URL, `DROP TABLE IF EXISTS ${DATASET}`).catch(() => undefined);
  await clickhouseQuery(CH_URL, `DROP TABLE IF EXISTS ${ESCAPING_DATASET}`).catch(() => undefined);
  await clickhouseScript('release');
});

runBackendSuite('Analytics Engine SQL on ClickHouse 18.16', async () => {
  const { backend, now } = await seeded();
  return { backend, now };
});

// Functions the AE SQL reference documents (statements, aggregate, date-time, maths, encoding).
const AE_DOCUMENTED = new Set([
  'sum',
  'min',
  'max',
  'count',
  'intDiv',
  'toUnixTimestamp',
  'toDateTime',
  'hex',
]);

describe('Analytics Engine SQL on ClickHouse 18.16: what only AE has', () => {
  let e: Awaited<ReturnType<typeof seeded>>;
  beforeAll(async () => {
    e = await seeded();
  });

  it('holds sampled rows (_sample_interval > 1) whose weighted counts add up to the stream', () => {
    expect(e.rows.some((r) => Number(r._sample_interval) > 1)).toBe(true);
    const weighted = e.rows.reduce((s, r) => s + Number(r.double1) * Number(r._sample_interval), 0);
    expect(weighted).toBe(knownStream(e.now).reduce((s, ev) => s + ev.count, 0));
    expect(e.rows.length).toBeLessThan(knownStream(e.now).length);
  });

  it('sent the SQL API only single-table SQL with documented functions, as the bearer', async () => {
    await e.backend.totals({ windowSec: 300, now: e.now });
    expect(e.seen.length).toBeGreaterThan(10);
    for (const req of e.seen) {
      expect(req.method).toBe('POST');
      expect(req.url).toBe(
        'https://api.cloudflare.com/client/v4/accounts/0123456789abcdef0123456789abcdef/analytics_engine/sql',
      );
      expect(req.authorization).toBe(`Bearer ${TOKEN}`);
      expect(req.sql.endsWith(' FORMAT JSON')).toBe(true);
      const outsideLiterals = req.sql.replace(/'[^']*'/g, "''");
      expect(outsideLiterals.match(/\bFROM\b/g)).toEqual(['FROM']);
      expect(outsideLiterals).not.toMatch(/\b(JOIN|UNION)\b|--|\/\*|;/i);
      for (const [, fn] of outsideLiterals.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*\(/g)) {
        expect(AE_DOCUMENTED, `${fn} in ${req.sql}`).toContain(fn);
      }
    }
  });

  it('round-trips every ASCII character, and more, as keys, namespaces and request ids', async () => {
    const now = e.now;
    const nowSec = Math.floor(now / 1000);
    const odd = [
      ...Array.from({ length: 128 }, (_, c) => `k${String.fromCharCode(c)}k`),
      String.fromCharCode(...Array.from({ length: 127 }, (_, c) => c + 1)),
      '\\',
      "'",
      "\\'",
      "'\\",
      "\\\\''\\\"",
      '\u2028\u2029\uFEFF',
      '😀👩‍👩‍👧',
      "'); SELECT 1; --",
    ];
    const events: DecisionEvent[] = odd.map((s, i) => ({
      v: 1,
      id: `fuzz:${i}`,
      ts: (nowSec - 30) * 1000,
      ns: `${i}:${s.slice(0, 100)}`,
      key: s,
      pattern: 'counter',
      decision: 'incremented',
      count: i + 1,
      requestId: `r${s}`,
    }));
    const { backend } = await loadTable(ESCAPING_DATASET, events);
    for (const [i, s] of odd.entries()) {
      const ns = `${i}:${s.slice(0, 100)}`;
      const hot = await backend.hotKeys({ ns, windowSec: 300, limit: 5, now });
      expect(hot.keys, JSON.stringify(s)).toEqual([{ key: s, count: i + 1, error: 0 }]);
      const series = await backend.series({ ns, key: s, windowSec: 300, stepSec: 300, now });
      expect(
        series.points.reduce((n, p) => n + p.count, 0),
        JSON.stringify(s),
      ).toBe(i + 1);
      const trail = await backend.lookup(`r${s}`);
      expect(
        trail.map((t) => [t.ns, t.key, t.requestId]),
        JSON.stringify(s),
      ).toEqual([[ns, s, `r${s}`]]);
    }
  });

  it('reports an engine error with its status and message, never the token', async () => {
    const missing = new AnalyticsEngineBackend({
      accountId: 'acct',
      apiToken: TOKEN,
      dataset: 'no_such_dataset',
      fetch: clickhouseFetch(CH_URL),
    });
    const err = await missing.totals({ windowSec: 60, now: e.now }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(AnalyticsEngineError);
    const ae = err as AnalyticsEngineError;
    expect(ae.code).toBe('engine_error');
    expect(ae.status).toBeGreaterThanOrEqual(400);
    expect(ae.message).toContain(String(ae.status));
    expect(ae.message).toMatch(/no_such_dataset/);
    expect(ae.message).not.toContain(TOKEN);
  });
});
