// Analytics Engine mapping (DESIGN §3): one data point per event with a requestId or traceId, and
// one per flushed rollup row for the rest (their `count` adds up, so `sum(double1 * _sample_interval)`
// holds).
import { type DecisionEvent, hasOwnPoint } from './contract';
import { fnv1a64Hex } from './hash';
import { RollupBuffer, type RollupRow } from './rollups';

/** Column layout shared by the writer and the AE SQL query builder. */
export const AE_COLUMNS = {
  index: 'index1', // ns:key, hashed past 96 bytes
  ns: 'blob1',
  key: 'blob2',
  pattern: 'blob3',
  decision: 'blob4',
  requestId: 'blob5',
  traceId: 'blob6',
  eventId: 'blob7', // empty on a coalesced point: it stands for many events
  spanId: 'blob8',
  count: 'double1',
  value: 'double2', // sum when coalesced
  durationMs: 'double3',
  shard: 'double4', // -1 when the key is not split
  epoch: 'double5',
  min: 'double6',
  max: 'double7',
  hasValue: 'double8', // 1 when value/min/max are meaningful
  hasDuration: 'double9', // 1 when durationMs is meaningful
  ts: 'double10', // the decision's own time, ms; a row's point: its second (AE's timestamp: when written)
} as const;

/** AE allows one index of at most 96 bytes, and 250 data points per invocation. */
export const AE_INDEX_BYTES = 96;
export const AE_WRITES_PER_INVOCATION = 250;

const encoder = new TextEncoder();

/** AE samples per index, so the index is the key itself: per-key counts stay unbiased. */
export function aeIndex(ns: string, key: string): string {
  const full = `${ns}:${key}`;
  if (full.length * 3 <= AE_INDEX_BYTES || encoder.encode(full).length <= AE_INDEX_BYTES) return full;
  return `h:${fnv1a64Hex(full)}`;
}

export function toDataPoint(e: DecisionEvent): AnalyticsEngineDataPoint {
  const hasValue = e.value !== undefined;
  return {
    indexes: [aeIndex(e.ns, e.key)],
    blobs: [e.ns, e.key, e.pattern, e.decision, e.requestId ?? '', e.traceId ?? '', e.id, e.spanId ?? ''],
    doubles: [
      e.count,
      e.value ?? 0,
      e.durationMs ?? 0,
      e.shard ?? -1,
      e.epoch ?? 0,
      e.min ?? e.value ?? 0,
      e.max ?? e.value ?? 0,
      hasValue ? 1 : 0,
      e.durationMs !== undefined ? 1 : 0,
      e.ts,
    ],
  };
}

/**
 * The data point of a rollup row: the events of one (ns, key, pattern, decision, second) flushed
 * together, as one weighted point (its `count` adds up, so `sum(double1 * _sample_interval)` holds).
 * No event id: it stands for many. This keeps a shard within AE's 250 writes per invocation.
 */
export function rowPoint(r: RollupRow): AnalyticsEngineDataPoint {
  return {
    indexes: [aeIndex(r.ns, r.key)],
    blobs: [r.ns, r.key, r.pattern, r.decision, '', '', '', ''],
    doubles: [
      r.count,
      r.vsum,
      r.dsum,
      r.shard,
      r.epoch,
      r.vmin ?? 0,
      r.vmax ?? 0,
      r.vn > 0 ? 1 : 0,
      r.dn > 0 ? 1 : 0,
      r.t,
    ],
  };
}

/** What a shard writes for events flushed together: their own points, then one per rollup row. */
export function toDataPoints(events: readonly DecisionEvent[]): AnalyticsEngineDataPoint[] {
  const points: AnalyticsEngineDataPoint[] = [];
  const rows = new RollupBuffer();
  for (const e of events) {
    if (hasOwnPoint(e)) points.push(toDataPoint(e));
    rows.add(e);
  }
  for (const r of rows.drain()) if (!r.own) points.push(rowPoint(r));
  return points;
}
