// One collector shard: owns the keys that hash to it. Accepted events are journaled (one row per
// ingest call, so the answer goes out only once they are durable), aggregated in memory, and
// folded into the rollup tables in small set-based flushes that cut the journal in the same
// transaction. A restart replays the journal: nothing accepted is lost or counted twice.
import { DurableObject } from 'cloudflare:workers';
import { AnalyticsWriter } from './ae-writer';
import { toDataPoints } from './analytics';
import type { DecisionEvent } from './contract';
import { emptyRanges, markSeen, type SeenRanges } from './dedupe';
import { HotWindows, hotScope, scopesOf } from './hot-windows';
import type { DecisionTotal, SeriesPoint, TrailEvent } from './query/types';
import { RollupBuffer } from './rollups';
import { type EmitterState, RETENTION, RollupStore, type ShardHotKeysQuery } from './store';

/** Flush when this many rollup rows or trail events are waiting, or after FLUSH_DELAY_MS. */
const FLUSH_ROWS = 5_000;
const FLUSH_DELAY_MS = 1_000;
/** Retention and the AE backlog run on the alarm this often while the shard holds data. */
const HOUSEKEEPING_MS = 60_000;

type Emitter = SeenRanges & { lastSeen: number };

export type ShardIngestResult = { accepted: number; duplicates: number };

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
};

export class CollectorShard extends DurableObject<Env> {
  #store!: RollupStore;
  #hot!: HotWindows;
  #rollups = new RollupBuffer();
  #trail: TrailEvent[] = [];
  #emitters = new Map<string, Emitter>();
  #dirtyEmitters = new Set<string>();
  #journalUpTo = 0;
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
      for (const e of this.#store.emitters()) {
        this.#emitters.set(e.emitter, { floor: e.floor, ranges: e.ranges, lastSeen: e.lastSeen });
      }
      for (const row of this.#store.journal()) {
        // The journal holds accepted events only; they count as accepted until the flush moves them.
        for (const e of JSON.parse(row.events) as DecisionEvent[]) if (this.#admit(e)) this.#accepted++;
        this.#journalUpTo = row.seq;
      }
      if ((await ctx.storage.getAlarm()) === null) await ctx.storage.setAlarm(Date.now() + HOUSEKEEPING_MS);
    });
  }

  /** Takes a batch of valid events (a JSON array, validated by the caller) that route here. */
  async ingest(eventsJson: string): Promise<ShardIngestResult> {
    const events = JSON.parse(eventsJson) as DecisionEvent[];
    const now = Date.now();
    const accepted: DecisionEvent[] = [];
    let oldest = now;
    for (const e of events) {
      if (this.#admit(e)) {
        accepted.push(e);
        if (e.ts < oldest) oldest = e.ts;
      }
    }
    const duplicates = events.length - accepted.length;
    this.#duplicates += duplicates;
    this.#lastIngestAt = now;
    if (accepted.length > 0) {
      this.#accepted += accepted.length;
      this.#lagMs = now - oldest;
      this.#journalUpTo = this.#store.appendJournal(duplicates === 0 ? eventsJson : JSON.stringify(accepted));
      this.#ae.enqueue(toDataPoints(accepted));
    }
    this.#ae.drain();
    if (this.#rollups.size >= FLUSH_ROWS || this.#trail.length >= FLUSH_ROWS) this.flush();
    else this.#scheduleFlush();
    return { accepted: accepted.length, duplicates };
  }

  /** Dedupes one event and, when new, folds it into the in-memory aggregates. */
  #admit(e: DecisionEvent): boolean {
    const colon = e.id.lastIndexOf(':');
    const emitterId = e.id.slice(0, colon);
    const seq = Number(e.id.slice(colon + 1));
    let emitter = this.#emitters.get(emitterId);
    if (!emitter) {
      emitter = { ...emptyRanges(), lastSeen: 0 };
      this.#emitters.set(emitterId, emitter);
    }
    if (!markSeen(emitter, seq)) return false;
    if (e.ts > emitter.lastSeen) emitter.lastSeen = e.ts;
    this.#dirtyEmitters.add(emitterId);
    this.#rollups.add(e);
    if (e.requestId !== undefined) this.#trail.push(e as TrailEvent);
    return true;
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
    if (this.#journalUpTo === 0 && this.#dirtyEmitters.size === 0) {
      this.#hot.close();
      return;
    }
    const emitters: EmitterState[] = [];
    for (const id of this.#dirtyEmitters) {
      const e = this.#emitters.get(id)!;
      emitters.push({ emitter: id, floor: e.floor, ranges: e.ranges, lastSeen: e.lastSeen });
    }
    const flush = {
      rows: this.#rollups.drain(),
      trail: this.#trail,
      emitters,
      journalUpTo: this.#journalUpTo,
    };
    this.#trail = [];
    this.#dirtyEmitters.clear();
    this.#journalUpTo = 0;
    this.ctx.storage.transactionSync(() => {
      // The sketches take the flushed rows, not each event: a hot key costs one update a second,
      // however many events it had, and queries flush first, so they still see everything. Before
      // the write: a bucket that opens now rebuilds from what was flushed before these rows.
      for (const r of flush.rows) {
        for (const scope of scopesOf(r.ns, r.pattern, r.decision)) this.#hot.add(scope, r.key, r.t, r.count);
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
  }

  override async alarm(): Promise<void> {
    this.flush();
    this.ctx.storage.transactionSync(() => this.#hot.close());
    const now = Date.now();
    this.#store.prune(now);
    // Forget dedupe state the store just forgot, so memory follows retention too.
    for (const [id, e] of this.#emitters) {
      if (e.lastSeen < now - RETENTION.emitterMs && !this.#dirtyEmitters.has(id)) this.#emitters.delete(id);
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
    this.flush();
    const scope = q.exact ? null : hotScope(q.ns, q.pattern, q.decision);
    const r = scope === null ? null : this.#hot.query(scope, q.windowSec);
    if (r) return { total: r.total, exact: false, keys: r.keys.slice(0, q.limit) };
    const exact = this.#store.hotKeys(q);
    return { total: exact.total, exact: true, keys: exact.keys.map((k) => ({ ...k, error: 0 })) };
  }

  series(q: { ns: string; key: string; from: number; windowSec: number; stepMs: number }): SeriesPoint[] {
    this.flush();
    return this.#store.series(q);
  }

  totals(q: { from: number; windowSec: number; ns?: string }): DecisionTotal[] {
    this.flush();
    return this.#store.totals(q);
  }

  keyTimeCounts(q: { ns: string; from: number; windowSec: number; stepMs: number }) {
    this.flush();
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
    };
  }
}
