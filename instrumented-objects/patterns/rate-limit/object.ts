// The rate-limit object (DESIGN §4): one key's (one tenant's) budget, as a token bucket or a sliding
// window, whichever its namespace chose. Limits come in three layers: built-in defaults, the
// namespace's config (held by one config object per namespace, `namespaceConfigObject`), and a
// per-key override held by the key's own object.
//
// A `check` with a requestId that was already allowed is answered from the ledger (`replayed`,
// event `duplicate`), without spending again, so a retried request is not charged twice; a limited
// one is re-evaluated.
//
// The only await in `check` is fetching the namespace config (when the cached copy is older than
// NAMESPACE_CONFIG_TTL_MS); everything after it — read the budget, decide, spend — is synchronous
// SQL, so no other call can spend the same token in between (the input gate).
import type { Decision } from '../../../collector';
import { InstrumentedObject } from '../../kit';

export type TraceContext = { traceId?: string; spanId?: string };

export const ALGORITHMS = ['token_bucket', 'sliding_window'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/**
 * token_bucket: `limit` tokens refill evenly over `windowMs`, the bucket holds `burst` (default
 * `limit`); in any interval of length T at most burst + limit·T/windowMs requests pass.
 * sliding_window: at most `limit` requests pass in any interval of length `windowMs`, exactly.
 */
export type LimitConfig = { algorithm: Algorithm; limit: number; windowMs: number; burst: number | null };
/** What one key may override; the algorithm is the namespace's choice. */
export type LimitOverride = { limit?: number; windowMs?: number; burst?: number | null };

export const DEFAULT_LIMIT: LimitConfig = {
  algorithm: 'token_bucket',
  limit: 60,
  windowMs: 60_000,
  burst: null,
};
export const LIMIT_BOUNDS = { limit: 1_000_000_000, windowMs: 7 * 24 * 3600_000 } as const;
/** A key object re-reads its namespace's config at most this often: namespace changes apply within it. */
export const NAMESPACE_CONFIG_TTL_MS = 5_000;
/** Ledger entries (allowed and limited requestIds) kept at most this many … */
export const LEDGER_MAX_ENTRIES = 10_000;
/** … and at least this long, or a window if that is longer: an allowed retry inside it is not charged again. */
export const LEDGER_MIN_RETENTION_MS = 15 * 60_000;

/** The object that holds a namespace's limit config: named apart from every key object. */
export function namespaceConfigObject(namespace: DurableObjectNamespace<RateLimitObject>, ns: string) {
  return namespace.get(namespace.idFromName(`rate_limit.config/${ns}`));
}

export type CheckInput = {
  ns: string;
  key: string;
  /** the request's id: an allowed request retried with the same id is not charged again */
  requestId?: string;
  /** tokens this request takes; default 1 */
  cost?: number;
  trace?: TraceContext;
};

export type CheckResult = {
  decision: 'allowed' | 'limited';
  allowed: boolean;
  /** tokens left after this decision (bucket: rounded down; window: limit − used) */
  remaining: number;
  /** for `limited`: when the same request would pass, if nothing else spends first; null if it never can */
  retryAfterMs: number | null;
  /** an allowed request answered again from the ledger: nothing was spent */
  replayed: boolean;
  cost: number;
  config: LimitConfig;
};

export type NamespaceLimit = {
  ns: string;
  config: LimitConfig;
  source: 'namespace' | 'default';
  version: number;
};

export type LimitLayers = {
  effective: LimitConfig;
  namespace: NamespaceLimit & { fetchedAt: number | null };
  override: LimitOverride | null;
};

export type RateLimitInspect =
  | {
      found: true;
      requestId: string;
      decision: 'allowed' | 'limited';
      at: number;
      remaining: number;
      cost: number;
    }
  | { found: false; requestId: string }
  | {
      found: true;
      ns: string | null;
      key: string | null;
      limits: LimitLayers | null;
      /** bucket: tokens now (fractional); window: requests counted in the window now */
      tokens: number | null;
      windowUsed: number | null;
      allowedTotal: number;
      limitedTotal: number;
      ledgerEntries: number;
    };

type StateRow = {
  ns: string | null;
  key: string | null;
  algorithm: Algorithm | null;
  tokens: number;
  updated_at: number;
  window_used: number;
  override: string | null;
  ns_config: string | null;
  ns_fetched_at: number | null;
  allowed_total: number;
  limited_total: number;
};

const EPSILON = 1e-9;

export class RateLimitObject extends InstrumentedObject {
  /** The request time. Tests replace it (through runInDurableObject) to step time; nothing else does. */
  protected clock: () => number = () => Date.now();
  #refreshing: Promise<NamespaceLimit> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    // A key object: its budget (bucket tokens or the window's hits), its override, its ledger.
    sql.exec(`CREATE TABLE IF NOT EXISTS rl_state (id INTEGER PRIMARY KEY CHECK (id = 0), ns TEXT, key TEXT,
      algorithm TEXT, tokens REAL NOT NULL, updated_at INTEGER NOT NULL, window_used INTEGER NOT NULL,
      override TEXT, ns_config TEXT, ns_fetched_at INTEGER, allowed_total INTEGER NOT NULL,
      limited_total INTEGER NOT NULL)`);
    sql.exec('INSERT OR IGNORE INTO rl_state VALUES (0, NULL, NULL, NULL, 0, 0, 0, NULL, NULL, NULL, 0, 0)');
    sql.exec('CREATE TABLE IF NOT EXISTS rl_hits (at INTEGER PRIMARY KEY, cost INTEGER NOT NULL)');
    sql.exec(`CREATE TABLE IF NOT EXISTS rl_ledger (request_id TEXT PRIMARY KEY, decision TEXT NOT NULL,
      at INTEGER NOT NULL, remaining REAL NOT NULL, cost INTEGER NOT NULL)`);
    sql.exec('CREATE INDEX IF NOT EXISTS rl_ledger_by_at ON rl_ledger (at)');
    // A namespace config object (`namespaceConfigObject`): the namespace's limit.
    sql.exec(`CREATE TABLE IF NOT EXISTS rl_namespace (ns TEXT PRIMARY KEY, config TEXT NOT NULL,
      version INTEGER NOT NULL, updated_at INTEGER NOT NULL)`);
  }

  async check(input: CheckInput): Promise<CheckResult> {
    const cost = input.cost ?? 1;
    if (!Number.isSafeInteger(cost) || cost < 1) throw new RangeError('cost must be a positive integer');
    const startedAt = this.clock();
    this.#state(input.ns, input.key);
    const nsLimit = this.#cachedNamespace(startedAt) ?? (await this.#refreshNamespace(input.ns));
    // From here on, no await: the budget read below is the one we spend from.
    const now = this.clock();
    const state = this.#state(input.ns, input.key);
    const config = effective(nsLimit.config, parseOverride(state.override));
    const sql = this.ctx.storage.sql;
    this.#forget(now, config);

    if (input.requestId !== undefined) {
      const seen = sql
        .exec<{ remaining: number }>(
          "SELECT remaining FROM rl_ledger WHERE request_id = ? AND decision = 'allowed'",
          input.requestId,
        )
        .toArray()[0];
      if (seen) {
        // Answered from the ledger, nothing spent: still a decision (a retry that was not charged),
        // so it is one `duplicate` event, which is what dedupe-hit ratios count.
        const remaining = this.#remaining(now, config);
        this.#emit('duplicate', input, remaining, startedAt);
        return {
          decision: 'allowed',
          allowed: true,
          remaining,
          retryAfterMs: null,
          replayed: true,
          cost,
          config,
        };
      }
    }

    const verdict =
      config.algorithm === 'token_bucket'
        ? this.#bucket(state, config, cost, now)
        : this.#window(state, config, cost, now);
    const decision = verdict.allowed ? 'allowed' : 'limited';
    sql.exec(
      `UPDATE rl_state SET ${verdict.allowed ? 'allowed_total = allowed_total + 1' : 'limited_total = limited_total + 1'}`,
    );
    if (input.requestId !== undefined) {
      sql.exec(
        'INSERT OR REPLACE INTO rl_ledger VALUES (?, ?, ?, ?, ?)',
        input.requestId,
        decision,
        now,
        verdict.remaining,
        cost,
      );
    }
    this.#emit(decision, input, verdict.remaining, startedAt);
    return {
      decision,
      allowed: verdict.allowed,
      remaining: verdict.remaining,
      retryAfterMs: verdict.retryAfterMs,
      replayed: false,
      cost,
      config,
    };
  }

  /** Sets (or with null, clears) this key's override. Operator-facing. */
  async configure(input: { ns: string; key: string; override: LimitOverride | null }): Promise<LimitLayers> {
    const override = input.override === null ? null : validOverride(input.override);
    this.#state(input.ns, input.key);
    this.ctx.storage.sql.exec(
      'UPDATE rl_state SET override = ?',
      override === null ? null : JSON.stringify(override),
    );
    return this.limits(input);
  }

  /** The limit that applies to this key now, and where each part of it comes from. */
  async limits(input: { ns: string; key: string }): Promise<LimitLayers> {
    this.#state(input.ns, input.key);
    const now = this.clock();
    const nsLimit = this.#cachedNamespace(now) ?? (await this.#refreshNamespace(input.ns));
    const state = this.#state(input.ns, input.key);
    const override = parseOverride(state.override);
    return {
      effective: effective(nsLimit.config, override),
      namespace: { ...nsLimit, fetchedAt: state.ns_fetched_at },
      override,
    };
  }

  // The namespace config object's side: only `namespaceConfigObject(ns)` is called with these.

  setNamespaceLimit(input: { ns: string; config: LimitConfig | null }): NamespaceLimit {
    const sql = this.ctx.storage.sql;
    const version =
      (sql.exec<{ v: number | null }>('SELECT max(version) AS v FROM rl_namespace').one().v ?? 0) + 1;
    if (input.config === null) {
      // Back to the defaults; the version row stays so versions keep increasing.
      sql.exec(
        `INSERT INTO rl_namespace VALUES (?, 'null', ?, ?) ON CONFLICT DO UPDATE SET config = 'null',
         version = excluded.version, updated_at = excluded.updated_at`,
        input.ns,
        version,
        Date.now(),
      );
    } else {
      const config = validConfig(input.config);
      sql.exec(
        `INSERT INTO rl_namespace VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET config = excluded.config,
         version = excluded.version, updated_at = excluded.updated_at`,
        input.ns,
        JSON.stringify(config),
        version,
        Date.now(),
      );
    }
    return this.namespaceLimit(input);
  }

  namespaceLimit(input: { ns: string }): NamespaceLimit {
    const row = this.ctx.storage.sql
      .exec<{ config: string; version: number }>(
        'SELECT config, version FROM rl_namespace WHERE ns = ?',
        input.ns,
      )
      .toArray()[0];
    const config = row ? (JSON.parse(row.config) as LimitConfig | null) : null;
    return config === null
      ? { ns: input.ns, config: DEFAULT_LIMIT, source: 'default', version: row?.version ?? 0 }
      : { ns: input.ns, config, source: 'namespace', version: row!.version };
  }

  async inspect(requestId?: string): Promise<RateLimitInspect> {
    const sql = this.ctx.storage.sql;
    if (requestId !== undefined) {
      const row = sql
        .exec<{ decision: 'allowed' | 'limited'; at: number; remaining: number; cost: number }>(
          'SELECT decision, at, remaining, cost FROM rl_ledger WHERE request_id = ?',
          requestId,
        )
        .toArray()[0];
      return row ? { found: true, requestId, ...row } : { found: false, requestId };
    }
    const state = sql.exec<StateRow>('SELECT * FROM rl_state').one();
    const now = this.clock();
    const limits =
      state.ns === null || state.key === null ? null : await this.limits({ ns: state.ns, key: state.key });
    let tokens: number | null = null;
    let windowUsed: number | null = null;
    if (limits && state.algorithm === 'token_bucket') {
      tokens = refilled(state, limits.effective, now);
    } else if (limits && state.algorithm === 'sliding_window') {
      windowUsed = this.#windowUsed(now, limits.effective.windowMs);
    }
    return {
      found: true,
      ns: state.ns,
      key: state.key,
      limits,
      tokens,
      windowUsed,
      allowedTotal: state.allowed_total,
      limitedTotal: state.limited_total,
      ledgerEntries: sql.exec<{ n: number }>('SELECT count(*) AS n FROM rl_ledger').one().n,
    };
  }

  #state(ns: string, key: string): StateRow {
    return this.claimKey(
      'rl_state',
      this.ctx.storage.sql.exec<StateRow>('SELECT * FROM rl_state').one(),
      ns,
      key,
      'rate-limit',
    );
  }

  #cachedNamespace(now: number): NamespaceLimit | null {
    const row = this.ctx.storage.sql
      .exec<{ ns_config: string | null; ns_fetched_at: number | null }>(
        'SELECT ns_config, ns_fetched_at FROM rl_state',
      )
      .one();
    if (row.ns_config === null || row.ns_fetched_at === null) return null;
    if (now - row.ns_fetched_at >= NAMESPACE_CONFIG_TTL_MS || now < row.ns_fetched_at) return null;
    return JSON.parse(row.ns_config) as NamespaceLimit;
  }

  /** Fetches the namespace's config once for every call waiting on it; a failure falls back to the last copy. */
  #refreshNamespace(ns: string): Promise<NamespaceLimit> {
    this.#refreshing ??= (async () => {
      const sql = this.ctx.storage.sql;
      try {
        const fresh = await namespaceConfigObject(this.env.RATE_LIMIT, ns).namespaceLimit({ ns });
        const value: NamespaceLimit = {
          ns: fresh.ns,
          config: fresh.config,
          source: fresh.source,
          version: fresh.version,
        };
        sql.exec('UPDATE rl_state SET ns_config = ?, ns_fetched_at = ?', JSON.stringify(value), this.clock());
        return value;
      } catch (err) {
        const stale = sql
          .exec<{ ns_config: string | null }>('SELECT ns_config FROM rl_state')
          .one().ns_config;
        if (stale === null) throw err;
        console.warn(`keywarden: rate limit config for ${ns} unreachable, using the last copy`, String(err));
        return JSON.parse(stale) as NamespaceLimit;
      } finally {
        this.#refreshing = null;
      }
    })();
    return this.#refreshing;
  }

  /** One event per decision; `value` is the tokens left after it. */
  #emit(decision: Decision<'rate_limit'>, input: CheckInput, remaining: number, startedAt: number): void {
    this.emitter.emit({
      pattern: 'rate_limit',
      decision,
      ns: input.ns,
      key: input.key,
      value: remaining,
      durationMs: Math.max(0, this.clock() - startedAt),
      requestId: input.requestId,
      traceId: input.trace?.traceId,
      spanId: input.trace?.spanId,
    });
  }

  #bucket(state: StateRow, config: LimitConfig, cost: number, now: number) {
    const sql = this.ctx.storage.sql;
    const capacity = config.burst ?? config.limit;
    let tokens: number;
    if (state.algorithm === 'token_bucket') {
      tokens = refilled(state, config, now);
    } else {
      // A fresh bucket, or the namespace switched from the window: carry what the window used.
      tokens = Math.max(0, capacity - this.#windowUsed(now, config.windowMs));
      sql.exec('DELETE FROM rl_hits');
      sql.exec("UPDATE rl_state SET algorithm = 'token_bucket', window_used = 0");
    }
    const allowed = cost <= capacity && tokens + EPSILON >= cost;
    // Not clamped at 0: a spend within EPSILON of empty must not mint the difference.
    if (allowed) tokens -= cost;
    // Never move time backwards: a clock step back must not refill the bucket twice.
    sql.exec('UPDATE rl_state SET tokens = ?, updated_at = max(updated_at, ?)', tokens, now);
    const rate = config.limit / config.windowMs;
    return {
      allowed,
      remaining: Math.floor(tokens + EPSILON),
      retryAfterMs: allowed ? null : cost > capacity ? null : Math.max(1, Math.ceil((cost - tokens) / rate)),
    };
  }

  #window(state: StateRow, config: LimitConfig, cost: number, now: number) {
    const sql = this.ctx.storage.sql;
    if (state.algorithm !== 'sliding_window') {
      // A fresh window, or the namespace switched from the bucket: what the bucket spent counts now.
      const spent =
        state.algorithm === 'token_bucket'
          ? Math.ceil(Math.max(0, (config.burst ?? config.limit) - refilled(state, config, now)))
          : 0;
      sql.exec('DELETE FROM rl_hits');
      if (spent > 0) sql.exec('INSERT INTO rl_hits VALUES (?, ?)', now, spent);
      sql.exec("UPDATE rl_state SET algorithm = 'sliding_window', window_used = ?, tokens = 0", spent);
    }
    const used = this.#windowUsed(now, config.windowMs);
    const allowed = used + cost <= config.limit;
    if (allowed) {
      // One row per millisecond with admissions: a burst in one ms is one row.
      sql.exec(
        'INSERT INTO rl_hits VALUES (?, ?) ON CONFLICT DO UPDATE SET cost = cost + excluded.cost',
        now,
        cost,
      );
      sql.exec('UPDATE rl_state SET window_used = window_used + ?', cost);
      return { allowed, remaining: config.limit - used - cost, retryAfterMs: null };
    }
    if (cost > config.limit) return { allowed, remaining: config.limit - used, retryAfterMs: null };
    // The earliest time enough of the window's hits have slid out for this cost to fit.
    let freed = 0;
    let retryAt = now + config.windowMs;
    for (const hit of sql.exec<{ at: number; cost: number }>('SELECT at, cost FROM rl_hits ORDER BY at')) {
      freed += hit.cost;
      if (used - freed + cost <= config.limit) {
        retryAt = hit.at + config.windowMs;
        break;
      }
    }
    return { allowed, remaining: config.limit - used, retryAfterMs: Math.max(1, retryAt - now) };
  }

  /** Hits still inside the window at `now`; drops the ones that slid out (a hit at t counts until t + windowMs). */
  #windowUsed(now: number, windowMs: number): number {
    const sql = this.ctx.storage.sql;
    const gone = sql
      .exec<{ n: number | null }>('SELECT sum(cost) AS n FROM rl_hits WHERE at <= ?', now - windowMs)
      .one().n;
    if (gone !== null) {
      sql.exec('DELETE FROM rl_hits WHERE at <= ?', now - windowMs);
      sql.exec('UPDATE rl_state SET window_used = window_used - ?', gone);
    }
    return sql.exec<{ window_used: number }>('SELECT window_used FROM rl_state').one().window_used;
  }

  #remaining(now: number, config: LimitConfig): number {
    const state = this.ctx.storage.sql.exec<StateRow>('SELECT * FROM rl_state').one();
    if (state.algorithm === 'sliding_window') return config.limit - this.#windowUsed(now, config.windowMs);
    if (state.algorithm === 'token_bucket') return Math.floor(refilled(state, config, now) + EPSILON);
    return config.burst ?? config.limit;
  }

  /** Keeps the ledger bounded: by age (never shorter than a window), then by count. */
  #forget(now: number, config: LimitConfig): void {
    const sql = this.ctx.storage.sql;
    sql.exec('DELETE FROM rl_ledger WHERE at < ?', now - Math.max(config.windowMs, LEDGER_MIN_RETENTION_MS));
    sql.exec(
      'DELETE FROM rl_ledger WHERE rowid <= (SELECT max(rowid) FROM rl_ledger) - ?',
      LEDGER_MAX_ENTRIES,
    );
  }
}

