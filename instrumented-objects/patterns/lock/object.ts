// The lock object (DESIGN §4): a lease on one key, with fencing tokens and FIFO waiters.
//
// - `acquire` grants the lock when it is free, with a fencing token one above every token this
//   object ever issued (the last one is in SQLite, so a restart never reuses one) and a lease of
//   `ttlMs`, ended by `release` or by the lease timer (`expired`).
// - When the lock is held, the caller joins a FIFO queue of waiters, persisted with its deadline.
//   Waiting across RPC is a long poll: `acquire` holds the call open for up to `pollMs` and
//   answers `acquired` the moment the lock is handed over, or `waited` (with the position) when
//   the poll ends first; the caller polls again with the same requestId to keep its place. The
//   handover itself happens in storage, when the lock is freed, to the head of the queue — it
//   does not need the waiter's call to be open, so a restart (which drops every open call) strands
//   no one: the waiter's next poll finds the lock already granted to it, or its place kept. A
//   waiter whose deadline passes leaves the queue (`timed_out`, by its timer).
// - `write(token, payload)` is the resource the lock protects (this object's own record): it lands
//   only under the live holder's token, and a stale token is refused (`fenced`).
//
// Every step that reads and changes the lock is synchronous SQL with no await (the input gate), so
// two calls can never both see the lock free. The only await is the long poll, after which the
// state is read again.
import type { Decision } from '../../../collector';
import { InstrumentedObject } from '../../kit';

export type TraceContext = { traceId?: string; spanId?: string };

/** The record's payload: any JSON value (kept shallow: a recursive type overflows the RPC stub types). */
export type JsonValue = string | number | boolean | null | object;

export const LOCK_BOUNDS = {
  ttlMs: 24 * 3600_000,
  waitMs: 3600_000,
  /** the longest an `acquire` call is held open; the caller polls again to wait longer */
  pollMs: 25_000,
  payloadBytes: 64 * 1024,
} as const;
export const DEFAULT_TTL_MS = 30_000;
/** Ended acquisitions and landed writes remembered for replays and lookups. */
export const HISTORY_MAX = 10_000;

const LEASE_TIMER = 'lock.lease';
const WAIT_TIMER = 'lock.wait';

export type AcquireInput = {
  ns: string;
  key: string;
  /** this acquisition's id; retry or poll with the same one. Default: a new UUID (returned). */
  requestId?: string;
  /** the lease, once granted; default 30 s */
  ttlMs?: number;
  /** how long to wait in the queue if the lock is held; 0 (default) = try once */
  waitMs?: number;
  /** how long this call may stay open waiting; default min(waitMs, 25 s) */
  pollMs?: number;
  trace?: TraceContext;
};

/**
 * `replayed`: the answer reports a decision made before this call (by an earlier attempt with the
 * same requestId, or by the handover that granted the lock to a waiter) — its event was emitted then.
 */
export type AcquireResult =
  | {
      decision: 'acquired';
      acquired: true;
      requestId: string;
      token: number;
      leaseUntil: number;
      /** how long it waited in the queue (0 if granted at once) */
      waitedMs: number;
      queued: boolean;
      replayed: boolean;
    }
  | {
      decision: 'waited';
      acquired: false;
      requestId: string;
      /** 1 = next in line */
      position: number;
      /** the waiter leaves the queue (`timed_out`) at this time */
      waitUntil: number;
      replayed: boolean;
    }
  | { decision: 'timed_out'; acquired: false; requestId: string; waitedMs: number; replayed: boolean }
  | {
      /** this acquisition already held the lock and its lease is over: acquire with a new requestId */
      decision: 'released' | 'expired';
      acquired: false;
      requestId: string;
      token: number;
      replayed: true;
    };

export type ReleaseResult =
  | { decision: 'released'; released: true; requestId: string; token: number; replayed: boolean }
  | { decision: 'fenced'; released: false; token: number; reason: FenceReason; currentToken: number | null };

export type GuardedWriteResult =
  | { written: true; token: number; replayed: boolean; writes: number }
  | { decision: 'fenced'; written: false; token: number; reason: FenceReason; currentToken: number | null };

