// Test harness for the AE SQL backend, free of node APIs: the rows AE would hold for a decision
// stream, an AE-shaped ClickHouse table, and a fetch that answers AE SQL API calls from ClickHouse.
import { toDataPoints } from '../analytics';
import { type DecisionEvent, parseEventId } from '../contract';

export type AeRow = Record<string, string | number>;

const BLOBS = 20;
const DOUBLES = 20;

/** AE's table, as its SQL API documents it: `_sample_interval` is an integer, blobs and doubles 1…20. */
export function aeTableDdl(dataset: string): string {
  const blobs = Array.from({ length: BLOBS }, (_, i) => `blob${i + 1} String`);
  const doubles = Array.from({ length: DOUBLES }, (_, i) => `double${i + 1} Float64`);
  return (
    `CREATE TABLE ${dataset} (dataset String, timestamp DateTime, _sample_interval UInt32, index1 String, ` +
    `${[...blobs, ...doubles].join(', ')}) ENGINE = MergeTree() ORDER BY (index1, timestamp)`
  );
}

/**
 * What AE holds after the collector wrote `events`: each emitter's events of one second form one
 * write batch (`toDataPoints`, stamped with that second, as AE stamps write time). Then AE's sampling
 * is played exactly: k identical rows become one row with `_sample_interval = k`, so every weighted
 * sum is unchanged and answers stay exact.
 */
export function aeRowsFromStream(events: readonly DecisionEvent[], dataset: string): AeRow[] {
  const batches = new Map<string, { second: number; events: DecisionEvent[] }>();
  for (const e of events) {
    const emitter = parseEventId(e.id)?.emitter ?? e.id;
    const second = Math.floor(e.ts / 1000);
    const id = `${emitter}\u0000${second}`;
    const batch = batches.get(id) ?? { second, events: [] };
    batch.events.push(e);
    batches.set(id, batch);
  }
  const sampled = new Map<string, AeRow>();
  for (const { second, events: batch } of batches.values()) {
    for (const p of toDataPoints(batch)) {
      const row: AeRow = { dataset, timestamp: second, index1: text(p.indexes?.[0]) };
      for (let i = 0; i < BLOBS; i++) row[`blob${i + 1}`] = text(p.blobs?.[i]);
      for (let i = 0; i < DOUBLES; i++) row[`double${i + 1}`] = p.doubles?.[i] ?? 0;
      const id = JSON.stringify(row);
      const seen = sampled.get(id);
      if (seen) seen._sample_interval = Number(seen._sample_interval) + 1;
      else sampled.set(id, { ...row, _sample_interval: 1 });
    }
  }
  return [...sampled.values()];
}

function text(v: string | ArrayBuffer | null | undefined): string {
  if (v === null || v === undefined) return '';
  return typeof v === 'string' ? v : new TextDecoder().decode(v);
}

/** Runs one statement over ClickHouse's HTTP interface; `data` is the body of an INSERT. */
export async function clickhouseQuery(url: string, sql: string, data?: string): Promise<string> {
  const res =
    data === undefined
      ? await fetch(url, { method: 'POST', body: sql })
      : await fetch(`${url}?query=${encodeURIComponent(sql)}`, { method: 'POST', body: data });
  const body = await res.text();
  if (!res.ok) throw new Error(`ClickHouse answered ${res.status} to ${sql.slice(0, 80)}: ${body}`);
  return body;
}

export type SeenRequest = { url: string; method: string; authorization: string | null; sql: string };

/**
 * A fetch for AnalyticsEngineBackend that answers from ClickHouse: AE's SQL API takes the SQL as the
 * POST body and answers ClickHouse's `FORMAT JSON` (`{ meta, data, rows }`), as ClickHouse does.
 */
export function clickhouseFetch(url: string, seen: SeenRequest[] = []): typeof fetch {
  return async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    const sql = await req.text();
    seen.push({ url: req.url, method: req.method, authorization: req.headers.get('authorization'), sql });
    const res = await fetch(url, { method: 'POST', body: sql });
    const type = res.headers.get('content-type') ?? 'text/plain';
    return new Response(await res.text(), { status: res.status, headers: { 'content-type': type } });
  };
}
