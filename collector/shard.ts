// One collector shard: owns the keys that hash to it. It takes batches the Worker already coalesced
// (shard-batch.ts), dedupes them per emitter, journals them (the calls of one turn share a row, so
// the answer goes out only once they are durable), aggregates them in memory, and folds them into
// the rollup tables in set-based flushes (about once a second) that cut the journal in the same
// transaction. A restart replays the journal: nothing accepted is lost or counted twice.
import { DurableObject } from 'cloudflare:workers';
import { AnalyticsWriter } from './ae-writer';
import { rowPoint, toDataPoint } from './analytics';
import type { DecisionEvent } from './contract';
import { emptyRanges, markIntervals, type Overlap, overlapOf, type SeenRanges } from './dedupe';
import { HotWindows, hotScope, scopesOf } from './hot-windows';
import type { DecisionTotal, SeriesPoint, TrailEvent } from './query/types';
import { MinuteBuffer, RollupBuffer } from './rollups';
import { encodeShardBatch, rowTime, type ShardBatchWire, unitSize, type WireUnit } from './shard-batch';
import { type EmitterState, RETENTION, RollupStore, type ShardHotKeysQuery, tableFor } from './store';

/** Flush when this many rollup rows or trail events are waiting, or after FLUSH_DELAY_MS. */
const FLUSH_ROWS = 5_000;
const FLUSH_DELAY_MS = 1_000;
/** Retention and the AE backlog run on the alarm this often while the shard holds data. */
const HOUSEKEEPING_MS = 60_000;

type Emitter = SeenRanges & { lastSeen: number };

export type ShardIngestResult = { accepted: number; duplicates: number; partial?: string[] };

export type ShardStats = {
  accepted: number;
  duplicates: number;
  journalRows: number;
  pendingRows: number;
  pendingTrail: number;
  emitters: number;
  aePending: number;
  aeWritten: number;
  aeDropped: number;
  /** how far behind real time the newest ingest call's oldest event was, ms */
  lagMs: number;
  lastIngestAt: number | null;
  /** ingest calls per journal write since the shard started (group commit: higher under load) */
  journalCallsPerWrite: number;
  /** hot-key sketches: open ones (bytes), closed summaries in memory and the keys they name */
  sketches: {
    openSketches: number;
    bytes: number;
    recentSummaries: number;
    recentKeys: number;
    late: number;
  };
};

/**
 * The batches of one journal row: a row holds the batches of the calls it grouped. A row written
 * before shard batches existed holds the accepted events themselves, and is read as one batch.
 */
function journaledBatches(json: string): ShardBatchWire[] {
  const row = JSON.parse(json) as ShardBatchWire[] | DecisionEvent[];
  const legacy = row.length > 0 && !Array.isArray(row[0]);
  return legacy ? [JSON.parse(encodeShardBatch(row as DecisionEvent[]))] : (row as ShardBatchWire[]);
}

export class CollectorShard extends DurableObject<Env> {
  #store!: RollupStore;
  #hot!: HotWindows;
  #rollups = new RollupBuffer();
  #minutes = new MinuteBuffer();
  #scopes = new Map<string, string[]>();
  #trail: TrailEvent[] = [];
  #emitters = new Map<string, Emitter>();
  #dirtyEmitters = new Set<string>();
  #journalUpTo = 0;
  #journalQueue: string[] = [];
  #journalWrite: Promise<void> | null = null;
  #groupedCalls = 0;
  #groupWrites = 0;
  #flushTimer: ReturnType<typeof setTimeout> | null = null;
  #ae: AnalyticsWriter;
  #accepted = 0;
  #duplicates = 0;
  #lagMs = 0;
  #lastIngestAt: number | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#ae = new AnalyticsWriter(env.KEYWARDEN_EVENTS);
    // Nothing may be answered before the journal is replayed, or a replayed batch would pass dedupe.
    ctx.blockConcurrencyWhile(async () => {
      this.#store = new RollupStore(ctx.storage.sql);
      this.#hot = new HotWindows(this.#store);
      this.#hot.restore();
      // Before the replay: the journal's events are not in the seconds yet, and go in through it.
      this.#minutes.load(this.#store.unwrittenMinutes(Date.now()));
      for (const e of this.#store.emitters()) {
        this.#emitters.set(e.emitter, { floor: e.floor, ranges: e.ranges, lastSeen: e.lastSeen });
      }
      for (const row of this.#store.journal()) {
        // The journal holds accepted events only; they count as accepted until the flush moves them.
        for (const [units] of journaledBatches(row.events)) {
          for (const u of units) if (this.#admit(u) === 'none') this.#accepted += unitSize(u[2]);
        }
        this.#journalUpTo = row.seq;
      }
      if ((await ctx.storage.getAlarm()) === null) await ctx.storage.setAlarm(Date.now() + HOUSEKEEPING_MS);
    });
  }