/** expired: the token's lease ran out; stale: a later token was issued; unknown: never issued here. */
export type FenceReason = 'expired' | 'stale' | 'unknown';

export type LockRecord = {
  payload: JsonValue;
  token: number | null;
  requestId: string | null;
  writtenAt: number | null;
  writes: number;
};

export type LockInspect =
  | {
      found: true;
      requestId: string;
      state: 'holding' | 'waiting' | 'released' | 'expired' | 'timed_out';
      token: number | null;
      position: number | null;
      leaseUntil: number | null;
      waitUntil: number | null;
      enqueuedAt: number;
      acquiredAt: number | null;
      endedAt: number | null;
    }
  | {
      /** a guarded write with this requestId landed (a fenced one never does) */
      found: true;
      requestId: string;
      state: 'written';
      token: number;
      writtenAt: number;
    }
  | { found: false; requestId: string }
  | {
      found: true;
      ns: string | null;
      key: string | null;
      holder: { requestId: string; token: number; leaseUntil: number; acquiredAt: number } | null;
      waiters: { requestId: string; position: number; enqueuedAt: number; waitUntil: number }[];
      /** the last fencing token issued; the next one is above it */
      lastToken: number;
      record: LockRecord;
      acquiredTotal: number;
    };

type StateRow = {
  ns: string | null;
  key: string | null;
  last_token: number;
  holder: string | null;
  token: number | null;
  lease_until: number | null;
  acquired_at: number | null;
  enqueued_at: number | null;
  queued: number;
  acquired_total: number;
  answered: number;
};
type WaiterRow = { seq: number; request_id: string; ttl_ms: number; enqueued_at: number; deadline: number };
type HistoryRow = {
  request_id: string;
  token: number | null;
  outcome: 'released' | 'expired' | 'timed_out';
  enqueued_at: number;
  acquired_at: number | null;
  ended_at: number;
  answered: number;
};

const encoder = new TextEncoder();

