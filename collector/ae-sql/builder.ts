// The QueryBackend questions as Analytics Engine SQL, and their answers assembled from the rows.
// Every count is `sum(double1 * _sample_interval)`: double1 is the event's count, and a row AE kept
// for k sampled-away rows stands for k of them. One table per query, no subqueries; time buckets are
// `intDiv(toUnixTimestamp(timestamp), step) * step` (AE's toStartOfInterval is not in ClickHouse
// 18.16, which the tests run on), time bounds are `toDateTime(<unix seconds>)`.
import { aeIndex, AE_COLUMNS as C } from '../analytics';
import { fnv1a32 } from '../hash';
import type {
  DecisionTotal,
  HeatmapQuery,
  HeatmapResult,
  HotKeysQuery,
  HotKeysResult,
  SeriesPoint,
  SeriesQuery,
  SeriesResult,
  TotalsQuery,
  TrailEvent,
} from '../query/types';
import {
  AnalyticsEngineError,
  checkDataset,
  checkDecision,
  checkInt,
  checkKey,
  checkNs,
  checkPattern,
  checkRequestId,
  checkStep,
  checkWindow,
  QUERY_LIMITS,
  sqlInt,
  stringEquals,
} from './sql';

export type Row = Record<string, unknown>;

const WEIGHTED_COUNT = `sum(${C.count} * _sample_interval)`;

function timeFilter(from: number, to: number): string {
  return `timestamp > toDateTime(${sqlInt(from)}) AND timestamp <= toDateTime(${sqlInt(to)})`;
}

function bucketOf(step: number): string {
  return `intDiv(toUnixTimestamp(timestamp), ${sqlInt(step)}) * ${sqlInt(step)}`;
}

/** Bucket starts (seconds) covering (from, to], aligned to multiples of the step. */
function bucketStarts(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let t = Math.floor((from + 1) / step) * step; t <= to; t += step) out.push(t);
  return out;
}

// ---- reading rows: AE (and ClickHouse) print 64-bit integers as strings in JSON ----

function num(row: Row, col: string): number {
  const v = row[col];
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  if (!Number.isFinite(n)) {
    throw new AnalyticsEngineError(
      502,
      'bad_response',
      `column ${col} is not a number: ${JSON.stringify(v)}`,
    );
  }
  return n;
}

function str(row: Row, col: string): string {
  const v = row[col];
  if (typeof v !== 'string') {
    throw new AnalyticsEngineError(
      502,
      'bad_response',
      `column ${col} is not a string: ${JSON.stringify(v)}`,
    );
  }
  return v;
}

// ---- hotKeys ----

export type HotKeysPlan = { keys: string; total: string; limit: number };

export function hotKeysSql(dataset: string, q: HotKeysQuery): HotKeysPlan {
  const ns = checkNs(q.ns);
  const { from, to } = checkWindow(q.now, q.windowSec);
  const limit = checkInt('limit', q.limit, 1, QUERY_LIMITS.hotKeys);
  const pattern = checkPattern(q.pattern);
  const decision = checkDecision(q.decision, pattern);
  const where = [stringEquals(C.ns, ns), timeFilter(from, to)];
  if (pattern) where.push(stringEquals(C.pattern, pattern));
  if (decision) where.push(stringEquals(C.decision, decision));
  const w = where.join(' AND ');
  return {
    keys:
      `SELECT ${C.key} AS k, ${WEIGHTED_COUNT} AS c FROM ${checkDataset(dataset)} WHERE ${w} ` +
      `GROUP BY k ORDER BY c DESC, k ASC LIMIT ${sqlInt(limit)}`,
    total: `SELECT ${WEIGHTED_COUNT} AS c FROM ${checkDataset(dataset)} WHERE ${w}`,
    limit,
  };
}

