// The single-writer ordering object (DESIGN §4): one key's writes, applied strictly in sequence.
// The writer numbers its writes 1, 2, 3, …; the object applies the next expected one, holds later
// ones in a bounded reorder buffer until the gap before them fills, refuses writes too far ahead
// (answering the sequence it expects), and answers a sequence it already applied as a `duplicate`,
// so a retried write is harmless. Applied writes form a log, readable in order.
//
// Every method is synchronous SQL with no await, so a call runs start to end without another call
// interleaving (the input gate): "read the expected seq, apply, drain the buffer" needs no lock.
import { InstrumentedObject } from '../../kit';

export type TraceContext = { traceId?: string; spanId?: string };

/**
 * A write's payload: any JSON value. Kept shallow on purpose: a recursive JSON type overflows the
 * RPC stub's type mapping (TS2589) wherever a stub's result is used.
 */
export type JsonValue = string | number | boolean | null | object;

export type OrderingDecision = 'applied' | 'buffered' | 'refused' | 'gap' | 'duplicate';

/** How far ahead of the expected sequence a write may be and still be buffered. */
export const MAX_REORDER_DISTANCE = 64;
/** Applied writes kept readable; older ones are trimmed (their sequence numbers stay duplicates). */
export const LOG_RETAINED = 10_000;
/** The serialized payload of one write, at most. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

export type WriteInput = {
  ns: string;
  key: string;
  /** the write's sequence number: 1 for the first write of a key, then +1 each */
  seq: number;
  /** any JSON value; stored as written */
  payload?: JsonValue;
  /** the caller's id for this write (for lookups); the sequence number is what dedupes */
  requestId?: string;
  trace?: TraceContext;
};

/** An open gap: sequences `from`..`to` (inclusive) are missing before buffered writes. */
export type Gap = { from: number; to: number };

export type WriteResult = {
  decision: OrderingDecision;
  seq: number;
  /** the next sequence the object expects, after this call */
  expected: number;
  /** seq − expected when the write arrived: 0 in order, > 0 early, < 0 a re-send */
  distance: number;
  /** sequences applied by this call, in order: the write itself and any buffered writes it released */
  applied: number[];
  /** for a duplicate: whether the write is already applied or still buffered */
  state?: 'applied' | 'buffered';
  /** for a duplicate: whether its payload equals the one stored (null once trimmed from the log) */
  samePayload?: boolean | null;
  /** gaps still open after this call */
  gaps: Gap[];
  /** the highest sequence the object would buffer now (for `refused`: send nothing past this) */
  maxAccepted: number;
};

export type LogEntry = {
  seq: number;
  payload: JsonValue;
  requestId: string | null;
  receivedAt: number;
  appliedAt: number;
};

export type OrderingInspect =
  | {
      found: true;
      requestId: string;
      seq: number;
      state: 'applied' | 'buffered';
      receivedAt: number;
      appliedAt: number | null;
    }
  | { found: false; requestId: string }
  | {
      found: true;
      ns: string | null;
      key: string | null;
      expected: number;
      appliedTotal: number;
      buffered: { seq: number; requestId: string | null; receivedAt: number }[];
      gaps: Gap[];
      /** applied entries still readable with `read` */
      logEntries: number;
      maxReorderDistance: number;
    };

const encoder = new TextEncoder();

type StateRow = { ns: string | null; key: string | null; next_seq: number; applied_total: number };
type EntryRow = { seq: number; payload: string; request_id: string | null; received_at: number };