export class LockObject extends InstrumentedObject {
  /** The request time. Tests replace it (through runInDurableObject) to step time; nothing else does. */
  protected clock: () => number = () => Date.now();
  /** Open long polls, by requestId: woken when that waiter is granted or times out. */
  readonly #wakers = new Map<string, Set<() => void>>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS lock_state (id INTEGER PRIMARY KEY CHECK (id = 0), ns TEXT, key TEXT,
      last_token INTEGER NOT NULL, holder TEXT, token INTEGER, lease_until INTEGER, acquired_at INTEGER,
      enqueued_at INTEGER, queued INTEGER NOT NULL, acquired_total INTEGER NOT NULL)`);
    sql.exec('INSERT OR IGNORE INTO lock_state (id, last_token, queued, acquired_total) VALUES (0, 0, 0, 0)');
    sql.exec(`CREATE TABLE IF NOT EXISTS lock_waiters (seq INTEGER PRIMARY KEY AUTOINCREMENT,
      request_id TEXT NOT NULL UNIQUE, ttl_ms INTEGER NOT NULL, enqueued_at INTEGER NOT NULL,
      deadline INTEGER NOT NULL)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS lock_history (request_id TEXT PRIMARY KEY, token INTEGER,
      outcome TEXT NOT NULL, enqueued_at INTEGER NOT NULL, acquired_at INTEGER, ended_at INTEGER NOT NULL)`);
    // `answered`: whether an acquire call was already told the acquisition's outcome. A grant made by
    // the handover, or a timeout made by a timer, reaches its caller on the next poll, which is not a
    // retry; a call after that is (`duplicate`). Added after the tables first shipped, so rows from
    // before count as answered.
    addColumn(sql, 'lock_state', 'answered', 'INTEGER NOT NULL DEFAULT 1');
    addColumn(sql, 'lock_history', 'answered', 'INTEGER NOT NULL DEFAULT 1');
    sql.exec(
      'CREATE INDEX IF NOT EXISTS lock_history_by_token ON lock_history (token) WHERE token IS NOT NULL',
    );
    sql.exec(`CREATE TABLE IF NOT EXISTS lock_record (id INTEGER PRIMARY KEY CHECK (id = 0), payload TEXT NOT NULL,
      token INTEGER, request_id TEXT, written_at INTEGER, writes INTEGER NOT NULL)`);
    sql.exec("INSERT OR IGNORE INTO lock_record VALUES (0, 'null', NULL, NULL, NULL, 0)");
    sql.exec(`CREATE TABLE IF NOT EXISTS lock_writes (seq INTEGER PRIMARY KEY AUTOINCREMENT, token INTEGER NOT NULL,
      request_id TEXT, at INTEGER NOT NULL)`);
    sql.exec(
      'CREATE INDEX IF NOT EXISTS lock_writes_by_request ON lock_writes (request_id) WHERE request_id IS NOT NULL',
    );
    // Both timers trust themselves: the alarm may run a little before `at` (it is armed for the
    // earliest timer), so a timer's decision is dated `at` at the earliest; each carries what it is
    // about (the token, the waiter), so a stale one changes nothing.
    this.timers.on(LEASE_TIMER, (_name, payload, at) => {
      const state = this.#row();
      if (state.holder !== null && state.token === (payload as { token: number }).token) {
        this.#expire(Math.max(at, this.clock()));
      }
    });
    this.timers.on(WAIT_TIMER, (requestId, _payload, at) => {
      const waiter = this.#waiter(requestId);
      if (waiter) this.#timeOut(waiter, Math.max(at, this.clock()));
    });
  }

  async acquire(input: AcquireInput): Promise<AcquireResult> {
    const ttlMs = input.ttlMs ?? DEFAULT_TTL_MS;
    const waitMs = input.waitMs ?? 0;
    const pollMs = input.pollMs ?? Math.min(waitMs, LOCK_BOUNDS.pollMs);
    boundedInt('ttlMs', ttlMs, 1, LOCK_BOUNDS.ttlMs);
    boundedInt('waitMs', waitMs, 0, LOCK_BOUNDS.waitMs);
    boundedInt('pollMs', pollMs, 0, LOCK_BOUNDS.pollMs);
    const requestId = input.requestId ?? crypto.randomUUID();
    const request = { ...input, requestId, ttlMs, waitMs };
    const first = this.#acquireNow(request, this.clock());
    if (first.decision !== 'waited' || pollMs === 0) return first;

    // The long poll: wait (in real time) for the handover or the deadline, then read again.
    const pollEnd = Date.now() + Math.min(pollMs, Math.max(0, first.waitUntil - this.clock()));
    for (;;) {
      await this.#sleep(requestId, pollEnd - Date.now());
      const answer = this.#acquireNow(request, this.clock());
      if (answer.decision !== 'waited' || Date.now() >= pollEnd) return answer;
    }
  }

  release(input: { ns: string; key: string; token: number; trace?: TraceContext }): ReleaseResult {
    const now = this.clock();
    this.#state(input.ns, input.key);
    this.#settle(now);
    const state = this.#row();
    if (state.holder !== null && state.token === input.token) {
      this.#end(state, 'released', now, input.trace);
      return {
        decision: 'released',
        released: true,
        requestId: state.holder,
        token: input.token,
        replayed: false,
      };
    }
    const past = this.#byToken(input.token);
    if (past?.outcome === 'released') {
      this.#emit('duplicate', input, past.request_id, undefined, now);
      return {
        decision: 'released',
        released: true,
        requestId: past.request_id,
        token: input.token,
        replayed: true,
      };
    }
    const reason = this.#fenceReason(input.token, past);
    this.#emit('fenced', input, past?.request_id, undefined, now);
    return { decision: 'fenced', released: false, token: input.token, reason, currentToken: state.token };
  }

  /** The guarded write: lands only under the live holder's token; `requestId` makes a retry harmless. */
  write(input: {
    ns: string;
    key: string;
    token: number;
    payload: JsonValue;
    requestId?: string;
    trace?: TraceContext;
  }): GuardedWriteResult {
    const now = this.clock();
    this.#state(input.ns, input.key);
    const payload = JSON.stringify(input.payload ?? null);
    if (encoder.encode(payload).byteLength > LOCK_BOUNDS.payloadBytes) {
      throw new RangeError(`payload must serialize to at most ${LOCK_BOUNDS.payloadBytes} bytes`);
    }
    this.#settle(now);
    const sql = this.ctx.storage.sql;
    if (input.requestId !== undefined) {
      const landed = sql
        .exec<{ token: number }>(
          'SELECT token FROM lock_writes WHERE request_id = ? AND token = ?',
          input.requestId,
          input.token,
        )
        .toArray()[0];
      if (landed) {
        this.#emit('duplicate', input, input.requestId, undefined, now);
        return { written: true, token: input.token, replayed: true, writes: this.#record().writes };
      }
    }
    const state = this.#row();
    if (state.holder === null || state.token !== input.token) {
      const past = this.#byToken(input.token);
      this.#emit('fenced', input, input.requestId ?? past?.request_id, undefined, now);
      return {
        decision: 'fenced',
        written: false,
        token: input.token,
        reason: this.#fenceReason(input.token, past),
        currentToken: state.token,
      };
    }
    sql.exec(
      'UPDATE lock_record SET payload = ?, token = ?, request_id = ?, written_at = ?, writes = writes + 1',
      payload,
      input.token,
      input.requestId ?? null,
      now,
    );
    sql.exec(
      'INSERT INTO lock_writes (token, request_id, at) VALUES (?, ?, ?)',
      input.token,
      input.requestId ?? null,
      now,
    );
    sql.exec('DELETE FROM lock_writes WHERE seq <= (SELECT max(seq) FROM lock_writes) - ?', HISTORY_MAX);
    // Without its own requestId, the write is the holder's acquisition's, as a fenced one is the token's.
    this.#emit('written', input, input.requestId ?? state.holder, undefined, now);
    return { written: true, token: input.token, replayed: false, writes: this.#record().writes };
  }

  /** The protected record, and the tokens of the last writes that landed (oldest first). */
  record(input: {
    ns: string;
    key: string;
    limit?: number;
  }): LockRecord & { landed: { token: number; requestId: string | null; at: number }[] } {
    this.#state(input.ns, input.key);
    const limit = Math.min(Math.max(input.limit ?? 100, 1), HISTORY_MAX);
    const landed = this.ctx.storage.sql
      .exec<{ token: number; request_id: string | null; at: number }>(
        'SELECT token, request_id, at FROM (SELECT * FROM lock_writes ORDER BY seq DESC LIMIT ?) ORDER BY seq',
        limit,
      )
      .toArray()
      .map((r) => ({ token: r.token, requestId: r.request_id, at: r.at }));
    return { ...this.#record(), landed };
  }

  inspect(requestId?: string): LockInspect {
    const state = this.#row();
    if (requestId !== undefined) {
      if (state.holder === requestId) {
        return {
          found: true,
          requestId,
          state: 'holding',
          token: state.token,
          position: null,
          leaseUntil: state.lease_until,
          waitUntil: null,
          enqueuedAt: state.enqueued_at!,
          acquiredAt: state.acquired_at,
          endedAt: null,
        };
      }
      const waiter = this.#waiter(requestId);
      if (waiter) {
        return {
          found: true,
          requestId,
          state: 'waiting',
          token: null,
          position: this.#position(waiter),
          leaseUntil: null,
          waitUntil: waiter.deadline,
          enqueuedAt: waiter.enqueued_at,
          acquiredAt: null,
          endedAt: null,
        };
      }
      const past = this.#history(requestId);
      if (!past) {
        const landed = this.ctx.storage.sql
          .exec<{ token: number; at: number }>(
            'SELECT token, at FROM lock_writes WHERE request_id = ? ORDER BY seq LIMIT 1',
            requestId,
          )
          .toArray()[0];
        return landed
          ? { found: true, requestId, state: 'written', token: landed.token, writtenAt: landed.at }
          : { found: false, requestId };
      }
      return {
        found: true,
        requestId,
        state: past.outcome,
        token: past.token,
        position: null,
        leaseUntil: null,
        waitUntil: null,
        enqueuedAt: past.enqueued_at,
        acquiredAt: past.acquired_at,
        endedAt: past.ended_at,
      };
    }
    const waiters = this.ctx.storage.sql
      .exec<WaiterRow>('SELECT * FROM lock_waiters ORDER BY seq')
      .toArray()
      .map((w, i) => ({
        requestId: w.request_id,
        position: i + 1,
        enqueuedAt: w.enqueued_at,
        waitUntil: w.deadline,
      }));
    return {
      found: true,
      ns: state.ns,
      key: state.key,
      holder:
        state.holder === null
          ? null
          : {
              requestId: state.holder,
              token: state.token!,
              leaseUntil: state.lease_until!,
              acquiredAt: state.acquired_at!,
            },
      waiters,
      lastToken: state.last_token,
      record: this.#record(),
      acquiredTotal: state.acquired_total,
    };
  }

  /** One synchronous look at the lock for this acquisition: grant, queue, report, or time out. */
  #acquireNow(
    input: AcquireInput & { requestId: string; ttlMs: number; waitMs: number },
    now: number,
  ): AcquireResult {
    const { requestId } = input;
    this.#state(input.ns, input.key);
    this.#settle(now);
    const state = this.#row();
    if (state.holder === requestId) {
      this.#replay(input, state.answered === 1, now, () => {
        this.ctx.storage.sql.exec('UPDATE lock_state SET answered = 1');
      });
      return this.#held(state, true);
    }
    const past = this.#history(requestId);
    if (past) {
      this.#replay(input, past.answered === 1, now, () => {
        this.ctx.storage.sql.exec('UPDATE lock_history SET answered = 1 WHERE request_id = ?', requestId);
      });
      if (past.outcome === 'timed_out') {
        return {
          decision: 'timed_out',
          acquired: false,
          requestId,
          waitedMs: past.ended_at - past.enqueued_at,
          replayed: true,
        };
      }
      return { decision: past.outcome, acquired: false, requestId, token: past.token!, replayed: true };
    }
    // Still in line: this is a poll, not a retry of a decision (no event; polling is how one waits).
    const waiter = this.#waiter(requestId);
    if (waiter) {
      return {
        decision: 'waited',
        acquired: false,
        requestId,
        position: this.#position(waiter),
        waitUntil: waiter.deadline,
        replayed: true,
      };
    }
    if (state.holder === null) {
      // Free means no one waits: whoever frees the lock hands it to the head of the queue at once.
      this.#grant(requestId, input.ttlMs, now, now, false, input.trace);
      return this.#held(this.#row(), false);
    }
    const sql = this.ctx.storage.sql;
    if (input.waitMs === 0) {
      sql.exec(
        'INSERT INTO lock_history VALUES (?, NULL, ?, ?, NULL, ?, 1)',
        requestId,
        'timed_out',
        now,
        now,
      );
      this.#trimHistory();
      this.#emit('timed_out', input, requestId, 0, now);
      return { decision: 'timed_out', acquired: false, requestId, waitedMs: 0, replayed: false };
    }
    const deadline = now + input.waitMs;
    sql.exec(
      'INSERT INTO lock_waiters (request_id, ttl_ms, enqueued_at, deadline) VALUES (?, ?, ?, ?)',
      requestId,
      input.ttlMs,
      now,
      deadline,
    );
    this.timers.schedule(WAIT_TIMER, requestId, deadline);
    const position = sql.exec<{ n: number }>('SELECT count(*) AS n FROM lock_waiters').one().n;
    this.#emit('waited', input, requestId, 0, now);
    return { decision: 'waited', acquired: false, requestId, position, waitUntil: deadline, replayed: false };
  }

  /**
   * An acquire answered with an outcome decided before this call: the first call to learn an
   * outcome the handover or a timer decided is told it (marked answered, no event); any call after
   * that is a retry, one `duplicate` event.
   */
  #replay(
    input: AcquireInput & { requestId: string },
    answeredBefore: boolean,
    now: number,
    markAnswered: () => void,
  ): void {
    if (answeredBefore) this.#emit('duplicate', input, input.requestId, undefined, now);
    else markAnswered();
  }

  #held(state: StateRow, replayed: boolean): AcquireResult & { decision: 'acquired' } {
    return {
      decision: 'acquired',
      acquired: true,
      requestId: state.holder!,
      token: state.token!,
      leaseUntil: state.lease_until!,
      waitedMs: state.acquired_at! - state.enqueued_at!,
      queued: state.queued === 1,
      replayed,
    };
  }

  /** Whatever is overdue, done now rather than whenever the alarm runs: a lapsed lease, lapsed waiters. */
  #settle(now: number): void {
    const state = this.#row();
    if (state.holder !== null && state.lease_until! <= now) this.#expire(now);
    const lapsed = this.ctx.storage.sql
      .exec<WaiterRow>('SELECT * FROM lock_waiters WHERE deadline <= ? ORDER BY seq', now)
      .toArray();
    for (const waiter of lapsed) this.#timeOut(waiter, now);
  }

  #grant(
    requestId: string,
    ttlMs: number,
    now: number,
    enqueuedAt: number,
    queued: boolean,
    trace?: TraceContext,
  ): void {
    const sql = this.ctx.storage.sql;
    const state = this.#row();
    const token = state.last_token + 1;
    const leaseUntil = now + ttlMs;
    // Granted at once, the call that asked is answered now; handed over, the waiter learns it later.
    sql.exec(
      `UPDATE lock_state SET last_token = ?, holder = ?, token = ?, lease_until = ?, acquired_at = ?, enqueued_at = ?,
       queued = ?, acquired_total = acquired_total + 1, answered = ?`,
      token,
      requestId,
      token,
      leaseUntil,
      now,
      enqueuedAt,
      queued ? 1 : 0,
      queued ? 0 : 1,
    );
    this.timers.schedule(LEASE_TIMER, String(token), leaseUntil, { token });
    this.#emit('acquired', { ns: state.ns!, key: state.key!, trace }, requestId, now - enqueuedAt, now);
    this.#wake(requestId);
  }

  /** The holder's lease is over: record why, then hand the lock to the head of the queue. */
  #end(state: StateRow, outcome: 'released' | 'expired', now: number, trace?: TraceContext): void {
    const sql = this.ctx.storage.sql;
    sql.exec(
      'INSERT OR REPLACE INTO lock_history VALUES (?, ?, ?, ?, ?, ?, ?)',
      state.holder,
      state.token,
      outcome,
      state.enqueued_at,
      state.acquired_at,
      now,
      state.answered,
    );
    this.#trimHistory();
    sql.exec(
      'UPDATE lock_state SET holder = NULL, token = NULL, lease_until = NULL, acquired_at = NULL, enqueued_at = NULL, queued = 0',
    );
    this.timers.cancel(LEASE_TIMER, String(state.token));
    this.#emit(outcome, { ns: state.ns!, key: state.key!, trace }, state.holder!, undefined, now);
    this.#handOver(now);
  }

  #expire(now: number): void {
    this.#end(this.#row(), 'expired', now);
  }

  /** Grants the lock to the first waiter still within its deadline; those past it time out. */
  #handOver(now: number): void {
    for (;;) {
      const head = this.ctx.storage.sql
        .exec<WaiterRow>('SELECT * FROM lock_waiters ORDER BY seq LIMIT 1')
        .toArray()[0];
      if (!head) return;
      if (head.deadline <= now) {
        this.#timeOut(head, now);
        continue;
      }
      this.ctx.storage.sql.exec('DELETE FROM lock_waiters WHERE seq = ?', head.seq);
      this.timers.cancel(WAIT_TIMER, head.request_id);
      this.#grant(head.request_id, head.ttl_ms, now, head.enqueued_at, true);
      return;
    }
  }

  #timeOut(waiter: WaiterRow, now: number): void {
    const sql = this.ctx.storage.sql;
    sql.exec('DELETE FROM lock_waiters WHERE seq = ?', waiter.seq);
    this.timers.cancel(WAIT_TIMER, waiter.request_id);
    sql.exec(
      'INSERT OR REPLACE INTO lock_history VALUES (?, NULL, ?, ?, NULL, ?, 0)',
      waiter.request_id,
      'timed_out',
      waiter.enqueued_at,
      now,
    );
    this.#trimHistory();
    const state = this.#row();
    this.#emit(
      'timed_out',
      { ns: state.ns!, key: state.key! },
      waiter.request_id,
      now - waiter.enqueued_at,
      now,
    );
    this.#wake(waiter.request_id);
  }

  #fenceReason(token: number, past: HistoryRow | undefined): FenceReason {
    if (past?.outcome === 'expired') return 'expired';
    return Number.isSafeInteger(token) && token >= 1 && token <= this.#row().last_token ? 'stale' : 'unknown';
  }

  #state(ns: string, key: string): StateRow {
    return this.claimKey('lock_state', this.#row(), ns, key, 'lock');
  }

  #row(): StateRow {
    return this.ctx.storage.sql.exec<StateRow>('SELECT * FROM lock_state').one();
  }

  #waiter(requestId: string): WaiterRow | undefined {
    return this.ctx.storage.sql
      .exec<WaiterRow>('SELECT * FROM lock_waiters WHERE request_id = ?', requestId)
      .toArray()[0];
  }

  #position(waiter: WaiterRow): number {
    return this.ctx.storage.sql
      .exec<{ n: number }>('SELECT count(*) AS n FROM lock_waiters WHERE seq <= ?', waiter.seq)
      .one().n;
  }

  #history(requestId: string): HistoryRow | undefined {
    return this.ctx.storage.sql
      .exec<HistoryRow>('SELECT * FROM lock_history WHERE request_id = ?', requestId)
      .toArray()[0];
  }

  #byToken(token: number): HistoryRow | undefined {
    return this.ctx.storage.sql
      .exec<HistoryRow>('SELECT * FROM lock_history WHERE token = ?', token)
      .toArray()[0];
  }

  #record(): LockRecord {
    const r = this.ctx.storage.sql
      .exec<{
        payload: string;
        token: number | null;
        request_id: string | null;
        written_at: number | null;
        writes: number;
      }>('SELECT payload, token, request_id, written_at, writes FROM lock_record')
      .one();
    return {
      payload: JSON.parse(r.payload) as JsonValue,
      token: r.token,
      requestId: r.request_id,
      writtenAt: r.written_at,
      writes: r.writes,
    };
  }

  #trimHistory(): void {
    this.ctx.storage.sql.exec(
      'DELETE FROM lock_history WHERE rowid <= (SELECT max(rowid) FROM lock_history) - ?',
      HISTORY_MAX,
    );
  }

  /** Waits up to `ms` for this requestId's grant or timeout. */
  #sleep(requestId: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wakers = this.#wakers.get(requestId) ?? new Set<() => void>();
      this.#wakers.set(requestId, wakers);
      const done = () => {
        clearTimeout(timer);
        wakers.delete(done);
        if (wakers.size === 0 && this.#wakers.get(requestId) === wakers) this.#wakers.delete(requestId);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      wakers.add(done);
    });
  }

  #wake(requestId: string): void {
    for (const done of [...(this.#wakers.get(requestId) ?? [])]) done();
  }

  #emit(
    decision: Decision<'lock'>,
    who: { ns: string; key: string; trace?: TraceContext },
    requestId: string | undefined,
    waitMs: number | undefined,
    startedAt: number,
  ): void {
    this.emitter.emit({
      pattern: 'lock',
      decision,
      ns: who.ns,
      key: who.key,
      // The measure is wait time; releases, expiries, fences, writes and duplicates carry none (it
      // would skew the wait series).
      value: waitMs,
      durationMs: Math.max(0, this.clock() - startedAt),
      requestId,
      traceId: who.trace?.traceId,
      spanId: who.trace?.spanId,
    });
  }
}

function boundedInt(name: string, n: unknown, min: number, max: number): void {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}`);
  }
}

/** Adds a column to a table that shipped without it (SQLite has no ADD COLUMN IF NOT EXISTS). */
function addColumn(sql: SqlStorage, table: string, column: string, declaration: string): void {
  const has = sql
    .exec<{ n: number }>('SELECT count(*) AS n FROM pragma_table_info(?) WHERE name = ?', table, column)
    .one().n;
  if (has === 0) sql.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${declaration}`);
}
