// The AE SQL builder without an engine: escaping, validation, the exact SQL, answer assembly, and
// the HTTP client's requests and errors. ClickHouse runs the same SQL in clickhouse.node.test.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fnv1a32 } from '../hash';
import { ApiError } from '../http';
import {
  AnalyticsEngineBackend,
  AnalyticsEngineError,
  aeBackendFromEnv,
  heatmapResult,
  heatmapSql,
  hotKeysSql,
  isPlainText,
  lookupSql,
  seriesResult,
  seriesSql,
  stringEquals,
  totalsSql,
  trailResult,
  utf8Hex,
} from './index';

const NOW = 1_700_000_000_123; // 2023-11-14T22:13:20.123Z
const DS = 'keywarden_events';

/** The query with every literal blanked: what no input may change. */
function skeleton(sql: string): string {
  return sql.replace(/hex\((\w+)\) = '[0-9A-F]*'/g, "$1 = ''").replace(/'[^']*'/g, "''");
}

function fromHex(hex: string): string {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return new TextDecoder().decode(bytes);
}

function rejects400(f: () => unknown) {
  let thrown: unknown;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  // Check: a caller's mistake is a 400 whichever backend would have answered.
  expect(thrown).toBeInstanceOf(ApiError);
  expect(thrown).toMatchObject({ status: 400, code: 'invalid_query' });
}

