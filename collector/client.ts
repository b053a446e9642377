// The collector as the rest of the Worker sees it: validates events, routes them to shards by a
// stable hash of `ns:key`, and fans queries out and merges the answers. Objects inside this Worker
// use it directly (RPC to the shards); outside Workers go through POST /ingest.
import { type EventSink, type IngestResult, LIMITS, parseEventId, type Rejection } from './contract';
import { fnv1a32, shardOf } from './hash';
import {
  checkDecision,
  checkInt,
  checkKey,
  checkNs,
  checkPattern,
  checkRequestId,
  checkStep,
  checkWindow,
} from './query/checks';
import type {
  DecisionTotal,
  HeatmapQuery,
  HeatmapResult,
  HotKeysQuery,
  HotKeysResult,
  QueryBackend,
  SeriesQuery,
  SeriesResult,
  TotalsQuery,
  TrailEvent,
} from './query/types';
import type { ShardStats } from './shard';
import { ShardBatchBuilder } from './shard-batch';
import { RETENTION, tableFor } from './store';
import { validateEvent } from './validate';

export const DEFAULT_SHARDS = 4;
export const MAX_SHARDS = 256;
/** Events this far ahead of the collector's clock are refused: a skewed producer would poison windows. */
export const MAX_FUTURE_MS = 5 * 60_000;
/** Older events would land outside every retention and the dedupe horizon. */
export const MAX_AGE_MS = 7 * 24 * 3600_000 - 3600_000;

export function shardCount(env: Pick<Env, 'KEYWARDEN_COLLECTOR_SHARDS'>): number {
  const n = Number(env.KEYWARDEN_COLLECTOR_SHARDS ?? DEFAULT_SHARDS);
  return Number.isInteger(n) && n >= 1 && n <= MAX_SHARDS ? n : DEFAULT_SHARDS;
}

/** The first bucket of a window that ends with the current (partial) bucket. */
/** The local store keeps minutes for a week: no window reaches further. */
export const MAX_LOCAL_WINDOW_SEC = RETENTION.minutesMs / 1000;

function checkLocalWindow(now: number, windowSec: number): void {
  checkWindow(now, windowSec, MAX_LOCAL_WINDOW_SEC);
}

export function windowStart(now: number, windowSec: number): number {
  const { bucketMs } = tableFor(windowSec);
  return now - (now % bucketMs) - windowSec * 1000 + bucketMs;
}

export class Collector implements EventSink, QueryBackend {
  readonly name = 'local';
  readonly shards: number;

  constructor(private readonly env: Env) {
    this.shards = shardCount(env);
  }

  shard(i: number) {
    return this.env.COLLECTOR_SHARD.get(this.env.COLLECTOR_SHARD.idFromName(`shard-${i}`));
  }

