// The counter pattern object (DESIGN §4): an exact counter for one key, whose increments are
// idempotent by requestId — a retried increment is answered `duplicate` and changes nothing, for
// as long as its requestId is remembered (`DEDUPE_TTL_MS`, purged by a timer).
//
// Every method is synchronous SQL with no await, so a call runs start to end without another call
// interleaving (the input gate): read-check-write needs no lock.
import { InstrumentedObject } from '../../kit';

export type TraceContext = { traceId?: string; spanId?: string };

export type IncrementInput = {
  ns: string;
  key: string;
  /** the caller's id for this increment; a retry with the same id is a `duplicate`. Optional: without one, nothing is deduped. */
  requestId?: string;
  /** default 1; may be negative; a safe integer */
  by?: number;
  trace?: TraceContext;
};

export type IncrementResult = {
  /** `conflict`: a duplicate whose `by` differs from the one applied (the caller reused an id for another increment) */
  decision: 'incremented' | 'duplicate' | 'conflict';
  /** the counter after this call */
  value: number;
  /** what this requestId added (for a duplicate: what the first call added) */
  by: number;
  /** the counter right after this requestId's increment was applied */
  appliedValue: number;
  /** the same as `decision === 'conflict'` */
  mismatch: boolean;
};

export type CounterInspect =
  | {
      found: true;
      requestId: string;
      ns: string;
      key: string;
      by: number;
      appliedValue: number;
      appliedAt: number;
      expiresAt: number;
    }
  | { found: false; requestId: string }
  | {
      found: true;
      counters: { ns: string; key: string; value: number; updatedAt: number }[];
      /** requestIds remembered for dedupe */
      remembered: number;
      nextPurgeAt: number | null;
    };

/** How long an applied requestId is remembered; a retry later than this counts again. */
export const DEDUPE_TTL_MS = 24 * 3600_000;
const PURGE_TIMER = 'counter.purge';
const PURGE_BATCH = 5_000;

