// The collector's face: what other parts may import (DESIGN §1).
export { AnalyticsEngineBackend, AnalyticsEngineError, aeBackendFromEnv } from './ae-sql';
export { AE_COLUMNS, aeIndex, toDataPoint, toDataPoints } from './analytics';
export { Collector, shardCount, windowStart } from './client';
export * from './contract';
export { fnv1a32, shardOf } from './hash';
export {
  ApiError,
  apiError,
  errorBody,
  intParam,
  readBoundedText,
  requireToken,
  sameSecret,
  textParam,
} from './http';
export type * from './query/types';
export { type CollectorRouteOptions, createCollectorRoutes } from './routes';
export { CollectorShard, type ShardStats } from './shard';