  /**
   * Takes a batch of valid events that route here (shard-batch.ts, built by the Worker). Each unit
   * (one emitter's events) is admitted or refused whole; `partial` names the emitters of units this
   * shard had seen in part, which the caller sends again one event per unit.
   */
  async ingest(batch: string): Promise<ShardIngestResult> {
    const now = Date.now();
    const [units, repeated] = JSON.parse(batch) as ShardBatchWire;
    const admitted: WireUnit[] = [];
    let journaled: Promise<void> | undefined;
    const partial: string[] = [];
    let accepted = 0;
    let duplicates = repeated;
    let oldest = now;
    for (const u of units) {
      const n = unitSize(u[2]);
      const verdict = this.#admit(u);
      if (verdict === 'none') {
        admitted.push(u);
        accepted += n;
        for (const g of u[3]) for (const r of g[2]) oldest = Math.min(oldest, rowTime(r, u[1]));
        for (const e of u[4]) if (e.ts < oldest) oldest = e.ts;
      } else if (verdict === 'all') duplicates += n;
      else partial.push(u[0]);
    }
    this.#duplicates += duplicates;
    this.#lastIngestAt = now;
    if (accepted > 0) {
      this.#accepted += accepted;
      this.#lagMs = now - oldest;
      const whole = admitted.length === units.length && repeated === 0;
      journaled = this.#journal(whole ? batch : JSON.stringify([admitted, 0]));
      // Rows get their points when they are flushed, one per (key, decision, second).
      const points: AnalyticsEngineDataPoint[] = [];
      for (const u of admitted) for (const e of u[4]) points.push(toDataPoint(e));
      if (points.length > 0) this.#ae.enqueue(points);
    }
    this.#ae.drain();
    if (this.#rollups.size >= FLUSH_ROWS || this.#trail.length >= FLUSH_ROWS) this.flush();
    else this.#scheduleFlush();
    await journaled;
    return partial.length > 0 ? { accepted, duplicates, partial } : { accepted, duplicates };
  }

  /**
   * Dedupes one unit against what this shard has seen of its emitter and, when it is all new, folds
   * it into the in-memory aggregates. Returns how much of it was seen before.
   */
  #admit(u: WireUnit): Overlap {
    const [emitterId, lastTs, intervals, groups, events] = u;
    let emitter = this.#emitters.get(emitterId);
    if (!emitter) {
      emitter = { ...emptyRanges(), lastSeen: 0 };
      this.#emitters.set(emitterId, emitter);
    }
    const seen = overlapOf(emitter, intervals);
    if (seen !== 'none') return seen;
    markIntervals(emitter, intervals);
    if (lastTs > emitter.lastSeen) emitter.lastSeen = lastTs;
    this.#dirtyEmitters.add(emitterId);
    for (const g of groups) this.#rollups.addGroup(g, lastTs);
    for (const e of events) {
      this.#rollups.add(e);
      if (e.requestId !== undefined) this.#trail.push(e as TrailEvent);
    }
    return 'none';
  }