export class CounterObject extends InstrumentedObject {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS counter_value (ns TEXT NOT NULL, key TEXT NOT NULL,
      value INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (ns, key))`);
    sql.exec(`CREATE TABLE IF NOT EXISTS counter_applied (request_id TEXT PRIMARY KEY, ns TEXT NOT NULL,
      key TEXT NOT NULL, by INTEGER NOT NULL, value_after INTEGER NOT NULL, at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL)`);
    sql.exec('CREATE INDEX IF NOT EXISTS counter_applied_expiry ON counter_applied (expires_at)');
    this.timers.on(PURGE_TIMER, (_name, _payload, at) => this.#purge(at));
  }

  increment(input: IncrementInput): IncrementResult {
    const { ns, key, requestId, trace } = input;
    const by = input.by ?? 1;
    if (!Number.isSafeInteger(by)) throw new RangeError('by must be a safe integer');
    const now = Date.now();
    const sql = this.ctx.storage.sql;
    const current = this.#value(ns, key);

    if (requestId !== undefined) {
      const seen = sql
        .exec<{ by: number; value_after: number }>(
          'SELECT by, value_after FROM counter_applied WHERE request_id = ? AND expires_at > ?',
          requestId,
          now,
        )
        .toArray()[0];
      if (seen) {
        // Nothing changes either way; a reused id with another amount is the caller's bug, so it is
        // told apart (and counted apart) from an honest retry.
        const decision = seen.by === by ? 'duplicate' : 'conflict';
        this.#emit(decision, input, current, now);
        return {
          decision,
          value: current,
          by: seen.by,
          appliedValue: seen.value_after,
          mismatch: decision === 'conflict',
        };
      }
    }

    const value = current + by;
    if (!Number.isSafeInteger(value)) throw new RangeError('the counter would leave the safe integer range');
    sql.exec(
      `INSERT INTO counter_value (ns, key, value, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      ns,
      key,
      value,
      now,
    );
    if (requestId !== undefined) {
      // REPLACE: an expired row for this id may still be there, waiting for the purge.
      sql.exec(
        'INSERT OR REPLACE INTO counter_applied VALUES (?, ?, ?, ?, ?, ?, ?)',
        requestId,
        ns,
        key,
        by,
        value,
        now,
        now + DEDUPE_TTL_MS,
      );
      if (this.timers.next(PURGE_TIMER, 'expired') === null) {
        this.timers.schedule(PURGE_TIMER, 'expired', now + DEDUPE_TTL_MS);
      }
    }
    this.#emit('incremented', { ns, key, requestId, trace }, value, now);
    return { decision: 'incremented', value, by, appliedValue: value, mismatch: false };
  }

  /** The counter's value; reading is not a decision, so it emits nothing. */
  read(input: { ns: string; key: string }): { ns: string; key: string; value: number } {
    return { ns: input.ns, key: input.key, value: this.#value(input.ns, input.key) };
  }

  inspect(requestId?: string): CounterInspect {
    const sql = this.ctx.storage.sql;
    if (requestId !== undefined) {
      const row = sql
        .exec<{ ns: string; key: string; by: number; value_after: number; at: number; expires_at: number }>(
          'SELECT ns, key, by, value_after, at, expires_at FROM counter_applied WHERE request_id = ? AND expires_at > ?',
          requestId,
          Date.now(),
        )
        .toArray()[0];
      if (!row) return { found: false, requestId };
      return {
        found: true,
        requestId,
        ns: row.ns,
        key: row.key,
        by: row.by,
        appliedValue: row.value_after,
        appliedAt: row.at,
        expiresAt: row.expires_at,
      };
    }
    const counters = sql
      .exec<{ ns: string; key: string; value: number; updated_at: number }>(
        'SELECT ns, key, value, updated_at FROM counter_value ORDER BY ns, key',
      )
      .toArray()
      .map((r) => ({ ns: r.ns, key: r.key, value: r.value, updatedAt: r.updated_at }));
    const remembered = sql.exec<{ n: number }>('SELECT count(*) AS n FROM counter_applied').one().n;
    return { found: true, counters, remembered, nextPurgeAt: this.timers.next(PURGE_TIMER, 'expired') };
  }

  #value(ns: string, key: string): number {
    return (
      this.ctx.storage.sql
        .exec<{ value: number }>('SELECT value FROM counter_value WHERE ns = ? AND key = ?', ns, key)
        .toArray()[0]?.value ?? 0
    );
  }

  #emit(
    decision: IncrementResult['decision'],
    input: Pick<IncrementInput, 'ns' | 'key' | 'requestId' | 'trace'>,
    value: number,
    startedAt: number,
  ): void {
    this.emitter.emit({
      pattern: 'counter',
      decision,
      ns: input.ns,
      key: input.key,
      value,
      durationMs: Date.now() - startedAt,
      requestId: input.requestId,
      traceId: input.trace?.traceId,
      spanId: input.trace?.spanId,
    });
  }

  /** Forgets requestIds past their TTL, a batch at a time, and re-arms for the next one. */
  #purge(dueAt: number): void {
    const sql = this.ctx.storage.sql;
    // The alarm may run a little before its time (and tests run it at once): purge what it was set for.
    const now = Math.max(Date.now(), dueAt);
    sql.exec(
      'DELETE FROM counter_applied WHERE request_id IN (SELECT request_id FROM counter_applied WHERE expires_at <= ? LIMIT ?)',
      now,
      PURGE_BATCH,
    );
    const next = sql
      .exec<{ at: number | null }>('SELECT min(expires_at) AS at FROM counter_applied')
      .one().at;
    // The handler's own row is deleted after it returns only if its time is unchanged, so moving it is safe.
    if (next !== null) this.timers.schedule(PURGE_TIMER, 'expired', Math.max(next, now + 1));
  }
}
