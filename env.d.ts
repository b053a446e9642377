// The Worker's bindings, shared by every part (wrangler.toml and .dev.vars.example are the source).
interface Env {
  ASSETS: Fetcher;
  COLLECTOR_SHARD: DurableObjectNamespace<import('./collector/shard').CollectorShard>;
  KEYWARDEN_EVENTS: AnalyticsEngineDataset;
  IDEMPOTENCY: DurableObjectNamespace<import('./instrumented-objects/patterns').IdempotencyObject>;
  ORDERING: DurableObjectNamespace<import('./instrumented-objects/patterns').OrderingObject>;
  RATE_LIMIT: DurableObjectNamespace<import('./instrumented-objects/patterns').RateLimitObject>;
  QUEUE: DurableObjectNamespace<import('./instrumented-objects/patterns').QueueObject>;
  LOCK: DurableObjectNamespace<import('./instrumented-objects/patterns').LockObject>;
  SINGLE_FLIGHT: DurableObjectNamespace<import('./instrumented-objects/patterns').SingleFlightObject>;
  COUNTER: DurableObjectNamespace<import('./instrumented-objects/patterns').CounterObject>;
  KEYWARDEN_COLLECTOR_SHARDS?: string;
  KEYWARDEN_OBJECT_CAPACITY?: string;
  KEYWARDEN_NS_CAPACITY?: string;
  KEYWARDEN_DEMO?: string;
  KEYWARDEN_INGEST_TOKEN?: string;
  KEYWARDEN_OPERATOR_TOKEN?: string;
  KEYWARDEN_API_TOKEN?: string;
  KEYWARDEN_READ_TOKEN?: string;
  KEYWARDEN_AE_ACCOUNT_ID?: string;
  KEYWARDEN_AE_API_TOKEN?: string;
  KEYWARDEN_AE_DATASET?: string;
}

declare namespace Cloudflare {
  interface Env extends globalThis.Env {}
}
