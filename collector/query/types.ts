// The questions the collector answers, independent of where the answer comes from: the local
// rollup store (collector shards, real time) or Analytics Engine's SQL API (long ranges).
// Every backend implements `QueryBackend`; a shared suite (backend.case.ts) holds them to the same
// expectations. Times are ms since epoch; windows and steps are whole seconds.
import type { Pattern } from '../contract';

export type Filter = { pattern?: Pattern; decision?: string };

/** `exact`: count from the rollups instead of the sketches (slower; backends that sample ignore it). */
export type HotKeysQuery = Filter & {
  ns: string;
  windowSec: number;
  limit: number;
  now: number;
  exact?: boolean;
};
export type HotKey = { key: string; count: number; error: number };
export type HotKeysResult = { total: number; exact: boolean; keys: HotKey[] };

export type SeriesQuery = { ns: string; key: string; windowSec: number; stepSec: number; now: number };
/** One bucket; `t` is the bucket's start, aligned to a multiple of the step. */
export type SeriesPoint = {
  t: number;
  count: number;
  /** count by `${pattern}.${decision}` */
  decisions: Record<string, number>;
  /** sum, min and max of `value` over the bucket's events that carry one */
  value: { sum: number; min: number; max: number; n: number } | null;
};
export type SeriesResult = { points: SeriesPoint[] };

export type HeatmapQuery = { ns: string; windowSec: number; stepSec: number; buckets: number; now: number };
/** `cells[i][j]`: time bucket i × key bucket j. Keys go to bucket fnv1a32(key) % buckets. */
export type HeatmapResult = {
  times: number[];
  cells: { count: number; hottestKey: string | null; hottestCount: number }[][];
};

export type TotalsQuery = { windowSec: number; now: number; ns?: string };
export type DecisionTotal = { ns: string; pattern: string; decision: string; count: number };

export type TrailEvent = {
  id: string;
  ts: number;
  ns: string;
  key: string;
  pattern: string;
  decision: string;
  count: number;
  value?: number;
  durationMs?: number;
  requestId: string;
  traceId?: string;
  spanId?: string;
  shard?: number;
  epoch?: number;
};

export interface QueryBackend {
  readonly name: string;
  hotKeys(q: HotKeysQuery): Promise<HotKeysResult>;
  series(q: SeriesQuery): Promise<SeriesResult>;
  heatmap(q: HeatmapQuery): Promise<HeatmapResult>;
  totals(q: TotalsQuery): Promise<DecisionTotal[]>;
  lookup(requestId: string): Promise<TrailEvent[]>;
}
