// Hot keys over sliding windows, per namespace, in bounded memory whatever the number of keys.
//
// Time is cut into buckets (two tiers: 5 s buckets for windows up to 15 min, 1 min buckets up to a
// day). The open bucket of each tier is a HeavyHitters sketch; when a bucket closes it is reduced to
// a summary — its named top keys with their bounds, the bound every unnamed key stays under, and its
// total — kept in memory (short tier) and in SQLite (both tiers). A window's answer unions the
// summaries' candidates and adds up each one's bounds. That union misses no key whose share of the
// window exceeds 1/capacity: such a key exceeds that share in at least one bucket, where it is named.
//
// Sketches are derived state: after a restart an open bucket is rebuilt from the flushed rollups, and
// the journal replay adds the rest, so they need no write per flush. An event that arrives after its
// bucket closed (an outbox retry, a slow producer) marks the bucket; once the rollups hold it, the
// bucket's summary is rebuilt from them, so late events count where they belong.
import { HeavyHitters } from './sketch';

/** `graceMs`: a bucket stays open this long after it ends, for events that arrive a little late. */
export type Tier = {
  name: 'instant' | 'short' | 'long';
  bucketMs: number;
  keepMs: number;
  graceMs: number;
  /** closed summaries this recent stay in memory (queried often); older ones are read from SQLite */
  memoryMs: number;
};

export const TIERS: readonly Tier[] = [
  // 1 s buckets: a key that turns hot tops a 10 s window as soon as exact counts would.
  { name: 'instant', bucketMs: 1_000, keepMs: 2 * 60_000, graceMs: 3_000, memoryMs: 2 * 60_000 },
  { name: 'short', bucketMs: 5_000, keepMs: 15 * 60_000, graceMs: 10_000, memoryMs: 15 * 60_000 },
  { name: 'long', bucketMs: 60_000, keepMs: 24 * 3600_000, graceMs: 10_000, memoryMs: 3600_000 },
];

/** Keys a summary names; with COUNTERS counters, every error is ≤ N / COUNTERS. */
export const SKETCH_CAPACITY = 64;
export const SKETCH_COUNTERS = 1024;

/**
 * What a sketch counts: a namespace, or one pattern or decision within it (so filtered hot-key
 * queries are answered from sketches too). A namespace alone is its own scope; a narrower scope is
 * marked by a leading U+0001 and JSON, which no namespace scope can be mistaken for.
 */
export function hotScope(ns: string, pattern?: string, decision?: string): string | null {
  if (ns.startsWith('\u0001')) return null;
  if (pattern === undefined) return decision === undefined ? ns : null;
  return `\u0001${JSON.stringify(decision === undefined ? [ns, pattern] : [ns, pattern, decision])}`;
}

export function parseHotScope(scope: string): { ns: string; pattern?: string; decision?: string } {
  if (!scope.startsWith('\u0001')) return { ns: scope };
  const [ns, pattern, decision] = JSON.parse(scope.slice(1)) as [string, string, string | undefined];
  return decision === undefined ? { ns, pattern } : { ns, pattern, decision };
}

/** The scopes one rollup row counts in: its namespace, its pattern, its decision. */
export function scopesOf(ns: string, pattern: string, decision: string): string[] {
  return ns.startsWith('\u0001')
    ? []
    : [ns, `\u0001${JSON.stringify([ns, pattern])}`, `\u0001${JSON.stringify([ns, pattern, decision])}`];
}

export type Summary = {
  t: number;
  total: number;
  /** true count of any key not named here is at most this */
  unnamedBound: number;
  keys: { key: string; count: number; error: number }[];
};

export type HotCandidate = { key: string; count: number; error: number };

