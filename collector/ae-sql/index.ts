// The Analytics Engine SQL backend: long-range answers to the collector's questions (DESIGN §5).
export {
  AnalyticsEngineBackend,
  type AnalyticsEngineEnv,
  type AnalyticsEngineOptions,
  aeBackendFromEnv,
  DEFAULT_AE_DATASET,
} from './backend';
export {
  type HeatmapPlan,
  type HotKeysPlan,
  heatmapResult,
  heatmapSql,
  hotKeysResult,
  hotKeysSql,
  lookupSql,
  type Row,
  type SeriesPlan,
  seriesResult,
  seriesSql,
  totalsResult,
  totalsSql,
  trailResult,
} from './builder';
export { AnalyticsEngineError, isPlainText, QUERY_LIMITS, stringEquals, utf8Hex } from './sql';