export function hotKeysResult(keyRows: Row[], totalRows: Row[]): HotKeysResult {
  const total = totalRows[0] ? num(totalRows[0], 'c') : 0;
  const keys = keyRows.map((r) => ({ key: str(r, 'k'), count: num(r, 'c'), error: 0 }));
  // AE samples, so no answer from it is exact; the sampling error has no bound we could report.
  return { total, exact: false, keys: keys.filter((k) => k.count > 0) };
}

// ---- series ----

export type SeriesPlan = { sql: string; from: number; to: number; step: number };

export function seriesSql(dataset: string, q: SeriesQuery): SeriesPlan {
  const ns = checkNs(q.ns);
  const key = checkKey(q.key);
  const { from, to } = checkWindow(q.now, q.windowSec);
  const step = checkStep(q.stepSec, q.windowSec);
  // index1 narrows the scan to the key (AE's sampling and ordering key); blob1/blob2 tell apart the
  // keys that share a hashed index.
  const where = [
    stringEquals(C.index, aeIndex(ns, key)),
    stringEquals(C.ns, ns),
    stringEquals(C.key, key),
    timeFilter(from, to),
  ].join(' AND ');
  // Grouped by hasValue so min/max only see rows whose value is meaningful (no sentinel needed).
  const sql =
    `SELECT ${bucketOf(step)} AS t, ${C.pattern} AS p, ${C.decision} AS d, ${C.hasValue} AS hv, ` +
    `${WEIGHTED_COUNT} AS c, sum(${C.value} * _sample_interval) AS vs, min(${C.min}) AS vmin, max(${C.max}) AS vmax ` +
    `FROM ${checkDataset(dataset)} WHERE ${where} GROUP BY t, p, d, hv ORDER BY t ASC LIMIT ${QUERY_LIMITS.seriesRows}`;
  return { sql, from, to, step };
}

export function seriesResult(plan: SeriesPlan, rows: Row[]): SeriesResult {
  const points = new Map<number, SeriesPoint>();
  for (const t of bucketStarts(plan.from, plan.to, plan.step)) {
    points.set(t, { t: t * 1000, count: 0, decisions: {}, value: null });
  }
  for (const r of rows) {
    const t = num(r, 't');
    const point = points.get(t);
    if (!point) continue;
    const c = num(r, 'c');
    const name = `${str(r, 'p')}.${str(r, 'd')}`;
    point.count += c;
    point.decisions[name] = (point.decisions[name] ?? 0) + c;
    if (num(r, 'hv') > 0) {
      const v = point.value ?? { sum: 0, min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY, n: 0 };
      v.sum += num(r, 'vs');
      v.min = Math.min(v.min, num(r, 'vmin'));
      v.max = Math.max(v.max, num(r, 'vmax'));
      v.n += c;
      point.value = v;
    }
  }
  return { points: [...points.values()] };
}

// ---- heatmap ----

export type HeatmapPlan = { sql: string; from: number; to: number; step: number; buckets: number };

export function heatmapSql(dataset: string, q: HeatmapQuery): HeatmapPlan {
  const ns = checkNs(q.ns);
  const { from, to } = checkWindow(q.now, q.windowSec);
  const step = checkStep(q.stepSec, q.windowSec);
  const buckets = checkInt('buckets', q.buckets, 1, QUERY_LIMITS.heatmapKeyBuckets);
  // AE has no fnv1a32, so keys go to their buckets here; the heaviest (time, key) pairs come first
  // so the row cap drops only the long tail.
  const sql =
    `SELECT ${bucketOf(step)} AS t, ${C.key} AS k, ${WEIGHTED_COUNT} AS c FROM ${checkDataset(dataset)} ` +
    `WHERE ${stringEquals(C.ns, ns)} AND ${timeFilter(from, to)} ` +
    `GROUP BY t, k ORDER BY c DESC, t ASC, k ASC LIMIT ${QUERY_LIMITS.heatmapRows}`;
  return { sql, from, to, step, buckets };
}

