// The idempotency pattern object (DESIGN §4): "did this request already happen?" for one key.
//
// A ledger, requestId → { state: in_flight | applied | failed, response, payloadHash, firstSeen,
// attempts, lease }, used as begin / complete | fail around a side effect the caller performs (a
// Durable Object cannot receive a function over RPC, and the side effect usually lives elsewhere):
//
//   begin    → `proceed` (the caller owns the request and holds a lease: do the side effect now)
//              `duplicate` (applied before: here is the stored response — do nothing)
//              `in_flight` (another caller owns it right now: retry after `retryAfterMs`)
//              `conflict` (this requestId was used with another payload)
//              `failed` (it failed for good before: here is the stored error)
//   complete → `applied`, storing the response every retry will get
//   fail     → `failed`; with `retryable` (the default) the next begin may run it again
//
// Why a concurrent duplicate gets `in_flight` at once instead of waiting: a waiting request pins
// the object's memory and a client connection for as long as the owner takes, cannot survive a
// restart, and cannot know whether the owner is alive; the caller knows its own latency budget,
// so it decides whether to retry (Stripe answers 409 the same way).
//
// Crash semantics: the owner of an in_flight entry holds a lease (`leaseMs`, default 30 s; it may
// `extend` it). If the owner dies, the entry blocks retries only until the lease lapses; the
// next `begin` then takes over (`proceed` with `takeover: true`, attempts + 1, a new lease; event
// `taken_over`), and the old owner's late `complete`/`fail` is refused (`lease_lost`, with an event). A takeover means the side
// effect MAY have run once already, so the side effect must itself be idempotent on the requestId
// (the Pay demo's charge is a counter increment keyed by it) or be checked before it is redone.
//
// TTL: an entry is forgotten `ttlMs` (default 24 h) after it was applied or failed, or after its
// lease lapsed; a timer purges it, and an expired entry is treated as absent even before that.
//
// Every method is synchronous SQL with no await, so no two calls interleave (the input gate).
import type { Decision } from '../../../collector';
import { InstrumentedObject } from '../../kit';

export type TraceContext = { traceId?: string; spanId?: string };
export type IdempotencyState = 'in_flight' | 'applied' | 'failed';

export type LedgerEntry = {
  requestId: string;
  ns: string;
  key: string;
  state: IdempotencyState;
  payloadHash: string;
  /**
   * The response `complete` stored, as JSON text (RPC's types cannot carry a recursive JSON type;
   * the HTTP routes parse it).
   */
  responseJson: string | null;
  error: string | null;
  retryable: boolean;
  firstSeen: number;
  updatedAt: number;
  /** how many times an owner began it (1, or more after retried failures and takeovers) */
  attempts: number;
  /** while in_flight: when the owner's lease lapses */
  leaseUntil: number | null;
  /** when the ledger forgets it */
  expiresAt: number;
};

export type BeginInput = {
  ns: string;
  key: string;
  requestId: string;
  /** a hash of the request's payload; the same requestId with another hash is a `conflict` */
  payloadHash: string;
  /** how long the owner may take before a retry may take over; default 30 s */
  leaseMs?: number;
  /** how long the entry is remembered once settled; default 24 h */
  ttlMs?: number;
  trace?: TraceContext;
};

export type BeginResult =
  | { decision: 'proceed'; lease: string; attempt: number; takeover: boolean; leaseUntil: number }
  | { decision: 'duplicate'; responseJson: string | null; entry: LedgerEntry }
  | { decision: 'in_flight'; retryAfterMs: number; leaseRemainingMs: number; entry: LedgerEntry }
  | { decision: 'conflict'; entry: LedgerEntry }
  | { decision: 'failed'; error: string; entry: LedgerEntry };

export type SettleInput = { ns: string; key: string; requestId: string; lease: string; trace?: TraceContext };

export type SettleResult =
  | { decision: 'applied' | 'failed'; entry: LedgerEntry }
  /** the lease lapsed and another caller took over (or the entry expired): this owner's result is discarded */
  | { decision: 'lease_lost'; entry: LedgerEntry | null };

