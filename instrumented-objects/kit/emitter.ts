// The emitter: every decision a pattern object makes becomes one event, sent to the collector in
// batches off the request's critical path. A pattern's answer never waits for, or fails because
// of, telemetry: emit() is synchronous and cannot throw; delivery happens in waitUntil. A failed
// batch goes to a bounded SQLite outbox and is retried with backoff from the alarm; what the bound
// forces out is counted and reported as a `telemetry/dropped` event once delivery recovers.
import type { DecisionEvent, DecisionInput, EventSink, Pattern } from '../../collector';
import type { AlarmScheduler } from './scheduler';

export type EmitterOptions = {
  /** where batches go; a function so the sink can be built lazily from env */
  sink: () => EventSink;
  /** flush at this many buffered events … */
  flushEvents?: number;
  /**
   * … or this long after the first one. 1 s, not DESIGN's first 250 ms: each flush is one RPC and
   * one journal write at a collector shard, and at a few events per second per object that cost,
   * not the events, was most of telemetry's overhead (bench:overhead).
   */
  flushMs?: number;
  /** the outbox holds at most this many events; older batches are dropped (and counted) past it */
  outboxMaxEvents?: number;
  /** batches in flight at once; more go straight to the outbox, so memory stays bounded */
  maxInFlight?: number;
  /** retry backoff: full jitter between 0 and min(cap, base · 2^attempt) */
  retryBaseMs?: number;
  retryCapMs?: number;
};

export type EmitterStats = {
  emitterId: string;
  nextSeq: number;
  buffered: number;
  inFlight: number;
  outboxBatches: number;
  outboxEvents: number;
  sent: number;
  /** dropped and not yet reported to the collector */
  droppedUnreported: number;
  /** dropped since this object was created */
  droppedTotal: number;
  enabled: boolean;
};

const OUTBOX_TIMER = 'kw.outbox';
/** Sequence numbers are reserved in blocks, so a restart never reuses one and we write once per block. */
const SEQ_BLOCK = 1_000;