export function heatmapResult(plan: HeatmapPlan, rows: Row[]): HeatmapResult {
  const starts = bucketStarts(plan.from, plan.to, plan.step);
  const row = new Map(starts.map((t, i) => [t, i]));
  const cells = starts.map(() =>
    Array.from({ length: plan.buckets }, () => ({
      count: 0,
      hottestKey: null as string | null,
      hottestCount: 0,
    })),
  );
  for (const r of rows) {
    const i = row.get(num(r, 't'));
    if (i === undefined) continue;
    const key = str(r, 'k');
    const c = num(r, 'c');
    const cell = cells[i]![fnv1a32(key) % plan.buckets]!;
    cell.count += c;
    if (c > cell.hottestCount) {
      cell.hottestCount = c;
      cell.hottestKey = key;
    }
  }
  return { times: starts.map((t) => t * 1000), cells };
}

// ---- totals ----

export function totalsSql(dataset: string, q: TotalsQuery): string {
  const { from, to } = checkWindow(q.now, q.windowSec);
  const where = [timeFilter(from, to)];
  if (q.ns !== undefined) where.push(stringEquals(C.ns, checkNs(q.ns)));
  return (
    `SELECT ${C.ns} AS ns, ${C.pattern} AS p, ${C.decision} AS d, ${WEIGHTED_COUNT} AS c FROM ${checkDataset(dataset)} ` +
    `WHERE ${where.join(' AND ')} GROUP BY ns, p, d ORDER BY c DESC, ns ASC, p ASC, d ASC ` +
    `LIMIT ${QUERY_LIMITS.totalsRows}`
  );
}

export function totalsResult(rows: Row[]): DecisionTotal[] {
  return rows
    .map((r) => ({ ns: str(r, 'ns'), pattern: str(r, 'p'), decision: str(r, 'd'), count: num(r, 'c') }))
    .filter((t) => t.count > 0);
}

// ---- lookup ----

export function lookupSql(dataset: string, requestId: string): string {
  const id = checkRequestId(requestId);
  return (
    `SELECT ${C.ns} AS ns, ${C.key} AS k, ${C.pattern} AS p, ` +
    `${C.decision} AS d, ${C.requestId} AS rid, ${C.traceId} AS tid, ${C.count} AS c, ${C.value} AS v, ` +
    `${C.durationMs} AS dur, ${C.shard} AS shard, ${C.epoch} AS ep, ${C.hasValue} AS hv, ` +
    `${C.hasDuration} AS hd, ${C.eventId} AS eid, ${C.spanId} AS sid, ${C.ts} AS ets ` +
    `FROM ${checkDataset(dataset)} WHERE ${stringEquals(C.requestId, id)} ` +
    `ORDER BY ets ASC, eid ASC LIMIT ${QUERY_LIMITS.trailEvents}`
  );
}

/**
 * An event with a requestId always has its own data point, carrying its id, span id and own time.
 * An unsplit key writes shard -1, so shard and epoch are only reported for split keys.
 */
export function trailResult(rows: Row[]): TrailEvent[] {
  return rows.map((r) => {
    const ns = str(r, 'ns');
    const e: TrailEvent = {
      id: str(r, 'eid'),
      ts: num(r, 'ets'),
      ns,
      key: str(r, 'k'),
      pattern: str(r, 'p'),
      decision: str(r, 'd'),
      count: num(r, 'c'),
      requestId: str(r, 'rid'),
    };
    if (num(r, 'hv') > 0) e.value = num(r, 'v');
    if (num(r, 'hd') > 0) e.durationMs = num(r, 'dur');
    const traceId = str(r, 'tid');
    if (traceId !== '') e.traceId = traceId;
    const spanId = str(r, 'sid');
    if (spanId !== '') e.spanId = spanId;
    const shard = num(r, 'shard');
    if (shard >= 0) {
      e.shard = shard;
      e.epoch = num(r, 'ep');
    }
    return e;
  });
}