/** Where summaries of closed buckets are kept, and how an open bucket is rebuilt after a restart. */
export interface SummaryStore {
  saveSummary(tier: Tier['name'], ns: string, s: Summary): void;
  loadSummaries(tier: Tier['name'], ns: string, from: number, to: number): Summary[];
  /** Per-key counts of a scope already flushed for [from, to) (the tier's rollups: seconds or minutes). */
  flushedCounts(
    tier: Tier['name'],
    scope: string,
    from: number,
    to: number,
  ): { key: string; count: number }[];
  /** Scopes with flushed events at or after `from`. */
  scopesSince(tier: Tier['name'], from: number): string[];
}

/** One tier of one scope: how per-scope state of each tier is keyed. */
function tierScope(tier: Tier, ns: string): string {
  return `${tier.name}\u0000${ns}`;
}

type Open = { tier: Tier; ns: string; t: number; sketch: HeavyHitters };

export function summarize(t: number, sketch: HeavyHitters): Summary {
  const keys = sketch.top(SKETCH_CAPACITY);
  const full = keys.length >= SKETCH_CAPACITY;
  // The named keys are the largest counters, so an unnamed key is under the smallest named count.
  const unnamedBound = full ? Math.min(...keys.map((k) => k.count)) : sketch.absentBound();
  return { t, total: sketch.total(), unnamedBound, keys };
}

/**
 * Unions summaries: each candidate's count and error add up its bound in every bucket (named: its
 * own bounds; unnamed: the bucket's unnamedBound, with that much error).
 */
