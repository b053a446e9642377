// Analytics Engine mapping (DESIGN §3): one data point per event, or per group of identical
// decisions without a requestId (their `count` adds up, so `sum(double1 * _sample_interval)` holds).
import type { DecisionEvent } from './contract';
import { fnv1a64Hex } from './hash';

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
  ts: 'double10', // the decision's own time, ms (AE's timestamp is when the point was written)
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
 * Groups events into data points: an event with a requestId keeps its own point (so AE can show
 * its trail); identical decisions without one are coalesced, which keeps a shard within AE's
 * 250 writes per invocation under load without changing any weighted sum.
 */
export function toDataPoints(events: readonly DecisionEvent[]): AnalyticsEngineDataPoint[] {
  const points: AnalyticsEngineDataPoint[] = [];
  const groups = new Map<string, DecisionEvent>();
  for (const e of events) {
    if (e.requestId !== undefined || e.traceId !== undefined) {
      points.push(toDataPoint(e));
      continue;
    }
    // Events with and without a value (or a duration) never share a point: hasValue must stay true.
    const g = `${e.ns}\u0000${e.key}\u0000${e.pattern}\u0000${e.decision}\u0000${e.shard ?? -1}\u0000${e.epoch ?? 0}\u0000${e.value === undefined}\u0000${e.durationMs === undefined}`;
    const prev = groups.get(g);
    if (!prev) {
      groups.set(g, { ...e, id: '', min: e.min ?? e.value, max: e.max ?? e.value });
      continue;
    }
    prev.count += e.count;
    if (e.durationMs !== undefined) prev.durationMs = (prev.durationMs ?? 0) + e.durationMs;
    if (e.value !== undefined) {
      prev.value = (prev.value ?? 0) + e.value;
      const lo = e.min ?? e.value;
      const hi = e.max ?? e.value;
      prev.min = prev.min === undefined ? lo : Math.min(prev.min, lo);
      prev.max = prev.max === undefined ? hi : Math.max(prev.max, hi);
    }
  }
  for (const e of groups.values()) points.push(toDataPoint(e));
  return points;
}