export type IdempotencyInspect =
  | ({ found: true } & LedgerEntry)
  | { found: false; requestId: string }
  | {
      found: true;
      entries: number;
      byState: Record<IdempotencyState, number>;
      /** the oldest entry still in flight, if any: a stuck owner shows here */
      oldestInFlight: { requestId: string; firstSeen: number; leaseUntil: number } | null;
      nextPurgeAt: number | null;
    };

export const DEFAULT_LEASE_MS = 30_000;
export const MAX_LEASE_MS = 15 * 60_000;
export const DEFAULT_TTL_MS = 24 * 3600_000;
export const MAX_TTL_MS = 7 * 24 * 3600_000;
/** A response is stored with its entry; bigger ones belong in the caller's own storage. */
export const MAX_RESPONSE_BYTES = 64 * 1024;
/** The longest an `in_flight` answer asks a caller to wait: owners usually finish well before their lease. */
const MAX_RETRY_AFTER_MS = 1_000;
const PURGE_TIMER = 'idempotency.purge';
const PURGE_BATCH = 5_000;

type Row = {
  request_id: string;
  ns: string;
  key: string;
  state: IdempotencyState;
  payload_hash: string;
  response: string | null;
  error: string | null;
  retryable: number;
  first_seen: number;
  updated_at: number;
  attempts: number;
  lease: string | null;
  lease_until: number | null;
  ttl_ms: number;
  expires_at: number;
};