function refilled(state: Pick<StateRow, 'tokens' | 'updated_at'>, config: LimitConfig, now: number): number {
  const capacity = config.burst ?? config.limit;
  const elapsed = Math.max(0, now - state.updated_at);
  return Math.min(capacity, state.tokens + (elapsed * config.limit) / config.windowMs);
}

function effective(ns: LimitConfig, override: LimitOverride | null): LimitConfig {
  if (override === null) return ns;
  return {
    algorithm: ns.algorithm,
    limit: override.limit ?? ns.limit,
    windowMs: override.windowMs ?? ns.windowMs,
    burst: override.burst !== undefined ? override.burst : ns.burst,
  };
}

function parseOverride(text: string | null): LimitOverride | null {
  return text === null ? null : (JSON.parse(text) as LimitOverride);
}

function positiveInt(name: string, n: unknown, max: number): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new RangeError(`${name} must be an integer from 1 to ${max}`);
  }
  return n;
}

export function validConfig(c: LimitConfig): LimitConfig {
  if (!(ALGORITHMS as readonly string[]).includes(c.algorithm))
    throw new RangeError(`algorithm must be one of ${ALGORITHMS.join(', ')}`);
  return {
    algorithm: c.algorithm,
    limit: positiveInt('limit', c.limit, LIMIT_BOUNDS.limit),
    windowMs: positiveInt('windowMs', c.windowMs, LIMIT_BOUNDS.windowMs),
    burst:
      c.burst === null || c.burst === undefined ? null : positiveInt('burst', c.burst, LIMIT_BOUNDS.limit),
  };
}

export function validOverride(o: LimitOverride): LimitOverride {
  const out: LimitOverride = {};
  if (o.limit !== undefined) out.limit = positiveInt('limit', o.limit, LIMIT_BOUNDS.limit);
  if (o.windowMs !== undefined) out.windowMs = positiveInt('windowMs', o.windowMs, LIMIT_BOUNDS.windowMs);
  if (o.burst !== undefined)
    out.burst = o.burst === null ? null : positiveInt('burst', o.burst, LIMIT_BOUNDS.limit);
  return out;
}