  /**
   * Group commit: every storage write ends in a commit (about 200 µs here, whatever its size), so
   * the calls that arrive before the next turn share one journal row. Each call's answer waits for
   * it. A flush in between covers what is queued (those events are in the rollups it writes).
   */
  #journal(batch: string): Promise<void> {
    this.#journalQueue.push(batch);
    this.#journalWrite ??= new Promise<void>((resolve, reject) => {
      setTimeout(() => {
        const queued = this.#journalQueue;
        this.#journalQueue = [];
        this.#journalWrite = null;
        try {
          if (queued.length > 0) {
            this.#journalUpTo = this.#store.appendJournal(`[${queued.join(',')}]`);
            this.#groupedCalls += queued.length;
            this.#groupWrites++;
          }
          resolve();
        } catch (err) {
          reject(err);
        }
      }, 0);
    });
    return this.#journalWrite;
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== null) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = null;
      this.flush();
    }, FLUSH_DELAY_MS);
  }

  /** Folds everything in memory into SQLite and cuts the journal, atomically. */
  flush(): void {
    if (this.#flushTimer !== null) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = null;
    }
    const now = Date.now();
    if (this.#journalUpTo === 0 && this.#dirtyEmitters.size === 0) {
      const closed = this.#minutes.closeDue(now);
      this.ctx.storage.transactionSync(() => {
        if (closed) this.#store.writeClosedMinutes(closed);
        this.#hot.close();
      });
      return;
    }
    const emitters: EmitterState[] = [];
    for (const id of this.#dirtyEmitters) {
      const e = this.#emitters.get(id)!;
      emitters.push({ emitter: id, floor: e.floor, ranges: e.ranges, lastSeen: e.lastSeen });
    }
    const rows = this.#rollups.drain();
    const flush = {
      rows,
      lateRows: this.#minutes.add(rows, now),
      closedMinutes: this.#minutes.closeDue(now),
      trail: this.#trail,
      emitters,
      journalUpTo: this.#journalUpTo,
    };
    this.#trail = [];
    this.#journalQueue = [];
    this.#dirtyEmitters.clear();
    this.#journalUpTo = 0;
    this.ctx.storage.transactionSync(() => {
      // The sketches take the flushed rows, not each event: a hot key costs one update a second,
      // however many events it had, and queries flush first, so they still see everything. Before
      // the write: a bucket that opens now rebuilds from what was flushed before these rows.
      for (const r of flush.rows) {
        this.#hot.add(this.#scopesOf(r.ns, r.pattern, r.decision), r.key, r.t, r.count);
      }
      this.#store.write(flush);
      // After the write: late events' buckets are re-summarized from the rollups that now hold them.
      this.#hot.close();
      this.#store.addCounter('accepted', this.#accepted);
      this.#store.addCounter('duplicates', this.#duplicates);
      this.#store.addCounter('ae_dropped', this.#ae.dropped);
    });
    this.#accepted = 0;
    this.#duplicates = 0;
    this.#ae.dropped = 0;
    // Rows' data points go once the rows are durable: one per (key, decision, second).
    const points: AnalyticsEngineDataPoint[] = [];
    for (const r of flush.rows) if (!r.own) points.push(rowPoint(r));
    this.#ae.enqueue(points);
  }

  /**
   * Flushes for a query; one that reads the minutes (windows past an hour) also gets the open
   * minutes, written whole (the close writes them whole again).
   */
  #flushFor(windowSec: number): void {
    this.flush();
    if (tableFor(windowSec).table === 'kw_minutes') this.#store.writeMinutes(this.#minutes.open());
  }

  /** `scopesOf`, remembered: a flush asks it once per rollup row, of a few dozen combinations. */
  #scopesOf(ns: string, pattern: string, decision: string): string[] {
    const id = `${ns}\u0000${pattern}\u0000${decision}`;
    let scopes = this.#scopes.get(id);
    if (scopes === undefined) {
      if (this.#scopes.size >= 10_000) this.#scopes.clear();
      scopes = scopesOf(ns, pattern, decision);
      this.#scopes.set(id, scopes);
    }
    return scopes;
  }

  override async alarm(): Promise<void> {
    this.flush(); // it also closes the sketch buckets that are due
    const now = Date.now();
    this.#store.prune(now);
    // Forget dedupe state the store just forgot, so memory follows retention too (the flush above
    // left no emitter unwritten).
    for (const [id, e] of this.#emitters) {
      if (e.lastSeen < now - RETENTION.emitterMs) this.#emitters.delete(id);
    }
    this.#ae.drain();
    await this.ctx.storage.setAlarm(now + (this.#ae.pending > 0 ? 1_000 : HOUSEKEEPING_MS));
  }

  /**
   * Hot keys of this shard's keys. Windows up to a day come from the sketches (bounded memory, each
   * count with its error bound), per namespace, pattern or decision; longer ones, and a decision
   * asked without its pattern, from the exact rollups.
   */
  hotKeys(q: ShardHotKeysQuery): {
    total: number;
    exact: boolean;
    keys: { key: string; count: number; error: number }[];
  } {
    this.#flushFor(q.windowSec);
    const scope = q.exact ? null : hotScope(q.ns, q.pattern, q.decision);
    const r = scope === null ? null : this.#hot.query(scope, q.windowSec);
    if (r) return { total: r.total, exact: false, keys: r.keys.slice(0, q.limit) };
    const exact = this.#store.hotKeys(q);
    return { total: exact.total, exact: true, keys: exact.keys.map((k) => ({ ...k, error: 0 })) };
  }

  series(q: { ns: string; key: string; from: number; windowSec: number; stepMs: number }): SeriesPoint[] {
    this.#flushFor(q.windowSec);
    return this.#store.series(q);
  }

  totals(q: { from: number; windowSec: number; ns?: string }): DecisionTotal[] {
    this.#flushFor(q.windowSec);
    return this.#store.totals(q);
  }

  keyTimeCounts(q: { ns: string; from: number; windowSec: number; stepMs: number }) {
    this.#flushFor(q.windowSec);
    return this.#store.keyTimeCounts(q);
  }

  lookup(requestId: string): TrailEvent[] {
    this.flush();
    return this.#store.lookup(requestId);
  }

  recentTrail(ns: string, key: string, limit: number): TrailEvent[] {
    this.flush();
    return this.#store.recentTrail(ns, key, limit);
  }

  /** Decisions counted since the shard began: Prometheus counters. */
  decisionTotals() {
    this.flush();
    return this.#store.decisionTotals();
  }

  stats(): ShardStats {
    const counters = this.#store.counters();
    return {
      accepted: (counters.accepted ?? 0) + this.#accepted,
      duplicates: (counters.duplicates ?? 0) + this.#duplicates,
      journalRows: this.ctx.storage.sql.exec<{ n: number }>('SELECT count(*) AS n FROM kw_journal').one().n,
      pendingRows: this.#rollups.size,
      pendingTrail: this.#trail.length,
      emitters: this.#emitters.size,
      aePending: this.#ae.pending,
      aeWritten: this.#ae.written,
      aeDropped: (counters.ae_dropped ?? 0) + this.#ae.dropped,
      lagMs: this.#lagMs,
      lastIngestAt: this.#lastIngestAt,
      journalCallsPerWrite: this.#groupWrites > 0 ? this.#groupedCalls / this.#groupWrites : 0,
      sketches: this.#hot.stats(),
    };
  }
}