export class OrderingObject extends InstrumentedObject {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS ordering_state (id INTEGER PRIMARY KEY CHECK (id = 0), ns TEXT,
      key TEXT, next_seq INTEGER NOT NULL, applied_total INTEGER NOT NULL)`);
    sql.exec('INSERT OR IGNORE INTO ordering_state VALUES (0, NULL, NULL, 1, 0)');
    sql.exec(`CREATE TABLE IF NOT EXISTS ordering_log (seq INTEGER PRIMARY KEY, payload TEXT NOT NULL,
      request_id TEXT, received_at INTEGER NOT NULL, applied_at INTEGER NOT NULL)`);
    sql.exec(`CREATE INDEX IF NOT EXISTS ordering_log_by_request ON ordering_log (request_id)
      WHERE request_id IS NOT NULL`);
    sql.exec(`CREATE TABLE IF NOT EXISTS ordering_buffer (seq INTEGER PRIMARY KEY, payload TEXT NOT NULL,
      request_id TEXT, received_at INTEGER NOT NULL)`);
    sql.exec(`CREATE INDEX IF NOT EXISTS ordering_buffer_by_request ON ordering_buffer (request_id)
      WHERE request_id IS NOT NULL`);
  }

  write(input: WriteInput): WriteResult {
    const { seq } = input;
    if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError('seq must be a positive safe integer');
    const payload = JSON.stringify(input.payload ?? null);
    if (encoder.encode(payload).byteLength > MAX_PAYLOAD_BYTES) {
      throw new RangeError(`payload must serialize to at most ${MAX_PAYLOAD_BYTES} bytes`);
    }
    const now = Date.now();
    const sql = this.ctx.storage.sql;
    const state = this.#state(input.ns, input.key);
    const expected = state.next_seq;
    const distance = seq - expected;
    // One decision per call, one event per decision (plus one per buffered write a call releases).
    const answer = (decision: OrderingDecision, extra: Partial<WriteResult> = {}): WriteResult => {
      const next = this.#state(input.ns, input.key).next_seq;
      if (decision !== 'applied') this.#emit(decision, input, distance, now);
      return {
        decision,
        seq,
        expected: next,
        distance,
        applied: [],
        gaps: this.#gaps(next),
        maxAccepted: next + MAX_REORDER_DISTANCE,
        ...extra,
      };
    };

    if (seq < expected) {
      const stored = sql
        .exec<{ payload: string }>('SELECT payload FROM ordering_log WHERE seq = ?', seq)
        .toArray()[0];
      return answer('duplicate', {
        state: 'applied',
        samePayload: stored ? stored.payload === payload : null,
      });
    }
    if (distance > MAX_REORDER_DISTANCE) return answer('refused');

    const buffered = sql
      .exec<{ payload: string }>('SELECT payload FROM ordering_buffer WHERE seq = ?', seq)
      .toArray()[0];
    if (buffered)
      return answer('duplicate', { state: 'buffered', samePayload: buffered.payload === payload });

    if (seq > expected) {
      // A write opens a gap when it leaves sequences missing that nothing buffered already exposed.
      const highest = sql.exec<{ s: number | null }>('SELECT max(seq) AS s FROM ordering_buffer').one().s;
      const opensGap = seq > Math.max(expected - 1, highest ?? 0) + 1;
      sql.exec('INSERT INTO ordering_buffer VALUES (?, ?, ?, ?)', seq, payload, input.requestId ?? null, now);
      return answer(opensGap ? 'gap' : 'buffered');
    }

    // In order: apply it, then every buffered write it releases, each as its own decision.
    this.#apply({ seq, payload, request_id: input.requestId ?? null, received_at: now }, now);
    this.#emit('applied', input, 0, now);
    const applied = [seq];
    for (;;) {
      const next = sql
        .exec<EntryRow>(
          'SELECT seq, payload, request_id, received_at FROM ordering_buffer WHERE seq = ?',
          applied[applied.length - 1]! + 1,
        )
        .toArray()[0];
      if (!next) break;
      sql.exec('DELETE FROM ordering_buffer WHERE seq = ?', next.seq);
      this.#apply(next, now);
      applied.push(next.seq);
      this.#emit('applied', { ...input, requestId: next.request_id ?? undefined }, 0, now);
    }
    this.#trim();
    return answer('applied', { applied });
  }

  /** Applied writes in sequence order, from `fromSeq` on; reading is not a decision. */
  read(input: { ns: string; key: string; fromSeq?: number; limit?: number }): {
    entries: LogEntry[];
    expected: number;
    /** pass as `fromSeq` to read on; null at the end of the log */
    nextSeq: number | null;
  } {
    const limit = Math.min(Math.max(input.limit ?? 100, 1), 1000);
    const rows = this.ctx.storage.sql
      .exec<EntryRow & { applied_at: number }>(
        `SELECT seq, payload, request_id, received_at, applied_at FROM ordering_log WHERE seq >= ?
         ORDER BY seq LIMIT ?`,
        input.fromSeq ?? 1,
        limit + 1,
      )
      .toArray();
    const expected = this.#state(input.ns, input.key).next_seq;
    return {
      entries: rows.slice(0, limit).map((r) => ({
        seq: r.seq,
        payload: JSON.parse(r.payload) as JsonValue,
        requestId: r.request_id,
        receivedAt: r.received_at,
        appliedAt: r.applied_at,
      })),
      expected,
      nextSeq: rows.length > limit ? rows[limit]!.seq : null,
    };
  }

  inspect(requestId?: string): OrderingInspect {
    const sql = this.ctx.storage.sql;
    if (requestId !== undefined) {
      const applied = sql
        .exec<{ seq: number; received_at: number; applied_at: number }>(
          'SELECT seq, received_at, applied_at FROM ordering_log WHERE request_id = ? ORDER BY seq LIMIT 1',
          requestId,
        )
        .toArray()[0];
      if (applied) {
        return {
          found: true,
          requestId,
          seq: applied.seq,
          state: 'applied',
          receivedAt: applied.received_at,
          appliedAt: applied.applied_at,
        };
      }
      const waiting = sql
        .exec<{ seq: number; received_at: number }>(
          'SELECT seq, received_at FROM ordering_buffer WHERE request_id = ? ORDER BY seq LIMIT 1',
          requestId,
        )
        .toArray()[0];
      if (waiting) {
        return {
          found: true,
          requestId,
          seq: waiting.seq,
          state: 'buffered',
          receivedAt: waiting.received_at,
          appliedAt: null,
        };
      }
      return { found: false, requestId };
    }
    const state = sql.exec<StateRow>('SELECT ns, key, next_seq, applied_total FROM ordering_state').one();
    return {
      found: true,
      ns: state.ns,
      key: state.key,
      expected: state.next_seq,
      appliedTotal: state.applied_total,
      buffered: sql
        .exec<{ seq: number; request_id: string | null; received_at: number }>(
          'SELECT seq, request_id, received_at FROM ordering_buffer ORDER BY seq',
        )
        .toArray()
        .map((r) => ({ seq: r.seq, requestId: r.request_id, receivedAt: r.received_at })),
      gaps: this.#gaps(state.next_seq),
      logEntries: sql.exec<{ n: number }>('SELECT count(*) AS n FROM ordering_log').one().n,
      maxReorderDistance: MAX_REORDER_DISTANCE,
    };
  }

  /** The key's state; the first write names the (ns, key) this object coordinates. */
  #state(ns: string, key: string): StateRow {
    return this.claimKey(
      'ordering_state',
      this.ctx.storage.sql
        .exec<StateRow>('SELECT ns, key, next_seq, applied_total FROM ordering_state')
        .one(),
      ns,
      key,
      'ordering',
    );
  }

  #apply(entry: EntryRow, now: number): void {
    const sql = this.ctx.storage.sql;
    sql.exec(
      'INSERT INTO ordering_log VALUES (?, ?, ?, ?, ?)',
      entry.seq,
      entry.payload,
      entry.request_id,
      entry.received_at,
      now,
    );
    sql.exec('UPDATE ordering_state SET next_seq = ?, applied_total = applied_total + 1', entry.seq + 1);
  }

  #trim(): void {
    this.ctx.storage.sql.exec(
      'DELETE FROM ordering_log WHERE seq <= (SELECT max(seq) FROM ordering_log) - ?',
      LOG_RETAINED,
    );
  }

  /** Missing sequences between the expected one and the highest buffered write. */
  #gaps(expected: number): Gap[] {
    const buffered = this.ctx.storage.sql
      .exec<{ seq: number }>('SELECT seq FROM ordering_buffer ORDER BY seq')
      .toArray();
    const gaps: Gap[] = [];
    let previous = expected - 1;
    for (const { seq } of buffered) {
      if (seq > previous + 1) gaps.push({ from: previous + 1, to: seq - 1 });
      previous = seq;
    }
    return gaps;
  }

  #emit(
    decision: OrderingDecision,
    input: Pick<WriteInput, 'ns' | 'key' | 'requestId' | 'trace'>,
    distance: number,
    startedAt: number,
  ): void {
    this.emitter.emit({
      pattern: 'ordering',
      decision,
      ns: input.ns,
      key: input.key,
      value: distance,
      durationMs: Date.now() - startedAt,
      requestId: input.requestId,
      traceId: input.trace?.traceId,
      spanId: input.trace?.spanId,
    });
  }
}