describe('escaping', () => {
  it('writes plain text as a literal and everything else as hex of its UTF-8 bytes', () => {
    for (const s of ['order:123', 'payments.idempotency', 'tenant-a', 'a b', '', 'x@y/z#1']) {
      expect(isPlainText(s)).toBe(true);
    }
    for (const s of [
      "o'brien",
      'a\\b',
      'a\nb',
      'a\u0000b',
      'ключ',
      'a--b',
      'a;b',
      'a/*b',
      'a*/b',
      '"x"',
      '`x`',
    ]) {
      expect(isPlainText(s), JSON.stringify(s)).toBe(false);
    }
    expect(utf8Hex("o'brien")).toBe('6F27627269656E');
    expect(utf8Hex('é\u0000😀')).toBe('C3A900F09F9880');
    expect(stringEquals('blob2', 'order:123')).toBe("blob2 = 'order:123'");
    expect(stringEquals('blob2', "o'brien")).toBe("hex(blob2) = '6F27627269656E'");
  });

  it('no key, namespace or request id changes the shape of a query, and each can be read back', () => {
    const plain = {
      series: skeleton(seriesSql(DS, { ns: 'n', key: 'k', windowSec: 300, stepSec: 60, now: NOW }).sql),
      hot: skeleton(hotKeysSql(DS, { ns: 'n', windowSec: 300, limit: 5, now: NOW }).keys),
      lookup: skeleton(lookupSql(DS, 'r')),
    };
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }), (s) => {
        const series = seriesSql(DS, { ns: s, key: s, windowSec: 300, stepSec: 60, now: NOW }).sql;
        expect(skeleton(series)).toBe(plain.series);
        expect(skeleton(hotKeysSql(DS, { ns: s, windowSec: 300, limit: 5, now: NOW }).keys)).toBe(plain.hot);
        expect(skeleton(lookupSql(DS, s))).toBe(plain.lookup);
        const literal = /blob2\) = '([0-9A-F]+)'/.exec(series)?.[1];
        expect(literal === undefined ? series.includes(`blob2 = '${s}'`) : fromHex(literal) === s).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('validation', () => {
  const q = { ns: 'n', key: 'k', windowSec: 300, stepSec: 60, limit: 5, buckets: 8, now: NOW };

  it('takes only positive integers in range for windows, steps, limits and buckets', () => {
    for (const windowSec of [
      0,
      -60,
      1.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      91 * 86400,
      '60' as unknown as number,
    ]) {
      rejects400(() => hotKeysSql(DS, { ...q, windowSec }));
    }
    for (const stepSec of [0, -1, 0.5, 301]) rejects400(() => seriesSql(DS, { ...q, stepSec }));
    rejects400(() => seriesSql(DS, { ...q, windowSec: 86400, stepSec: 1 })); // 86 400 points
    for (const limit of [0, 1001, 2.5]) rejects400(() => hotKeysSql(DS, { ...q, limit }));
    for (const buckets of [0, 257, 1.5]) rejects400(() => heatmapSql(DS, { ...q, buckets }));
    for (const now of [Number.NaN, 0, 299_999, 9e15])
      rejects400(() => totalsSql(DS, { windowSec: 300, now }));
  });

  it('takes only known patterns and decisions, and bounded text', () => {
    rejects400(() => hotKeysSql(DS, { ...q, pattern: 'nope' as 'lock' }));
    rejects400(() => hotKeysSql(DS, { ...q, decision: 'nope' }));
    rejects400(() => hotKeysSql(DS, { ...q, pattern: 'rate_limit', decision: 'acquired' }));
    rejects400(() => hotKeysSql(DS, { ...q, ns: '' }));
    rejects400(() => hotKeysSql(DS, { ...q, ns: 'n'.repeat(129) }));
    rejects400(() => seriesSql(DS, { ...q, key: 'é'.repeat(257) }));
    rejects400(() => lookupSql(DS, ''));
    rejects400(() => lookupSql(DS, 'r'.repeat(257)));
  });

  it('takes only identifiers as dataset names', () => {
    // A bad dataset is the operator's configuration, so it is the backend's own error class.
    for (const dataset of ['a-b', '1abc', 'x; DROP TABLE y', '', 'a b']) {
      expect(() => new AnalyticsEngineBackend({ accountId: 'a', apiToken: 't', dataset })).toThrow(
        AnalyticsEngineError,
      );
      expect(() => totalsSql(dataset, { windowSec: 60, now: NOW })).toThrow(/dataset must be an identifier/);
    }
  });
});

describe('the SQL', () => {
  const window = 'timestamp > toDateTime(1699999700) AND timestamp <= toDateTime(1700000000)';

  it('hotKeys: weighted counts per key, and the namespace total', () => {
    const plan = hotKeysSql(DS, { ns: 'api', windowSec: 300, limit: 3, now: NOW, decision: 'limited' });
    expect(plan.keys).toBe(
      `SELECT blob2 AS k, sum(double1 * _sample_interval) AS c FROM keywarden_events WHERE blob1 = 'api' AND ${window} AND blob4 = 'limited' GROUP BY k ORDER BY c DESC, k ASC LIMIT 3`,
    );
    expect(plan.total).toBe(
      `SELECT sum(double1 * _sample_interval) AS c FROM keywarden_events WHERE blob1 = 'api' AND ${window} AND blob4 = 'limited'`,
    );
  });

  it('series: buckets by intDiv of the unix time, grouped by decision and whether a value is set', () => {
    const plan = seriesSql(DS, { ns: 'api', key: "o'brien", windowSec: 300, stepSec: 60, now: NOW });
    expect(plan.sql).toBe(
      "SELECT intDiv(toUnixTimestamp(timestamp), 60) * 60 AS t, blob3 AS p, blob4 AS d, double8 AS hv, sum(double1 * _sample_interval) AS c, sum(double2 * _sample_interval) AS vs, min(double6) AS vmin, max(double7) AS vmax FROM keywarden_events WHERE hex(index1) = '6170693A6F27627269656E' AND blob1 = 'api' AND hex(blob2) = '6F27627269656E' AND " +
        `${window} GROUP BY t, p, d, hv ORDER BY t ASC LIMIT 50000`,
    );
  });

  it('heatmap, totals and lookup', () => {
    expect(heatmapSql(DS, { ns: 'api', windowSec: 300, stepSec: 60, buckets: 8, now: NOW }).sql).toBe(
      `SELECT intDiv(toUnixTimestamp(timestamp), 60) * 60 AS t, blob2 AS k, sum(double1 * _sample_interval) AS c FROM keywarden_events WHERE blob1 = 'api' AND ${window} GROUP BY t, k ORDER BY c DESC, t ASC, k ASC LIMIT 10000`,
    );
    expect(totalsSql(DS, { windowSec: 300, now: NOW, ns: 'api' })).toBe(
      `SELECT blob1 AS ns, blob3 AS p, blob4 AS d, sum(double1 * _sample_interval) AS c FROM keywarden_events WHERE ${window} AND blob1 = 'api' GROUP BY ns, p, d ORDER BY c DESC, ns ASC, p ASC, d ASC LIMIT 10000`,
    );
    expect(lookupSql(DS, 'req-9f2')).toBe(
      "SELECT blob1 AS ns, blob2 AS k, blob3 AS p, blob4 AS d, blob5 AS rid, blob6 AS tid, double1 AS c, double2 AS v, double3 AS dur, double4 AS shard, double5 AS ep, double8 AS hv, double9 AS hd, blob7 AS eid, blob8 AS sid, double10 AS ets FROM keywarden_events WHERE blob5 = 'req-9f2' ORDER BY ets ASC, eid ASC LIMIT 1000",
    );
  });
});

describe('answers from rows', () => {
  it('series: coerces quoted 64-bit numbers, fills empty buckets, merges values', () => {
    const plan = seriesSql(DS, { ns: 'n', key: 'k', windowSec: 180, stepSec: 60, now: NOW });
    const rows = [
      { t: '1699999860', p: 'lock', d: 'waited', hv: 1, c: '2', vs: 20, vmin: 5, vmax: 15 },
      { t: '1699999860', p: 'lock', d: 'waited', hv: 1, c: 3, vs: 21, vmin: 7, vmax: 7 },
      { t: '1699999860', p: 'lock', d: 'acquired', hv: 0, c: 4, vs: 0, vmin: 0, vmax: 0 },
      { t: '1690000000', p: 'lock', d: 'acquired', hv: 0, c: 9, vs: 0, vmin: 0, vmax: 0 }, // outside: dropped
    ];
    expect(seriesResult(plan, rows).points).toEqual([
      { t: 1699999800_000, count: 0, decisions: {}, value: null },
      {
        t: 1699999860_000,
        count: 9,
        decisions: { 'lock.waited': 5, 'lock.acquired': 4 },
        value: { sum: 41, min: 5, max: 15, n: 5 },
      },
      { t: 1699999920_000, count: 0, decisions: {}, value: null },
      { t: 1699999980_000, count: 0, decisions: {}, value: null },
    ]);
  });

  it('heatmap: keys go to fnv1a32(key) % buckets, the heaviest key names the cell', () => {
    const plan = heatmapSql(DS, { ns: 'n', windowSec: 120, stepSec: 60, buckets: 3, now: NOW });
    const keys = ['a', 'b', 'c', 'd', 'e'];
    const rows = keys.map((k, i) => ({ t: '1699999920', k, c: String(10 - i) }));
    const got = heatmapResult(plan, rows);
    // (now - 120 s, now] starts inside the 1699999860 bucket.
    expect(got.times).toEqual([1699999860_000, 1699999920_000, 1699999980_000]);
    for (let j = 0; j < 3; j++) {
      const mine = keys.filter((k) => fnv1a32(k) % 3 === j);
      expect(got.cells[1]![j]).toEqual({
        count: mine.reduce((s, k) => s + 10 - keys.indexOf(k), 0),
        hottestKey: mine[0] ?? null,
        hottestCount: mine[0] === undefined ? 0 : 10 - keys.indexOf(mine[0]),
      });
      expect(got.cells[0]![j]).toEqual({ count: 0, hottestKey: null, hottestCount: 0 });
      expect(got.cells[2]![j]).toEqual({ count: 0, hottestKey: null, hottestCount: 0 });
    }
  });

  it('trail: drops what AE writes for "not set" (shard -1, no value, no trace)', () => {
    const base = {
      ets: '1700000000123',
      eid: 'em:1',
      ns: 'n',
      k: 'k',
      p: 'idempotency',
      d: 'applied',
      rid: 'r',
      c: 1,
    };
    const got = trailResult([
      { ...base, tid: '', sid: '', v: 0, dur: 0, shard: -1, ep: 0, hv: 0, hd: 0 },
      { ...base, tid: 't', sid: 's', v: 2.5, dur: 3, shard: 2, ep: 7, hv: 1, hd: 1 },
    ]);
    const e = {
      id: 'em:1',
      ts: 1700000000123,
      ns: 'n',
      key: 'k',
      pattern: 'idempotency',
      decision: 'applied',
      count: 1,
    };
    expect(got).toEqual([
      { ...e, requestId: 'r' },
      { ...e, requestId: 'r', traceId: 't', spanId: 's', value: 2.5, durationMs: 3, shard: 2, epoch: 7 },
    ]);
  });

  it('refuses rows that are not what it asked for', () => {
    const plan = seriesSql(DS, { ns: 'n', key: 'k', windowSec: 60, stepSec: 60, now: NOW });
    expect(() => seriesResult(plan, [{ t: 'x', p: 'a', d: 'b', hv: 0, c: 1 }])).toThrow(AnalyticsEngineError);
    expect(() => trailResult([{ ts: 1, ns: 5 }])).toThrow(/column ns is not a string/);
  });
});

describe('AnalyticsEngineBackend over HTTP', () => {
  const TOKEN = 'cf-token-7c1e';
  type Seen = { url: string; init: RequestInit | undefined };
  const backendAnswering = (
    respond: () => Response | Promise<Response>,
    seen: Seen[] = [],
    endpoint?: string,
  ) =>
    new AnalyticsEngineBackend({
      accountId: 'acc123',
      apiToken: TOKEN,
      dataset: DS,
      endpoint,
      fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
        seen.push({ url: String(input), init });
        return respond();
      },
    });

  it('POSTs the SQL with FORMAT JSON as the bearer, to the account endpoint', async () => {
    const seen: Seen[] = [];
    const json = { meta: [], data: [{ k: "o'brien", c: '7' }], rows: 1 };
    const b = backendAnswering(() => Response.json(json), seen);
    const got = await b.hotKeys({ ns: 'n', windowSec: 60, limit: 5, now: NOW });
    expect(got).toEqual({ total: 7, exact: false, keys: [{ key: "o'brien", count: 7, error: 0 }] });
    expect(seen).toHaveLength(2);
    for (const s of seen) {
      expect(s.url).toBe('https://api.cloudflare.com/client/v4/accounts/acc123/analytics_engine/sql');
      expect(s.init?.method).toBe('POST');
      expect(new Headers(s.init?.headers).get('authorization')).toBe(`Bearer ${TOKEN}`);
      expect(String(s.init?.body)).toMatch(/^SELECT .* FORMAT JSON$/);
    }
    const other: Seen[] = [];
    await backendAnswering(() => Response.json({ data: [] }), other, 'http://127.0.0.1:9/sql').lookup('r');
    expect(other[0]?.url).toBe('http://127.0.0.1:9/sql');
  });

  it("throws the engine's status and message, never the token", async () => {
    const cfError = { success: false, errors: [{ code: 10000, message: 'Authentication error' }] };
    const e401 = await backendAnswering(() => Response.json(cfError, { status: 401 }))
      .lookup('r')
      .catch((e: unknown) => e);
    expect(e401).toBeInstanceOf(AnalyticsEngineError);
    expect(e401).toMatchObject({
      status: 401,
      code: 'engine_error',
      message: expect.stringMatching(/401.*Authentication error/),
    });

    const echo = await backendAnswering(() => new Response(`bad token ${TOKEN} in query`, { status: 422 }))
      .lookup('r')
      .catch((e: unknown) => e as Error);
    expect(echo).toMatchObject({ status: 422, message: expect.stringContaining('bad token [redacted]') });
    expect((echo as Error).message).not.toContain(TOKEN);

    const down = await backendAnswering(() => Promise.reject(new Error(`connect failed for ${TOKEN}`)))
      .lookup('r')
      .catch((e: unknown) => e as Error);
    expect(down).toMatchObject({ status: 502, code: 'unreachable' });
    expect((down as Error).message).not.toContain(TOKEN);

    for (const body of ['<html>oops</html>', '{"data":"rows"}', '{"meta":[]}']) {
      const bad = await backendAnswering(() => new Response(body))
        .lookup('r')
        .catch((e: unknown) => e);
      expect(bad).toMatchObject({ status: 502, code: 'bad_response' });
    }
  });
});

describe('aeBackendFromEnv', () => {
  it('is null until an account id and a token are both set', () => {
    expect(aeBackendFromEnv({})).toBeNull();
    expect(aeBackendFromEnv({ KEYWARDEN_AE_ACCOUNT_ID: 'a' })).toBeNull();
    expect(aeBackendFromEnv({ KEYWARDEN_AE_API_TOKEN: 't' })).toBeNull();
    expect(aeBackendFromEnv({ KEYWARDEN_AE_ACCOUNT_ID: ' ', KEYWARDEN_AE_API_TOKEN: 't' })).toBeNull();
  });

  it('reads the dataset, keywarden_events by default', () => {
    const env = { KEYWARDEN_AE_ACCOUNT_ID: 'a', KEYWARDEN_AE_API_TOKEN: 't' };
    expect(aeBackendFromEnv(env)?.dataset).toBe('keywarden_events');
    expect(aeBackendFromEnv({ ...env, KEYWARDEN_AE_DATASET: 'kw_prod' })?.dataset).toBe('kw_prod');
    expect(aeBackendFromEnv(env)?.name).toBe('analytics-engine');
  });
});