function bounded(n: number | undefined, def: number, min: number, max: number, name: string): number {
  const v = n ?? def;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}`);
  }
  return v;
}

export class IdempotencyObject extends InstrumentedObject {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS idempotency_ledger (
      request_id TEXT PRIMARY KEY, ns TEXT NOT NULL, key TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('in_flight', 'applied', 'failed')),
      payload_hash TEXT NOT NULL, response TEXT, error TEXT, retryable INTEGER NOT NULL DEFAULT 1,
      first_seen INTEGER NOT NULL, updated_at INTEGER NOT NULL, attempts INTEGER NOT NULL,
      lease TEXT, lease_until INTEGER, ttl_ms INTEGER NOT NULL, expires_at INTEGER NOT NULL)`);
    sql.exec('CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency_ledger (expires_at)');
    this.timers.on(PURGE_TIMER, (_name, _payload, at) => this.#purge(at));
  }

  begin(input: BeginInput): BeginResult {
    const leaseMs = bounded(input.leaseMs, DEFAULT_LEASE_MS, 1, MAX_LEASE_MS, 'leaseMs');
    const ttlMs = bounded(input.ttlMs, DEFAULT_TTL_MS, 1_000, MAX_TTL_MS, 'ttlMs');
    const now = Date.now();
    const row = this.#row(input.requestId, now);

    if (row === null) {
      const lease = crypto.randomUUID();
      const leaseUntil = now + leaseMs;
      this.ctx.storage.sql.exec(
        `INSERT OR REPLACE INTO idempotency_ledger (request_id, ns, key, state, payload_hash, first_seen,
         updated_at, attempts, lease, lease_until, ttl_ms, expires_at)
         VALUES (?, ?, ?, 'in_flight', ?, ?, ?, 1, ?, ?, ?, ?)`,
        input.requestId,
        input.ns,
        input.key,
        input.payloadHash,
        now,
        now,
        lease,
        leaseUntil,
        ttlMs,
        leaseUntil + ttlMs,
      );
      this.#armPurge(leaseUntil + ttlMs);
      return { decision: 'proceed', lease, attempt: 1, takeover: false, leaseUntil };
    }

    const entry = toEntry(row);
    if (row.payload_hash !== input.payloadHash) {
      this.#emit('conflict', input, row, now);
      return { decision: 'conflict', entry };
    }
    if (row.state === 'applied') {
      this.#emit('duplicate', input, row, now);
      return { decision: 'duplicate', responseJson: entry.responseJson, entry };
    }
    if (row.state === 'in_flight' && row.lease_until !== null && row.lease_until > now) {
      this.#emit('in_flight', input, row, now);
      const leaseRemainingMs = row.lease_until - now;
      return {
        decision: 'in_flight',
        retryAfterMs: Math.min(leaseRemainingMs, MAX_RETRY_AFTER_MS),
        leaseRemainingMs,
        entry,
      };
    }
    if (row.state === 'failed' && row.retryable === 0) {
      this.#emit('failed', input, row, now);
      return { decision: 'failed', error: row.error ?? 'failed', entry };
    }

    // A lapsed lease (the owner died or is too slow) or a retryable failure: this caller owns it now.
    const takeover = row.state === 'in_flight';
    const lease = crypto.randomUUID();
    const leaseUntil = now + leaseMs;
    const attempt = row.attempts + 1;
    this.ctx.storage.sql.exec(
      `UPDATE idempotency_ledger SET state = 'in_flight', error = NULL, retryable = 1, updated_at = ?,
       attempts = ?, lease = ?, lease_until = ?, ttl_ms = ?, expires_at = ? WHERE request_id = ?`,
      now,
      attempt,
      lease,
      leaseUntil,
      ttlMs,
      leaseUntil + ttlMs,
      input.requestId,
    );
    this.#armPurge(leaseUntil + ttlMs);
    // A takeover is a decision (the side effect may now run twice, so it must be visible): one
    // `taken_over` event. Any other `proceed` emits none; its decision comes with complete/fail.
    if (takeover) this.#emit('taken_over', input, row, now);
    return { decision: 'proceed', lease, attempt, takeover, leaseUntil };
  }

  /** The owner did the side effect: store the response (JSON text) every retry will get. */
  complete(input: SettleInput & { responseJson: string }): SettleResult {
    const stored = input.responseJson;
    if (new TextEncoder().encode(stored).byteLength > MAX_RESPONSE_BYTES) {
      throw new RangeError(`a response is at most ${MAX_RESPONSE_BYTES} bytes of JSON`);
    }
    JSON.parse(stored); // throws on anything that is not JSON, before it is stored for good
    return this.#settle(input, 'applied', { response: stored, error: null, retryable: true });
  }

  /** The owner gave up. `retryable` (default): the next begin may run it again; else retries get `failed`. */
  fail(input: SettleInput & { error: string; retryable?: boolean }): SettleResult {
    return this.#settle(input, 'failed', {
      response: null,
      error: String(input.error).slice(0, 1_000),
      retryable: input.retryable ?? true,
    });
  }

  /** Keeps a long side effect's lease alive; false if it was already lost. */
  extend(input: SettleInput & { leaseMs: number }): { extended: boolean; leaseUntil: number | null } {
    const leaseMs = bounded(input.leaseMs, DEFAULT_LEASE_MS, 1, MAX_LEASE_MS, 'leaseMs');
    const now = Date.now();
    const row = this.#row(input.requestId, now);
    if (row?.state !== 'in_flight' || row.lease !== input.lease) {
      return { extended: false, leaseUntil: row?.lease_until ?? null };
    }
    const leaseUntil = Math.max(now + leaseMs, row.lease_until ?? 0);
    this.ctx.storage.sql.exec(
      'UPDATE idempotency_ledger SET lease_until = ?, expires_at = ?, updated_at = ? WHERE request_id = ?',
      leaseUntil,
      leaseUntil + row.ttl_ms,
      now,
      input.requestId,
    );
    this.#armPurge(leaseUntil + row.ttl_ms);
    return { extended: true, leaseUntil };
  }

  inspect(requestId?: string): IdempotencyInspect {
    const now = Date.now();
    if (requestId !== undefined) {
      const row = this.#row(requestId, now);
      return row ? { found: true, ...toEntry(row) } : { found: false, requestId };
    }
    const sql = this.ctx.storage.sql;
    const byState: Record<IdempotencyState, number> = { in_flight: 0, applied: 0, failed: 0 };
    let entries = 0;
    for (const r of sql
      .exec<{ state: IdempotencyState; n: number }>(
        'SELECT state, count(*) AS n FROM idempotency_ledger WHERE expires_at > ? GROUP BY state',
        now,
      )
      .toArray()) {
      byState[r.state] = r.n;
      entries += r.n;
    }
    const oldest = sql
      .exec<{ request_id: string; first_seen: number; lease_until: number }>(
        `SELECT request_id, first_seen, lease_until FROM idempotency_ledger
         WHERE state = 'in_flight' AND expires_at > ? ORDER BY first_seen LIMIT 1`,
        now,
      )
      .toArray()[0];
    return {
      found: true,
      entries,
      byState,
      oldestInFlight: oldest
        ? { requestId: oldest.request_id, firstSeen: oldest.first_seen, leaseUntil: oldest.lease_until }
        : null,
      nextPurgeAt: this.timers.next(PURGE_TIMER, 'expired'),
    };
  }

  #row(requestId: string, now: number): Row | null {
    const row = this.ctx.storage.sql
      .exec<Row>('SELECT * FROM idempotency_ledger WHERE request_id = ?', requestId)
      .toArray()[0];
    // Expired is forgotten, whether or not the purge has run yet.
    return row && row.expires_at > now ? row : null;
  }

  #settle(
    input: SettleInput,
    state: 'applied' | 'failed',
    outcome: { response: string | null; error: string | null; retryable: boolean },
  ): SettleResult {
    const now = Date.now();
    const row = this.#row(input.requestId, now);
    if (row && row.lease === input.lease && row.state === state) {
      // The owner's settle was retried (its answer got lost): same answer, no second decision.
      return { decision: state, entry: toEntry(row) };
    }
    if (row?.state !== 'in_flight' || row.lease !== input.lease) {
      // Its lease lapsed and another caller took over, or the entry expired: two owners must never
      // both settle it, so this (late) one is refused. Its side effect may have happened: see above.
      this.#emit('lease_lost', input, row, now);
      return { decision: 'lease_lost', entry: row ? toEntry(row) : null };
    }
    const expiresAt = now + row.ttl_ms;
    this.ctx.storage.sql.exec(
      `UPDATE idempotency_ledger SET state = ?, response = ?, error = ?, retryable = ?, updated_at = ?,
       lease_until = NULL, expires_at = ? WHERE request_id = ?`,
      state,
      outcome.response,
      outcome.error,
      outcome.retryable ? 1 : 0,
      now,
      expiresAt,
      input.requestId,
    );
    this.#armPurge(expiresAt);
    const settled = this.#row(input.requestId, now)!;
    this.#emit(state, input, settled, now);
    return { decision: state, entry: toEntry(settled) };
  }

  #emit(
    decision: Decision<'idempotency'>,
    input: { ns: string; key: string; requestId: string; trace?: TraceContext },
    row: Row | null,
    startedAt: number,
  ): void {
    this.emitter.emit({
      pattern: 'idempotency',
      decision,
      ns: input.ns,
      key: input.key,
      requestId: input.requestId,
      // One unit for every decision: how old the request is (for a duplicate: how late the retry
      // came); none when the entry is already forgotten.
      value: row === null ? undefined : Math.max(0, startedAt - row.first_seen),
      durationMs: Date.now() - startedAt,
      traceId: input.trace?.traceId,
      spanId: input.trace?.spanId,
    });
  }

  #armPurge(at: number): void {
    const next = this.timers.next(PURGE_TIMER, 'expired');
    if (next === null || at < next) this.timers.schedule(PURGE_TIMER, 'expired', at);
  }

  /** Forgets expired entries, a batch at a time, and re-arms for the next one. */
  #purge(dueAt: number): void {
    const sql = this.ctx.storage.sql;
    // The alarm may run a little before its time (and tests run it at once): purge what it was set for.
    const now = Math.max(Date.now(), dueAt);
    sql.exec(
      `DELETE FROM idempotency_ledger WHERE request_id IN
       (SELECT request_id FROM idempotency_ledger WHERE expires_at <= ? LIMIT ?)`,
      now,
      PURGE_BATCH,
    );
    const next = sql
      .exec<{ at: number | null }>('SELECT min(expires_at) AS at FROM idempotency_ledger')
      .one().at;
    // Moving our own timer is safe: the scheduler deletes only the row it fired, at its old time.
    if (next !== null) this.timers.schedule(PURGE_TIMER, 'expired', Math.max(next, now + 1));
  }
}

function toEntry(row: Row): LedgerEntry {
  return {
    requestId: row.request_id,
    ns: row.ns,
    key: row.key,
    state: row.state,
    payloadHash: row.payload_hash,
    responseJson: row.response,
    error: row.error,
    retryable: row.retryable === 1,
    firstSeen: row.first_seen,
    updatedAt: row.updated_at,
    attempts: row.attempts,
    leaseUntil: row.state === 'in_flight' ? row.lease_until : null,
    expiresAt: row.expires_at,
  };
}