export class Emitter {
  readonly emitterId: string;
  /** Off = every emit is a no-op (the overhead benchmark's "bare" side, same build). */
  enabled = true;
  #buffer: DecisionEvent[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  #inFlight = 0;
  /** deliveries under way, so drain() can wait for them */
  #deliveries = new Set<Promise<void>>();
  #sent = 0;
  #seq: number;
  #reservedUntil: number;
  #sink: EventSink | null = null;
  #droppedUnreported: number;
  /** the ns/key of the latest decision, to label this object's own telemetry events */
  #identity: { ns: string; key: string } | null = null;
  readonly #o: Required<EmitterOptions>;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly scheduler: AlarmScheduler,
    options: EmitterOptions,
  ) {
    this.#o = {
      flushEvents: 100,
      flushMs: 1_000,
      outboxMaxEvents: 10_000,
      maxInFlight: 4,
      retryBaseMs: 1_000,
      retryCapMs: 5 * 60_000,
      ...options,
    };
    this.emitterId = ctx.id.toString();
    const sql = ctx.storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS kw_emitter (id INTEGER PRIMARY KEY CHECK (id = 0),
      next_seq INTEGER NOT NULL, dropped_unreported INTEGER NOT NULL, dropped_total INTEGER NOT NULL)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS kw_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, events TEXT NOT NULL,
      n INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0)`);
    sql.exec('INSERT OR IGNORE INTO kw_emitter VALUES (0, 0, 0, 0)');
    const row = sql
      .exec<{ next_seq: number; dropped_unreported: number }>(
        'SELECT next_seq, dropped_unreported FROM kw_emitter',
      )
      .one();
    this.#seq = row.next_seq;
    this.#reservedUntil = this.#seq;
    this.#droppedUnreported = row.dropped_unreported;
    scheduler.on(OUTBOX_TIMER, () => this.retryOutbox());
  }

  /** Records one decision. Synchronous, never throws, never waits. */
  emit<P extends Pattern>(input: DecisionInput<P>): void {
    if (!this.enabled) return;
    try {
      if (this.#seq >= this.#reservedUntil) this.#reserve();
      const e = {
        v: 1,
        id: `${this.emitterId}:${this.#seq++}`,
        ts: Date.now(),
        count: 1,
        ...input,
      } as DecisionEvent;
      this.#buffer.push(e);
      this.#identity = input;
      if (this.#buffer.length >= this.#o.flushEvents) this.#flushSoon(0);
      else this.#flushSoon(this.#o.flushMs);
    } catch (err) {
      // Telemetry never breaks a pattern: count it and move on.
      this.#addDropped(1);
      console.error('keywarden: emit failed', err);
    }
  }

  #reserve(): void {
    this.#reservedUntil = this.#seq + SEQ_BLOCK;
    this.ctx.storage.sql.exec('UPDATE kw_emitter SET next_seq = ?', this.#reservedUntil);
  }

  #flushSoon(delayMs: number): void {
    if (delayMs === 0) {
      if (this.#timer !== null) clearTimeout(this.#timer);
      this.#timer = null;
      this.ctx.waitUntil(this.flush());
      return;
    }
    if (this.#timer !== null) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.ctx.waitUntil(this.flush());
    }, delayMs);
  }

  #getSink(): EventSink {
    this.#sink ??= this.#o.sink();
    return this.#sink;
  }

  /** Sends what is buffered now. Resolves when it is delivered or safely in the outbox. */
  async flush(): Promise<void> {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const batch = this.#buffer;
    if (batch.length === 0) return;
    this.#buffer = [];
    if (this.#inFlight >= this.#o.maxInFlight) {
      this.#toOutbox(batch);
      return;
    }
    this.#inFlight++;
    const delivery = this.#deliver(batch).then(
      () => this.#reportDropped(),
      (err) => {
        console.warn(
          `keywarden: telemetry batch of ${batch.length} not delivered, kept in the outbox`,
          String(err),
        );
        this.#toOutbox(batch);
      },
    );
    this.#deliveries.add(delivery);
    try {
      await delivery;
    } finally {
      this.#deliveries.delete(delivery);
      this.#inFlight--;
    }
  }

  /** Flushes and waits for every delivery under way: all emitted so far is delivered or in the outbox. */
  async drain(): Promise<void> {
    await this.flush();
    while (this.#deliveries.size > 0) await Promise.all([...this.#deliveries]);
  }

  async #deliver(batch: DecisionEvent[]): Promise<void> {
    const result = await this.#getSink().ingest(batch);
    // The collector refused these for good (a bug in a pattern): retrying cannot help. Count them.
    if (result.rejected.length > 0) {
      this.#addDropped(result.rejected.length);
      console.error('keywarden: collector rejected events', result.rejected.slice(0, 3));
    }
    this.#sent += batch.length - result.rejected.length;
  }

  #toOutbox(batch: DecisionEvent[]): void {
    const sql = this.ctx.storage.sql;
    const max = this.#o.outboxMaxEvents;
    if (batch.length > max) {
      this.#addDropped(batch.length - max);
      batch = batch.slice(batch.length - max);
    }
    // Make room by dropping the oldest batches: recent decisions matter most to the on-call.
    let held = sql.exec<{ n: number | null }>('SELECT sum(n) AS n FROM kw_outbox').one().n ?? 0;
    while (held + batch.length > max) {
      const oldest = sql
        .exec<{ seq: number; n: number }>('SELECT seq, n FROM kw_outbox ORDER BY seq LIMIT 1')
        .one();
      sql.exec('DELETE FROM kw_outbox WHERE seq = ?', oldest.seq);
      held -= oldest.n;
      this.#addDropped(oldest.n);
    }
    sql.exec('INSERT INTO kw_outbox (events, n) VALUES (?, ?)', JSON.stringify(batch), batch.length);
    if (this.scheduler.next(OUTBOX_TIMER, 'retry') === null) {
      this.scheduler.schedule(OUTBOX_TIMER, 'retry', Date.now() + this.#backoff(0));
    }
  }

  #backoff(attempt: number): number {
    const ceiling = Math.min(this.#o.retryCapMs, this.#o.retryBaseMs * 2 ** attempt);
    return Math.floor(Math.random() * ceiling) + 1;
  }

  /** The outbox timer: sends stored batches oldest first; on the first failure, backs off. */
  async retryOutbox(): Promise<void> {
    const sql = this.ctx.storage.sql;
    const rows = sql
      .exec<{ seq: number; events: string; attempts: number }>(
        'SELECT seq, events, attempts FROM kw_outbox ORDER BY seq',
      )
      .toArray();
    for (const row of rows) {
      try {
        await this.#deliver(JSON.parse(row.events) as DecisionEvent[]);
        sql.exec('DELETE FROM kw_outbox WHERE seq = ?', row.seq);
      } catch (err) {
        const attempts = row.attempts + 1;
        sql.exec('UPDATE kw_outbox SET attempts = ? WHERE seq = ?', attempts, row.seq);
        this.scheduler.schedule(OUTBOX_TIMER, 'retry', Date.now() + this.#backoff(attempts));
        console.warn(`keywarden: outbox retry ${attempts} failed`, String(err));
        return;
      }
    }
    this.#reportDropped();
    await this.flush();
  }

  #addDropped(n: number): void {
    this.#droppedUnreported += n;
    this.ctx.storage.sql.exec(
      'UPDATE kw_emitter SET dropped_unreported = dropped_unreported + ?, dropped_total = dropped_total + ?',
      n,
      n,
    );
  }

  /** Once delivery works again, tells the collector how many events were lost, as an event. */
  #reportDropped(): void {
    const n = this.#droppedUnreported;
    if (n === 0 || this.#pendingOutbox() > 0) return;
    this.#droppedUnreported = 0;
    this.ctx.storage.sql.exec('UPDATE kw_emitter SET dropped_unreported = 0');
    this.emit({
      pattern: 'telemetry',
      decision: 'dropped',
      ns: this.#identity?.ns ?? 'keywarden.telemetry',
      key: this.#identity?.key ?? this.emitterId,
      value: n,
    });
  }

  #pendingOutbox(): number {
    return this.ctx.storage.sql.exec<{ n: number }>('SELECT count(*) AS n FROM kw_outbox').one().n;
  }

  stats(): EmitterStats {
    const sql = this.ctx.storage.sql;
    const o = sql
      .exec<{ b: number; n: number | null }>('SELECT count(*) AS b, sum(n) AS n FROM kw_outbox')
      .one();
    const d = sql
      .exec<{ u: number; t: number }>('SELECT dropped_unreported AS u, dropped_total AS t FROM kw_emitter')
      .one();
    return {
      emitterId: this.emitterId,
      nextSeq: this.#seq,
      buffered: this.#buffer.length,
      inFlight: this.#inFlight,
      outboxBatches: o.b,
      outboxEvents: o.n ?? 0,
      sent: this.#sent,
      droppedUnreported: d.u,
      droppedTotal: d.t,
      enabled: this.enabled,
    };
  }
}