  #all<T>(f: (s: ReturnType<Collector['shard']>) => Promise<T>): Promise<T[]> {
    return Promise.all(Array.from({ length: this.shards }, (_, i) => f(this.shard(i))));
  }

  /** Validates each event (the valid ones of a mixed batch are kept) and delivers them. */
  async ingest(events: readonly unknown[], now = Date.now()): Promise<IngestResult> {
    const rejected: Rejection[] = [];
    if (events.length > LIMITS.batchEvents) {
      throw new RangeError(`a batch holds at most ${LIMITS.batchEvents} events`);
    }
    const byShard: (ShardBatchBuilder | undefined)[] = new Array(this.shards);
    for (let i = 0; i < events.length; i++) {
      const verdict = validateEvent(events[i]);
      if (!verdict.ok) {
        rejected.push({ index: i, code: verdict.code, message: verdict.message });
        continue;
      }
      const e = verdict.event;
      if (e.ts > now + MAX_FUTURE_MS) {
        rejected.push({ index: i, code: 'clock_skew', message: 'ts is more than 5 minutes in the future' });
        continue;
      }
      if (e.ts < now - MAX_AGE_MS) {
        rejected.push({ index: i, code: 'too_old', message: 'ts is older than the 7-day retention' });
        continue;
      }
      // biome-ignore lint/suspicious/noAssignInExpressions: one lookup per event on the hot path
      (byShard[shardOf(e.ns, e.key, this.shards)] ??= new ShardBatchBuilder()).add(
        e,
        verdict.emitter,
        verdict.seq,
      );
    }
    const results = await Promise.all(byShard.map((b, i) => (b ? this.#deliver(i, b) : null)));
    let accepted = 0;
    let duplicates = 0;
    for (const r of results) {
      accepted += r?.accepted ?? 0;
      duplicates += r?.duplicates ?? 0;
    }
    return { accepted, duplicates, rejected };
  }

  /**
   * Sends one shard its part of a batch. Units the shard had seen in part (a producer that
   * re-batched its retries) go again one event per unit, so each event is admitted or refused alone.
   */
  async #deliver(i: number, batch: ShardBatchBuilder): Promise<{ accepted: number; duplicates: number }> {
    const stub = this.shard(i);
    const r = await stub.ingest(batch.encode());
    if (!r.partial) return r;
    const partial = new Set(r.partial);
    const again = new ShardBatchBuilder(true);
    for (const e of batch.events) {
      const id = parseEventId(e.id)!;
      if (partial.has(id.emitter)) again.add(e, id.emitter, id.seq);
    }
    const r2 = await stub.ingest(again.encode());
    return { accepted: r.accepted + r2.accepted, duplicates: r.duplicates + r2.duplicates };
  }

  /** Each key lives on one shard, so the global top-L is within the shards' top-L: no merge needed. */
  async hotKeys(q: HotKeysQuery): Promise<HotKeysResult> {
    checkNs(q.ns);
    checkLocalWindow(q.now, q.windowSec);
    checkInt('limit', q.limit, 1, 1000);
    checkDecision(q.decision, checkPattern(q.pattern));
    const from = windowStart(q.now, q.windowSec);
    const parts = await this.#all((s) =>
      s.hotKeys({
        ns: q.ns,
        from,
        windowSec: q.windowSec,
        limit: q.limit,
        pattern: q.pattern,
        decision: q.decision,
        exact: q.exact,
      }),
    );
    const keys = parts
      .flatMap((p) => p.keys)
      .sort((a, b) => b.count - a.count || a.error - b.error || cmp(a.key, b.key))
      .slice(0, q.limit);
    return { total: parts.reduce((n, p) => n + p.total, 0), exact: parts.every((p) => p.exact), keys };
  }

  async series(q: SeriesQuery): Promise<SeriesResult> {
    checkNs(q.ns);
    checkKey(q.key);
    checkLocalWindow(q.now, q.windowSec);
    checkStep(q.stepSec, q.windowSec);
    const from = windowStart(q.now, q.windowSec);
    const stepMs = q.stepSec * 1000;
    const points = await this.shard(shardOf(q.ns, q.key, this.shards)).series({
      ns: q.ns,
      key: q.key,
      from: from - (from % stepMs),
      windowSec: q.windowSec,
      stepMs,
    });
    return { points };
  }

  async heatmap(q: HeatmapQuery): Promise<HeatmapResult> {
    checkNs(q.ns);
    checkLocalWindow(q.now, q.windowSec);
    checkStep(q.stepSec, q.windowSec);
    checkInt('buckets', q.buckets, 1, 1000);
    const stepMs = q.stepSec * 1000;
    const start = windowStart(q.now, q.windowSec);
    const from = start - (start % stepMs);
    const times: number[] = [];
    for (let t = from; t <= q.now; t += stepMs) times.push(t);
    const cells = times.map(() =>
      Array.from({ length: q.buckets }, () => ({
        count: 0,
        hottestKey: null as string | null,
        hottestCount: 0,
      })),
    );
    const parts = await this.#all((s) => s.keyTimeCounts({ ns: q.ns, from, windowSec: q.windowSec, stepMs }));
    for (const rows of parts) {
      for (const r of rows) {
        const row = cells[Math.floor((r.t - from) / stepMs)];
        if (!row) continue;
        const cell = row[fnv1a32(r.key) % q.buckets]!;
        cell.count += r.count;
        if (
          r.count > cell.hottestCount ||
          (r.count === cell.hottestCount && r.key < (cell.hottestKey ?? ''))
        ) {
          cell.hottestKey = r.key;
          cell.hottestCount = r.count;
        }
      }
    }
    return { times, cells };
  }

  async totals(q: TotalsQuery): Promise<DecisionTotal[]> {
    if (q.ns !== undefined) checkNs(q.ns);
    checkLocalWindow(q.now, q.windowSec);
    const from = windowStart(q.now, q.windowSec);
    const parts = await this.#all((s) => s.totals({ from, windowSec: q.windowSec, ns: q.ns }));
    // Keys are disjoint across shards but (ns, pattern, decision) is not: add them up.
    const sum = new Map<string, DecisionTotal>();
    for (const t of parts.flat()) {
      const id = `${t.ns}\u0000${t.pattern}\u0000${t.decision}`;
      const prev = sum.get(id);
      if (prev) prev.count += t.count;
      else sum.set(id, { ...t });
    }
    return [...sum.values()].sort((a, b) =>
      a.ns === b.ns
        ? a.pattern === b.pattern
          ? cmp(a.decision, b.decision)
          : cmp(a.pattern, b.pattern)
        : cmp(a.ns, b.ns),
    );
  }

  async lookup(requestId: string): Promise<TrailEvent[]> {
    checkRequestId(requestId);
    const parts = await this.#all((s) => s.lookup(requestId));
    return parts.flat().sort((a, b) => a.ts - b.ts || byEventId(a.id, b.id));
  }

  recentTrail(ns: string, key: string, limit: number): Promise<TrailEvent[]> {
    return this.shard(shardOf(ns, key, this.shards)).recentTrail(ns, key, limit);
  }

  stats(): Promise<ShardStats[]> {
    return this.#all((s) => s.stats());
  }
}

/** Ids of one emitter order by their seq as a number (`x:9` before `x:10`). */
function byEventId(a: string, b: string): number {
  const ia = a.lastIndexOf(':');
  const ib = b.lastIndexOf(':');
  return cmp(a.slice(0, ia), b.slice(0, ib)) || Number(a.slice(ia + 1)) - Number(b.slice(ib + 1));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
