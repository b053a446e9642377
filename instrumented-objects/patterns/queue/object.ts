// The per-key queue object (DESIGN §4): at-least-once delivery with leases. `receive` leases
// messages to a consumer for `leaseMs`; `ack` with the lease token removes one for good; a `nack`,
// or a lease that lapses (a timer on the kit's alarm), makes it visible again after an exponential
// backoff (`retried`), until `maxAttempts` deliveries, when it moves to the dead-letter table
// (`dead_lettered`). Enqueue is idempotent by message id, for as long as the id is remembered
// (queued, dead-lettered, or acked within ACK_RETENTION_MS).
//
// Every method is synchronous SQL with no await, so a call runs start to end without another call
// interleaving (the input gate): two consumers never lease the same message, and a message is
// acked at most once (its id moves from the queue to the acked table in one step).
import type { Decision } from '../../../collector';
import { InstrumentedObject } from '../../kit';

export type TraceContext = { traceId?: string; spanId?: string };

/** A message body: any JSON value (kept shallow: a recursive type overflows the RPC stub types). */
export type JsonValue = string | number | boolean | null | object;

export type QueueConfig = {
  /** deliveries before a message is dead-lettered */
  maxAttempts: number;
  /** lease length when `receive` names none */
  leaseMs: number;
  /** the wait before the n-th redelivery: min(backoffCapMs, backoffBaseMs · 2^(n−1)) */
  backoffBaseMs: number;
  backoffCapMs: number;
};

export const DEFAULT_QUEUE_CONFIG: QueueConfig = {
  maxAttempts: 5,
  leaseMs: 30_000,
  backoffBaseMs: 1_000,
  backoffCapMs: 5 * 60_000,
};
export const QUEUE_BOUNDS = {
  maxAttempts: 100,
  leaseMs: 12 * 3600_000,
  backoffMs: 24 * 3600_000,
  delayMs: 7 * 24 * 3600_000,
  receive: 100,
  bodyBytes: 128 * 1024,
} as const;
/** Acked ids are remembered this long (and at most ACKED_MAX of them): enqueue dedupes within it. */
export const ACK_RETENTION_MS = 24 * 3600_000;
export const ACKED_MAX = 100_000;

const LEASE_TIMER = 'queue.lease';

export type MessageState = 'ready' | 'delayed' | 'leased' | 'acked' | 'dead_lettered';

export type EnqueueInput = {
  ns: string;
  key: string;
  body: JsonValue;
  /** the message id; a second enqueue with it is a duplicate and changes nothing. Default: a new UUID. */
  id?: string;
  /** visible only after this long */
  delayMs?: number;
  trace?: TraceContext;
};

export type EnqueueResult = {
  decision: 'enqueued';
  id: string;
  /** the id was already known: nothing was enqueued (the event is `duplicate`) */
  duplicate: boolean;
  /** for a duplicate, where the first one is now; for a new message, `ready` or `delayed` */
  state: MessageState;
  /** for a duplicate, whether its body equals the stored one (null once it is no longer stored) */
  sameBody: boolean | null;
  depth: number;
};

export type Delivery = {
  id: string;
  body: JsonValue;
  /** 1 on the first delivery */
  attempt: number;
  leaseToken: string;
  leaseUntil: number;
  enqueuedAt: number;
};

export type ReceiveResult = { messages: Delivery[]; depth: number; oldestAgeMs: number | null };

/** Why an ack or nack was refused. stale_lease: another delivery holds (or held) it; lease_expired: this lease lapsed. */
export type RefusalReason = 'stale_lease' | 'lease_expired' | 'already_acked' | 'dead_lettered' | 'not_found';

export type AckResult =
  | { decision: 'acked'; acked: true; id: string; replayed: boolean; depth: number }
  | { acked: false; id: string; reason: RefusalReason };