export function unionSummaries(summaries: readonly Summary[]): { total: number; keys: HotCandidate[] } {
  const names = new Set<string>();
  let total = 0;
  for (const s of summaries) {
    total += s.total;
    for (const k of s.keys) names.add(k.key);
  }
  const keys: HotCandidate[] = [];
  const lookups = summaries.map((s) => new Map(s.keys.map((k) => [k.key, k])));
  for (const key of names) {
    let count = 0;
    let error = 0;
    summaries.forEach((s, i) => {
      const k = lookups[i]!.get(key);
      if (k) {
        count += k.count;
        error += k.error;
      } else {
        count += s.unnamedBound;
        error += s.unnamedBound;
      }
    });
    keys.push({ key, count, error });
  }
  keys.sort((a, b) => b.count - a.count || a.error - b.error || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { total, keys };
}

export class HotWindows {
  /** open buckets by `${tier}\0${ns}\0${t}` */
  #open = new Map<string, Open>();
  /** the bucket each scope last counted in, per tier (a cache over #open; cleared when one closes) */
  #current = new Map<string, (Open | undefined)[]>();
  /**
   * Closed summaries kept in memory, by `${tier}\0${ns}`, oldest first (loaded once): every summary
   * of that tier and scope with `t ≥ from` is in `list`; older ones are read from SQLite.
   */
  #recent = new Map<string, { tier: Tier; list: Summary[]; from: number }>();
  /** named keys over all in-memory summaries, held under `maxRecentKeys` */
  #recentKeys = 0;
  /** distinct keys of each (tier, scope)'s last closed bucket: the size of its next sketch */
  #lastKeys = new Map<string, number>();
  /** closed buckets that late events touched, to re-summarize from the rollups */
  #stale = new Map<string, { tier: Tier; ns: string; t: number }>();
  /** events that arrived after their bucket closed (counted again via the rollups) */
  late = 0;

  /**
   * `maxRecentKeys`: the named keys all in-memory summaries may hold together. Memory grows with
   * scopes (namespaces × patterns × decisions) as well as time; past the budget the oldest
   * summaries are read from SQLite instead (about 70 bytes a key: 100,000 is about 7 MB).
   */
  constructor(
    private readonly store: SummaryStore,
    private readonly now: () => number = Date.now,
    private readonly maxRecentKeys = 100_000,
  ) {}

  /**
   * After a restart: reopens every bucket still within its grace from the flushed rollups (the
   * journal replay that follows adds what was not flushed).
   */
  restore(now = this.now()): void {
    for (const tier of TIERS) {
      const first = now - (now % tier.bucketMs) - tier.bucketMs - tier.graceMs;
      const from = first - (first % tier.bucketMs);
      for (const ns of this.store.scopesSince(tier.name, from)) {
        for (let t = from; t <= now; t += tier.bucketMs) {
          if (t + tier.bucketMs + tier.graceMs >= now) this.#openBucket(tier, ns, t);
        }
      }
    }
  }

  /**
   * Counts a flushed rollup row in each of its scopes (`scopesOf`): the key is hashed once for all
   * of them, and each scope's current bucket per tier is one array read away.
   */
  add(scopes: readonly string[], key: string, ts: number, count: number): void {
    const now = this.now();
    const { lo, hi } = HeavyHitters.fingerprint(key);
    for (let i = 0; i < TIERS.length; i++) {
      const tier = TIERS[i]!;
      const t = ts - (ts % tier.bucketMs);
      if (t + tier.bucketMs + tier.graceMs < now) {
        if (i === 0) this.late += count;
        if (t >= now - tier.keepMs) {
          for (const ns of scopes) this.#stale.set(`${tier.name}\u0000${ns}\u0000${t}`, { tier, ns, t });
        }
        continue;
      }
      for (const ns of scopes) {
        let current = this.#current.get(ns);
        if (current === undefined) {
          current = new Array<Open | undefined>(TIERS.length);
          this.#current.set(ns, current);
        }
        let open = current[i];
        if (open === undefined || open.t !== t) {
          open = this.#openBucket(tier, ns, t);
          current[i] = open;
        }
        open.sketch.addFingerprinted(key, count, lo, hi);
      }
    }
  }

  #openBucket(tier: Tier, ns: string, t: number): Open {
    const id = `${tier.name}\u0000${ns}\u0000${t}`;
    let open = this.#open.get(id);
    if (!open) {
      // Sized like this scope's last bucket of the tier: a busy scope skips the doublings.
      const sketch = new HeavyHitters(
        SKETCH_CAPACITY,
        SKETCH_COUNTERS,
        this.#lastKeys.get(tierScope(tier, ns)),
      );
      // After a restart the bucket may already hold flushed events: count them first.
      for (const r of this.store.flushedCounts(tier.name, ns, t, t + tier.bucketMs))
        sketch.add(r.key, r.count);
      open = { tier, ns, t, sketch };
      this.#open.set(id, open);
    }
    return open;
  }

  /**
   * Closes the buckets past their grace (summarize, keep, persist, drop the sketch) and rebuilds
   * the summaries late events touched. Call it after the rollups are flushed.
   */
  close(now = this.now()): number {
    let closed = 0;
    for (const [id, open] of this.#open) {
      if (open.t + open.tier.bucketMs + open.tier.graceMs >= now) continue;
      this.#lastKeys.set(tierScope(open.tier, open.ns), open.sketch.distinct());
      this.#keep(open.tier, open.ns, summarize(open.t, open.sketch), now);
      this.#open.delete(id);
      closed++;
    }
    if (closed > 0) this.#current.clear();
    for (const { tier, ns, t } of this.#stale.values()) {
      const sketch = new HeavyHitters(SKETCH_CAPACITY, SKETCH_COUNTERS);
      for (const r of this.store.flushedCounts(tier.name, ns, t, t + tier.bucketMs))
        sketch.add(r.key, r.count);
      this.#keep(tier, ns, summarize(t, sketch), now);
    }
    this.#stale.clear();
    // Keep in memory only what each tier serves.
    for (const r of this.#recent.values()) {
      const oldest = now - r.tier.memoryMs;
      while (r.list.length > 0 && r.list[0]!.t < oldest) this.#recentKeys -= r.list.shift()!.keys.length;
      if (r.from < oldest) r.from = oldest;
    }
    return closed;
  }

  #keep(tier: Tier, ns: string, summary: Summary, now: number): void {
    this.store.saveSummary(tier.name, ns, summary);
    if (summary.t < now - tier.memoryMs) return;
    const r = this.#recentFor(tier, ns, now);
    if (summary.t < r.from) return; // past what memory holds of this scope: SQLite has it
    // Mostly the newest; a late bucket's summary replaces its old one in place.
    let i = r.list.length;
    while (i > 0 && r.list[i - 1]!.t > summary.t) i--;
    if (i > 0 && r.list[i - 1]!.t === summary.t) {
      this.#recentKeys -= r.list[i - 1]!.keys.length;
      r.list[i - 1] = summary;
    } else r.list.splice(i, 0, summary);
    this.#recentKeys += summary.keys.length;
    this.#trim();
  }

  /** Over budget: drops the oldest summaries in memory, whichever tier or scope (down to 90%). */
  #trim(): void {
    if (this.#recentKeys <= this.maxRecentKeys) return;
    const target = this.maxRecentKeys * 0.9;
    while (this.#recentKeys > target) {
      let victim: { list: Summary[]; from: number } | undefined;
      for (const r of this.#recent.values()) {
        if (r.list.length > 0 && (victim === undefined || r.list[0]!.t < victim.list[0]!.t)) victim = r;
      }
      if (victim === undefined) return;
      const dropped = victim.list.shift()!;
      this.#recentKeys -= dropped.keys.length;
      victim.from = dropped.t + 1;
    }
  }

  /** The tier that answers a window, or null when only the exact rollups reach that far. */
  static tierFor(windowSec: number): Tier | null {
    return TIERS.find((t) => windowSec * 1000 <= t.keepMs) ?? null;
  }

  /**
   * Candidates for the window ending now: buckets whose start is within it (so the window is
   * rounded up to whole buckets of its tier).
   */
  query(
    ns: string,
    windowSec: number,
    now = this.now(),
  ): { total: number; keys: HotCandidate[]; tier: Tier } | null {
    const tier = HotWindows.tierFor(windowSec);
    if (!tier) return null;
    const from = now - (now % tier.bucketMs) - windowSec * 1000 + tier.bucketMs;
    const summaries: Summary[] = [];
    const openTimes = new Set<number>();
    for (const open of this.#open.values()) {
      if (open.tier !== tier || open.ns !== ns || open.t < from) continue;
      summaries.push(summarize(open.t, open.sketch));
      openTimes.add(open.t);
    }
    const recent = this.#recentFor(tier, ns, now);
    const inMemoryFrom = Math.max(now - tier.memoryMs, recent.from);
    const closed = recent.list.filter((s) => s.t >= Math.max(from, inMemoryFrom));
    if (from < inMemoryFrom) closed.push(...this.store.loadSummaries(tier.name, ns, from, inMemoryFrom - 1));
    for (const s of closed) if (!openTimes.has(s.t)) summaries.push(s);
    return { ...unionSummaries(summaries), tier };
  }

  /** A tier's recent summaries of `ns`; after a restart they come back from SQLite, once. */
  #recentFor(tier: Tier, ns: string, now: number): { list: Summary[]; from: number } {
    const id = tierScope(tier, ns);
    let r = this.#recent.get(id);
    if (!r) {
      const from = now - tier.memoryMs;
      r = { tier, list: this.store.loadSummaries(tier.name, ns, from, now), from };
      this.#recent.set(id, r);
      for (const s of r.list) this.#recentKeys += s.keys.length;
      this.#trim();
    }
    return r;
  }

  stats(): {
    openSketches: number;
    recentSummaries: number;
    recentKeys: number;
    late: number;
    bytes: number;
  } {
    let recentSummaries = 0;
    for (const r of this.#recent.values()) recentSummaries += r.list.length;
    let bytes = 0;
    for (const o of this.#open.values()) bytes += o.sketch.byteSize();
    return {
      openSketches: this.#open.size,
      recentSummaries,
      recentKeys: this.#recentKeys,
      late: this.late,
      bytes,
    };
  }
}