export type NackResult =
  | {
      decision: 'retried' | 'dead_lettered';
      id: string;
      attempts: number;
      /** when it is visible again (retried) */
      visibleAt: number | null;
      depth: number;
    }
  | { id: string; reason: RefusalReason };

export type DeadLetter = {
  id: string;
  body: JsonValue;
  attempts: number;
  enqueuedAt: number;
  deadAt: number;
  reason: 'nacked' | 'lease_lapsed';
};

/** Where one message is, as the object's own ledger says. */
export type MessageRecord = {
  state: MessageState;
  /** deliveries so far */
  attempts: number;
  enqueuedAt: number;
  visibleAt: number | null;
  leaseUntil: number | null;
  ackedAt: number | null;
  deadAt: number | null;
};

export type QueueInspect =
  | ({ found: true; id: string } & MessageRecord)
  | { found: false; id: string }
  | {
      found: true;
      ns: string | null;
      key: string | null;
      config: QueueConfig;
      depth: number;
      ready: number;
      delayed: number;
      leased: number;
      oldestAgeMs: number | null;
      deadLetters: number;
      enqueuedTotal: number;
      deliveredTotal: number;
      ackedTotal: number;
      retriedTotal: number;
      deadLetteredTotal: number;
    };

type StateRow = {
  ns: string | null;
  key: string | null;
  config: string;
  next_seq: number;
  enqueued_total: number;
  delivered_total: number;
  acked_total: number;
  retried_total: number;
  dead_total: number;
};
type MessageRow = {
  id: string;
  seq: number;
  body: string;
  enqueued_at: number;
  visible_at: number;
  attempts: number;
  lease_token: string | null;
  lease_until: number | null;
};

const encoder = new TextEncoder();

export class QueueObject extends InstrumentedObject {
  /** The request time. Tests replace it (through runInDurableObject) to step time; nothing else does. */
  protected clock: () => number = () => Date.now();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS queue_state (id INTEGER PRIMARY KEY CHECK (id = 0), ns TEXT, key TEXT,
      config TEXT NOT NULL, next_seq INTEGER NOT NULL, enqueued_total INTEGER NOT NULL,
      delivered_total INTEGER NOT NULL, acked_total INTEGER NOT NULL, retried_total INTEGER NOT NULL,
      dead_total INTEGER NOT NULL)`);
    sql.exec(
      'INSERT OR IGNORE INTO queue_state VALUES (0, NULL, NULL, ?, 1, 0, 0, 0, 0, 0)',
      JSON.stringify(DEFAULT_QUEUE_CONFIG),
    );
    sql.exec(`CREATE TABLE IF NOT EXISTS queue_messages (id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE,
      body TEXT NOT NULL, enqueued_at INTEGER NOT NULL, visible_at INTEGER NOT NULL, attempts INTEGER NOT NULL,
      lease_token TEXT, lease_until INTEGER)`);
    sql.exec('CREATE INDEX IF NOT EXISTS queue_unleased ON queue_messages (seq) WHERE lease_token IS NULL');
    sql.exec(
      'CREATE INDEX IF NOT EXISTS queue_leases ON queue_messages (lease_until) WHERE lease_token IS NOT NULL',
    );
    sql.exec(`CREATE TABLE IF NOT EXISTS queue_acked (id TEXT PRIMARY KEY, lease_token TEXT NOT NULL,
      acked_at INTEGER NOT NULL, attempts INTEGER NOT NULL, enqueued_at INTEGER NOT NULL)`);
    sql.exec('CREATE INDEX IF NOT EXISTS queue_acked_by_at ON queue_acked (acked_at)');
    sql.exec(`CREATE TABLE IF NOT EXISTS queue_dead (id TEXT PRIMARY KEY, body TEXT NOT NULL,
      enqueued_at INTEGER NOT NULL, attempts INTEGER NOT NULL, dead_at INTEGER NOT NULL, reason TEXT NOT NULL)`);
    this.timers.on(LEASE_TIMER, (id, payload) => this.#leaseLapsed(id, payload as { token: string }));
  }

  enqueue(input: EnqueueInput): EnqueueResult {
    const now = this.clock();
    this.#state(input.ns, input.key);
    const body = JSON.stringify(input.body ?? null);
    if (encoder.encode(body).byteLength > QUEUE_BOUNDS.bodyBytes) {
      throw new RangeError(`body must serialize to at most ${QUEUE_BOUNDS.bodyBytes} bytes`);
    }
    const delayMs = input.delayMs ?? 0;
    if (!Number.isSafeInteger(delayMs) || delayMs < 0 || delayMs > QUEUE_BOUNDS.delayMs) {
      throw new RangeError(`delayMs must be an integer from 0 to ${QUEUE_BOUNDS.delayMs}`);
    }
    const id = input.id ?? crypto.randomUUID();
    const sql = this.ctx.storage.sql;
    const known = this.#find(id, now);
    if (known.found) {
      const stored =
        known.state === 'acked'
          ? null
          : (sql
              .exec<{ body: string }>(
                known.state === 'dead_lettered'
                  ? 'SELECT body FROM queue_dead WHERE id = ?'
                  : 'SELECT body FROM queue_messages WHERE id = ?',
                id,
              )
              .toArray()[0]?.body ?? null);
      const depth = this.#depth();
      this.#emit('duplicate', input, id, depth, now);
      return {
        decision: 'enqueued',
        id,
        duplicate: true,
        state: known.state,
        sameBody: stored === null ? null : stored === body,
        depth,
      };
    }
    this.#insert(id, body, now, now + delayMs);
    const depth = this.#depth();
    this.#emit('enqueued', input, id, depth, now);
    return {
      decision: 'enqueued',
      id,
      duplicate: false,
      state: delayMs > 0 ? 'delayed' : 'ready',
      sameBody: null,
      depth,
    };
  }

  /** Leases up to `max` visible messages, oldest first; each delivery is a decision. */
  receive(input: {
    ns: string;
    key: string;
    max?: number;
    leaseMs?: number;
    trace?: TraceContext;
  }): ReceiveResult {
    const now = this.clock();
    const config = this.#config(input.ns, input.key);
    const max = input.max ?? 1;
    const leaseMs = input.leaseMs ?? config.leaseMs;
    if (!Number.isSafeInteger(max) || max < 1 || max > QUEUE_BOUNDS.receive) {
      throw new RangeError(`max must be an integer from 1 to ${QUEUE_BOUNDS.receive}`);
    }
    if (!Number.isSafeInteger(leaseMs) || leaseMs < 1 || leaseMs > QUEUE_BOUNDS.leaseMs) {
      throw new RangeError(`leaseMs must be an integer from 1 to ${QUEUE_BOUNDS.leaseMs}`);
    }
    this.#sweep(now);
    const sql = this.ctx.storage.sql;
    const rows = sql
      .exec<MessageRow>(
        'SELECT * FROM queue_messages WHERE lease_token IS NULL AND visible_at <= ? ORDER BY seq LIMIT ?',
        now,
        max,
      )
      .toArray();
    const depth = this.#depth();
    const messages: Delivery[] = [];
    for (const row of rows) {
      const leaseToken = crypto.randomUUID();
      const leaseUntil = now + leaseMs;
      const attempt = row.attempts + 1;
      sql.exec(
        'UPDATE queue_messages SET attempts = ?, lease_token = ?, lease_until = ? WHERE id = ?',
        attempt,
        leaseToken,
        leaseUntil,
        row.id,
      );
      this.timers.schedule(LEASE_TIMER, row.id, leaseUntil, { token: leaseToken });
      messages.push({
        id: row.id,
        body: JSON.parse(row.body) as JsonValue,
        attempt,
        leaseToken,
        leaseUntil,
        enqueuedAt: row.enqueued_at,
      });
      this.#emit('delivered', input, row.id, depth, now);
    }
    if (messages.length > 0) {
      sql.exec('UPDATE queue_state SET delivered_total = delivered_total + ?', messages.length);
    }
    return { messages, depth, oldestAgeMs: this.#oldestAgeMs(now) };
  }

  ack(input: { ns: string; key: string; id: string; leaseToken: string; trace?: TraceContext }): AckResult {
    const now = this.clock();
    this.#state(input.ns, input.key);
    this.#sweep(now);
    const sql = this.ctx.storage.sql;
    const acked = sql
      .exec<{ lease_token: string }>('SELECT lease_token FROM queue_acked WHERE id = ?', input.id)
      .toArray()[0];
    if (acked) {
      // The same ack again (its answer was lost) succeeds; another delivery's ack does not.
      if (acked.lease_token === input.leaseToken) {
        const depth = this.#depth();
        this.#emit('duplicate', input, input.id, depth, now);
        return { decision: 'acked', acked: true, id: input.id, replayed: true, depth };
      }
      return { acked: false, ...this.#refuse(input, 'already_acked', now) };
    }
    const row = this.#leased(input.id, input.leaseToken, now);
    if ('reason' in row) return { acked: false, ...this.#refuse(input, row.reason, now) };
    sql.exec('DELETE FROM queue_messages WHERE id = ?', input.id);
    sql.exec(
      'INSERT INTO queue_acked VALUES (?, ?, ?, ?, ?)',
      input.id,
      input.leaseToken,
      now,
      row.attempts,
      row.enqueued_at,
    );
    sql.exec('UPDATE queue_state SET acked_total = acked_total + 1');
    this.timers.cancel(LEASE_TIMER, input.id);
    this.#forgetAcked(now);
    const depth = this.#depth();
    this.#emit('acked', input, input.id, depth, now);
    return { decision: 'acked', acked: true, id: input.id, replayed: false, depth };
  }

  /** Gives a leased message back: visible again after the backoff, or dead-lettered past maxAttempts. */
  nack(input: { ns: string; key: string; id: string; leaseToken: string; trace?: TraceContext }): NackResult {
    const now = this.clock();
    this.#state(input.ns, input.key);
    this.#sweep(now);
    if (
      this.ctx.storage.sql
        .exec<{ n: number }>('SELECT count(*) AS n FROM queue_acked WHERE id = ?', input.id)
        .one().n > 0
    ) {
      return this.#refuse(input, 'already_acked', now);
    }
    const row = this.#leased(input.id, input.leaseToken, now);
    if ('reason' in row) return this.#refuse(input, row.reason, now);
    return this.#retryOrBury(row, now, 'nacked', input.trace);
  }

  /** Dead letters, oldest first. Reading is not a decision. */
  deadLetters(input: { ns: string; key: string; limit?: number }): {
    deadLetters: DeadLetter[];
    total: number;
  } {
    this.#state(input.ns, input.key);
    const sql = this.ctx.storage.sql;
    const limit = Math.min(Math.max(input.limit ?? 100, 1), 1000);
    return {
      deadLetters: sql
        .exec<{
          id: string;
          body: string;
          attempts: number;
          enqueued_at: number;
          dead_at: number;
          reason: string;
        }>('SELECT * FROM queue_dead ORDER BY dead_at, id LIMIT ?', limit)
        .toArray()
        .map((r) => ({
          id: r.id,
          body: JSON.parse(r.body) as JsonValue,
          attempts: r.attempts,
          enqueuedAt: r.enqueued_at,
          deadAt: r.dead_at,
          reason: r.reason as DeadLetter['reason'],
        })),
      total: sql.exec<{ n: number }>('SELECT count(*) AS n FROM queue_dead').one().n,
    };
  }

  /** Puts a dead letter back on the queue with a fresh attempt count (an operator's decision). */
  redrive(input: {
    ns: string;
    key: string;
    id: string;
    trace?: TraceContext;
  }): EnqueueResult | { id: string; reason: 'not_dead' } {
    const now = this.clock();
    this.#state(input.ns, input.key);
    const sql = this.ctx.storage.sql;
    const dead = sql
      .exec<{ body: string }>('SELECT body FROM queue_dead WHERE id = ?', input.id)
      .toArray()[0];
    if (!dead) return { id: input.id, reason: 'not_dead' };
    sql.exec('DELETE FROM queue_dead WHERE id = ?', input.id);
    this.#insert(input.id, dead.body, now, now);
    const depth = this.#depth();
    this.#emit('enqueued', input, input.id, depth, now);
    return { decision: 'enqueued', id: input.id, duplicate: false, state: 'ready', sameBody: null, depth };
  }

  config(input: { ns: string; key: string }): QueueConfig {
    return this.#config(input.ns, input.key);
  }

  configure(input: { ns: string; key: string; config: Partial<QueueConfig> }): QueueConfig {
    const current = this.#config(input.ns, input.key);
    const next = validConfig({ ...current, ...input.config });
    this.ctx.storage.sql.exec('UPDATE queue_state SET config = ?', JSON.stringify(next));
    return next;
  }

  inspect(id?: string): QueueInspect {
    const now = this.clock();
    if (id !== undefined) {
      const found = this.#find(id, now);
      return found.found ? { ...found, id } : { found: false, id };
    }
    const sql = this.ctx.storage.sql;
    const state = sql.exec<StateRow>('SELECT * FROM queue_state').one();
    const counts = sql
      .exec<{ leased: number; delayed: number; ready: number }>(
        `SELECT count(lease_token) AS leased,
           coalesce(sum(lease_token IS NULL AND visible_at > ?), 0) AS delayed,
           coalesce(sum(lease_token IS NULL AND visible_at <= ?), 0) AS ready FROM queue_messages`,
        now,
        now,
      )
      .one();
    return {
      found: true,
      ns: state.ns,
      key: state.key,
      config: JSON.parse(state.config) as QueueConfig,
      depth: counts.leased + counts.delayed + counts.ready,
      ...counts,
      oldestAgeMs: this.#oldestAgeMs(now),
      deadLetters: sql.exec<{ n: number }>('SELECT count(*) AS n FROM queue_dead').one().n,
      enqueuedTotal: state.enqueued_total,
      deliveredTotal: state.delivered_total,
      ackedTotal: state.acked_total,
      retriedTotal: state.retried_total,
      deadLetteredTotal: state.dead_total,
    };
  }

  #state(ns: string, key: string): StateRow {
    return this.claimKey(
      'queue_state',
      this.ctx.storage.sql.exec<StateRow>('SELECT * FROM queue_state').one(),
      ns,
      key,
      'queue',
    );
  }

  #config(ns: string, key: string): QueueConfig {
    return JSON.parse(this.#state(ns, key).config) as QueueConfig;
  }

  #insert(id: string, body: string, now: number, visibleAt: number): void {
    const sql = this.ctx.storage.sql;
    const seq = sql.exec<{ next_seq: number }>('SELECT next_seq FROM queue_state').one().next_seq;
    sql.exec(
      'INSERT INTO queue_messages VALUES (?, ?, ?, ?, ?, 0, NULL, NULL)',
      id,
      seq,
      body,
      now,
      visibleAt,
    );
    sql.exec('UPDATE queue_state SET next_seq = next_seq + 1, enqueued_total = enqueued_total + 1');
  }

  /** The message `id` if `leaseToken` is its live lease, else why not. */
  #leased(
    id: string,
    leaseToken: string,
    now: number,
  ): MessageRow | { reason: 'stale_lease' | 'lease_expired' | 'dead_lettered' | 'not_found' } {
    const sql = this.ctx.storage.sql;
    const row = sql.exec<MessageRow>('SELECT * FROM queue_messages WHERE id = ?', id).toArray()[0];
    if (!row) {
      const dead = sql.exec<{ n: number }>('SELECT count(*) AS n FROM queue_dead WHERE id = ?', id).one().n;
      return { reason: dead > 0 ? 'dead_lettered' : 'not_found' };
    }
    if (row.lease_token === leaseToken && row.lease_until !== null && row.lease_until > now) return row;
    // A lapsed lease was swept into a retry before we got here, so its token no longer matches.
    return { reason: row.lease_token === null && row.attempts > 0 ? 'lease_expired' : 'stale_lease' };
  }

  /** Leases past their deadline, handled now rather than whenever the alarm runs. */
  #sweep(now: number): void {
    const lapsed = this.ctx.storage.sql
      .exec<MessageRow>(
        'SELECT * FROM queue_messages WHERE lease_token IS NOT NULL AND lease_until <= ? ORDER BY lease_until, seq',
        now,
      )
      .toArray();
    for (const row of lapsed) this.#retryOrBury(row, now, 'lease_lapsed');
  }

  /**
   * The lease timer: the alarm may run a little before `at` (the scheduler fires the earliest timer
   * it was armed for), so the timer itself is the proof the lease is over; its token guards against
   * a lease that was acked, nacked or handed to another delivery since.
   */
  #leaseLapsed(id: string, payload: { token: string }): void {
    const row = this.ctx.storage.sql
      .exec<MessageRow>('SELECT * FROM queue_messages WHERE id = ? AND lease_token = ?', id, payload.token)
      .toArray()[0];
    if (row) this.#retryOrBury(row, this.clock(), 'lease_lapsed');
  }

  /** An ack or nack that does not apply (a stale or lapsed lease, a message acked, dead or unknown). */
  #refuse(
    input: { ns: string; key: string; id: string; trace?: TraceContext },
    reason: RefusalReason,
    now: number,
  ): { id: string; reason: RefusalReason } {
    this.#emit('refused', input, input.id, this.#depth(), now);
    return { id: input.id, reason };
  }

  #retryOrBury(
    row: MessageRow,
    now: number,
    reason: 'nacked' | 'lease_lapsed',
    trace?: TraceContext,
  ): NackResult {
    const sql = this.ctx.storage.sql;
    const state = sql.exec<StateRow>('SELECT * FROM queue_state').one();
    const config = JSON.parse(state.config) as QueueConfig;
    const who = { ns: state.ns!, key: state.key!, trace };
    this.timers.cancel(LEASE_TIMER, row.id);
    if (row.attempts >= config.maxAttempts) {
      sql.exec('DELETE FROM queue_messages WHERE id = ?', row.id);
      sql.exec(
        'INSERT INTO queue_dead VALUES (?, ?, ?, ?, ?, ?)',
        row.id,
        row.body,
        row.enqueued_at,
        row.attempts,
        now,
        reason,
      );
      sql.exec('UPDATE queue_state SET dead_total = dead_total + 1');
      const depth = this.#depth();
      this.#emit('dead_lettered', who, row.id, depth, now);
      return { decision: 'dead_lettered', id: row.id, attempts: row.attempts, visibleAt: null, depth };
    }
    const backoff = Math.min(config.backoffCapMs, config.backoffBaseMs * 2 ** (row.attempts - 1));
    const visibleAt = now + backoff;
    sql.exec(
      'UPDATE queue_messages SET lease_token = NULL, lease_until = NULL, visible_at = ? WHERE id = ?',
      visibleAt,
      row.id,
    );
    sql.exec('UPDATE queue_state SET retried_total = retried_total + 1');
    const depth = this.#depth();
    this.#emit('retried', who, row.id, depth, now);
    return { decision: 'retried', id: row.id, attempts: row.attempts, visibleAt, depth };
  }

  #find(id: string, now: number): ({ found: true } & MessageRecord) | { found: false } {
    const sql = this.ctx.storage.sql;
    const row = sql.exec<MessageRow>('SELECT * FROM queue_messages WHERE id = ?', id).toArray()[0];
    if (row) {
      const state: MessageState =
        row.lease_token !== null ? 'leased' : row.visible_at > now ? 'delayed' : 'ready';
      return {
        found: true,
        state,
        attempts: row.attempts,
        enqueuedAt: row.enqueued_at,
        visibleAt: row.visible_at,
        leaseUntil: row.lease_until,
        ackedAt: null,
        deadAt: null,
      };
    }
    const acked = sql
      .exec<{ acked_at: number; attempts: number; enqueued_at: number }>(
        'SELECT acked_at, attempts, enqueued_at FROM queue_acked WHERE id = ?',
        id,
      )
      .toArray()[0];
    if (acked) {
      return {
        found: true,
        state: 'acked',
        attempts: acked.attempts,
        enqueuedAt: acked.enqueued_at,
        visibleAt: null,
        leaseUntil: null,
        ackedAt: acked.acked_at,
        deadAt: null,
      };
    }
    const dead = sql
      .exec<{ attempts: number; enqueued_at: number; dead_at: number }>(
        'SELECT attempts, enqueued_at, dead_at FROM queue_dead WHERE id = ?',
        id,
      )
      .toArray()[0];
    if (dead) {
      return {
        found: true,
        state: 'dead_lettered',
        attempts: dead.attempts,
        enqueuedAt: dead.enqueued_at,
        visibleAt: null,
        leaseUntil: null,
        ackedAt: null,
        deadAt: dead.dead_at,
      };
    }
    return { found: false };
  }

  #depth(): number {
    return this.ctx.storage.sql.exec<{ n: number }>('SELECT count(*) AS n FROM queue_messages').one().n;
  }

  #oldestAgeMs(now: number): number | null {
    const oldest = this.ctx.storage.sql
      .exec<{ at: number | null }>('SELECT min(enqueued_at) AS at FROM queue_messages')
      .one().at;
    return oldest === null ? null : Math.max(0, now - oldest);
  }

  /** Acked ids are kept for dedupe within ACK_RETENTION_MS, and at most ACKED_MAX of them. */
  #forgetAcked(now: number): void {
    const sql = this.ctx.storage.sql;
    sql.exec('DELETE FROM queue_acked WHERE acked_at < ?', now - ACK_RETENTION_MS);
    sql.exec('DELETE FROM queue_acked WHERE rowid <= (SELECT max(rowid) FROM queue_acked) - ?', ACKED_MAX);
  }

  #emit(
    decision: Decision<'queue'>,
    who: { ns: string; key: string; trace?: TraceContext },
    id: string,
    depth: number,
    startedAt: number,
  ): void {
    this.emitter.emit({
      pattern: 'queue',
      decision,
      ns: who.ns,
      key: who.key,
      value: depth,
      durationMs: Math.max(0, this.clock() - startedAt),
      requestId: id,
      traceId: who.trace?.traceId,
      spanId: who.trace?.spanId,
    });
  }
}

function boundedInt(name: string, n: unknown, min: number, max: number): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

export function validConfig(c: QueueConfig): QueueConfig {
  return {
    maxAttempts: boundedInt('maxAttempts', c.maxAttempts, 1, QUEUE_BOUNDS.maxAttempts),
    leaseMs: boundedInt('leaseMs', c.leaseMs, 1, QUEUE_BOUNDS.leaseMs),
    backoffBaseMs: boundedInt('backoffBaseMs', c.backoffBaseMs, 0, QUEUE_BOUNDS.backoffMs),
    backoffCapMs: boundedInt('backoffCapMs', c.backoffCapMs, 0, QUEUE_BOUNDS.backoffMs),
  };
}
