// The local rollup store of one collector shard, in the shard's SQLite. Writes are set-based: one
// `INSERT … SELECT … FROM json_each(?)` per table per flush (a statement per row costs as much per
// row, plus its call). Tables that take a row per key are ordered by time first, so a flush appends
// at the end of the B-tree instead of touching pages all over it (which, once a table outgrows the
// page cache, costs a read and a write per row); reads by key seek per time bucket instead.

import { fnv1a32 } from './hash';
import { parseHotScope, type Summary, type SummaryStore, scopesOf, TIERS } from './hot-windows';
import type { DecisionTotal, SeriesPoint, TrailEvent } from './query/types';
import type { MinuteRow, RollupRow } from './rollups';

export const RETENTION = {
  /** 1 s buckets serve windows up to an hour */
  secondsMs: 60 * 60 * 1000,
  /** 1 min buckets serve windows up to a week */
  minutesMs: 7 * 24 * 60 * 60 * 1000,
  /** the requestId trail */
  trailMs: 24 * 60 * 60 * 1000,
  /** dedupe state of an emitter not heard from in this long is forgotten */
  emitterMs: 7 * 24 * 60 * 60 * 1000,
} as const;

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS kw_journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, events TEXT NOT NULL)`,
  ...['kw_seconds', 'kw_minutes'].flatMap((t) => [
    `CREATE TABLE IF NOT EXISTS ${t} (ns TEXT NOT NULL, key TEXT NOT NULL, pattern TEXT NOT NULL,
      decision TEXT NOT NULL, t INTEGER NOT NULL, count INTEGER NOT NULL, vsum REAL NOT NULL,
      vmin REAL, vmax REAL, vn INTEGER NOT NULL, dsum REAL NOT NULL, dn INTEGER NOT NULL,
      PRIMARY KEY (t, ns, key, pattern, decision)) WITHOUT ROWID`,
  ]),
  // Rows append in ingest order; the lookups go through small integer indexes (hashes, checked
  // against the text), which stay cheap to insert into at any size.
  `CREATE TABLE IF NOT EXISTS kw_trail_events (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL,
    request_hash INTEGER NOT NULL, key_hash INTEGER NOT NULL, request_id TEXT NOT NULL, ns TEXT NOT NULL,
    key TEXT NOT NULL, event TEXT NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS kw_trail_events_by_request ON kw_trail_events (request_hash)`,
  `CREATE INDEX IF NOT EXISTS kw_trail_events_by_key ON kw_trail_events (key_hash, ts)`,
  `CREATE INDEX IF NOT EXISTS kw_trail_events_by_time ON kw_trail_events (ts)`,
  // Layouts before time-first rollups and the appended trail: derived local data, rebuilt as it comes.
  `DROP TABLE IF EXISTS kw_rollup_s`,
  `DROP TABLE IF EXISTS kw_rollup_m`,
  `DROP TABLE IF EXISTS kw_trail`,
  `CREATE TABLE IF NOT EXISTS kw_emitters (emitter TEXT PRIMARY KEY, floor INTEGER NOT NULL,
    ranges TEXT NOT NULL, last_seen INTEGER NOT NULL) WITHOUT ROWID`,
  // Monotonic since the shard began (Prometheus counters), unlike the rollups, which expire.
  `CREATE TABLE IF NOT EXISTS kw_decision_totals (ns TEXT NOT NULL, pattern TEXT NOT NULL, decision TEXT NOT NULL,
    count INTEGER NOT NULL, vsum REAL NOT NULL, PRIMARY KEY (ns, pattern, decision)) WITHOUT ROWID`,
  // Hot-key summaries of closed sketch buckets (hot-windows.ts): derived, small, one per bucket.
  `CREATE TABLE IF NOT EXISTS kw_hot_summaries (tier TEXT NOT NULL, ns TEXT NOT NULL, t INTEGER NOT NULL,
    summary TEXT NOT NULL, PRIMARY KEY (tier, ns, t)) WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS kw_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID`,
  // Positions, not sums: `minutes_through` = every minute before it is written to kw_minutes.
  `CREATE TABLE IF NOT EXISTS kw_marks (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID`,
];

const ROW_COLUMNS = `value->>0 AS ns, value->>1 AS key, value->>2 AS pattern, value->>3 AS decision,
  value->>4 AS t, value->>5 AS count, value->>6 AS vsum, value->>7 AS vmin, value->>8 AS vmax,
  value->>9 AS vn, value->>10 AS dsum, value->>11 AS dn`;

const MERGE = `ON CONFLICT DO UPDATE SET count = count + excluded.count, vsum = vsum + excluded.vsum,
  vmin = min(coalesce(vmin, excluded.vmin), coalesce(excluded.vmin, vmin)),
  vmax = max(coalesce(vmax, excluded.vmax), coalesce(excluded.vmax, vmax)),
  vn = vn + excluded.vn, dsum = dsum + excluded.dsum, dn = dn + excluded.dn`;

const UPSERT_SECONDS = `INSERT INTO kw_seconds (ns, key, pattern, decision, t, count, vsum, vmin, vmax, vn, dsum, dn)
  SELECT ${ROW_COLUMNS} FROM json_each(?) WHERE true ${MERGE}`;

/** Seconds rows (`source`: a table or subquery with their columns) added up into minute rows. */
const minutesOf = (
  source: string,
) => `SELECT ns, key, pattern, decision, t - t % 60000 AS t, sum(count) AS count,
  sum(vsum) AS vsum, min(vmin) AS vmin, max(vmax) AS vmax, sum(vn) AS vn, sum(dsum) AS dsum, sum(dn) AS dn
  FROM ${source} GROUP BY 1, 2, 3, 4, 5`;

const UPSERT_MINUTES = `INSERT INTO kw_minutes (ns, key, pattern, decision, t, count, vsum, vmin, vmax, vn, dsum, dn)
  ${minutesOf(`(SELECT ${ROW_COLUMNS} FROM json_each(?))`)} ${MERGE}`;

const REPLACE_MINUTES = `INSERT OR REPLACE INTO kw_minutes (ns, key, pattern, decision, t, count, vsum, vmin, vmax, vn, dsum, dn)
  SELECT ${ROW_COLUMNS} FROM json_each(?)`;

const UPSERT_TOTALS = `INSERT INTO kw_decision_totals (ns, pattern, decision, count, vsum)
  SELECT value->>0, value->>1, value->>2, value->>3, value->>4 FROM json_each(?) WHERE true
  ON CONFLICT DO UPDATE SET count = count + excluded.count, vsum = vsum + excluded.vsum`;

// Positional arrays: a path lookup by name per column costs more than the insert itself.
const INSERT_TRAIL = `INSERT INTO kw_trail_events (ts, request_hash, key_hash, request_id, ns, key, event)
  SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6 FROM json_each(?)`;

const UPSERT_EMITTERS = `INSERT INTO kw_emitters (emitter, floor, ranges, last_seen)
  SELECT value->>0, value->>1, value->>2, value->>3 FROM json_each(?) WHERE true
  ON CONFLICT DO UPDATE SET floor = excluded.floor, ranges = excluded.ranges, last_seen = excluded.last_seen`;

/** How far ahead of the shard's clock a series looks: producers may be up to 5 minutes ahead. */
const SERIES_FUTURE_MS = 5 * 60_000;

/** A hot-keys question as one shard takes it: `from` is the window's first bucket. */
export type ShardHotKeysQuery = {
  ns: string;
  from: number;
  windowSec: number;
  limit: number;
  pattern?: string;
  decision?: string;
  /** count from the rollups even where sketches could answer */
  exact?: boolean;
};

export type EmitterState = { emitter: string; floor: number; ranges: number[]; lastSeen: number };

export type Flush = {
  /** seconds rows */
  rows: RollupRow[];
  /** minutes that closed, whole (they replace what the minute held), and up to where */
  closedMinutes?: { through: number; rows: MinuteRow[] } | null;
  /** seconds rows of minutes closed before: added to their minute */
  lateRows?: RollupRow[];
  trail: TrailEvent[];
  emitters: EmitterState[];
  journalUpTo: number;
};

/** Which rollup table answers a window: seconds while they are kept, minutes beyond. */
export function tableFor(windowSec: number): { table: string; bucketMs: number } {
  return windowSec * 1000 <= RETENTION.secondsMs
    ? { table: 'kw_seconds', bucketMs: 1000 }
    : { table: 'kw_minutes', bucketMs: 60_000 };
}

export class RollupStore implements SummaryStore {
  constructor(private readonly sql: SqlStorage) {
    for (const stmt of SCHEMA) sql.exec(stmt);
  }

  appendJournal(eventsJson: string): number {
    return this.sql
      .exec<{ seq: number }>('INSERT INTO kw_journal (events) VALUES (?) RETURNING seq', eventsJson)
      .one().seq;
  }

  journal(): { seq: number; events: string }[] {
    return this.sql
      .exec<{ seq: number; events: string }>('SELECT seq, events FROM kw_journal ORDER BY seq')
      .toArray();
  }

  emitters(): EmitterState[] {
    return this.sql
      .exec<{ emitter: string; floor: number; ranges: string; last_seen: number }>(
        'SELECT emitter, floor, ranges, last_seen FROM kw_emitters',
      )
      .toArray()
      .map((r) => ({
        emitter: r.emitter,
        floor: r.floor,
        ranges: JSON.parse(r.ranges),
        lastSeen: r.last_seen,
      }));
  }

  /** Folds a flush into the tables; the caller runs it inside one transaction with the journal cut. */
  write(f: Flush): void {
    if (f.rows.length > 0) {
      this.sql.exec(UPSERT_SECONDS, rowsJson(f.rows));
      // A handful of (ns, pattern, decision) totals: add them up here rather than in SQL.
      const totals = new Map<string, [string, string, string, number, number]>();
      for (const r of f.rows) {
        const id = `${r.ns}\u0000${r.pattern}\u0000${r.decision}`;
        const t = totals.get(id);
        if (t) {
          t[3] += r.count;
          t[4] += r.vsum;
        } else totals.set(id, [r.ns, r.pattern, r.decision, r.count, r.vsum]);
      }
      this.sql.exec(UPSERT_TOTALS, JSON.stringify([...totals.values()]));
    }
    if (f.lateRows && f.lateRows.length > 0) this.sql.exec(UPSERT_MINUTES, rowsJson(f.lateRows));
    if (f.closedMinutes) this.writeClosedMinutes(f.closedMinutes);
    if (f.trail.length > 0) {
      this.sql.exec(
        INSERT_TRAIL,
        JSON.stringify(
          f.trail.map((e) => [
            e.ts,
            fnv1a32(e.requestId),
            keyHash(e.ns, e.key),
            e.requestId,
            e.ns,
            e.key,
            // As text: SQLite re-renders a nested object row by row, which costs more than this.
            JSON.stringify(e),
          ]),
        ),
      );
    }
    if (f.emitters.length > 0) {
      this.sql.exec(
        UPSERT_EMITTERS,
        JSON.stringify(f.emitters.map((e) => [e.emitter, e.floor, JSON.stringify(e.ranges), e.lastSeen])),
      );
    }
    if (f.journalUpTo > 0) this.sql.exec('DELETE FROM kw_journal WHERE seq <= ?', f.journalUpTo);
  }

  /** Minutes that closed: written whole, and marked written (a restart rebuilds only later ones). */
  writeClosedMinutes(closed: { through: number; rows: MinuteRow[] }): void {
    this.writeMinutes(closed.rows);
    this.setMark('minutes_through', closed.through);
  }

  /** Writes minute rows whole: each replaces its (minute, ns, key, pattern, decision) row. */
  writeMinutes(rows: readonly MinuteRow[]): void {
    if (rows.length > 0) this.sql.exec(REPLACE_MINUTES, rowsJson(rows));
  }

  /**
   * The minutes not yet written (from `minutes_through` on), rebuilt from the seconds: after a
   * restart they go back into the shard's MinuteBuffer.
   */
  unwrittenMinutes(now: number): MinuteRow[] {
    // Never written before: the seconds' whole hour may hold minutes of a shard that ran before.
    const from = this.mark('minutes_through') ?? now - RETENTION.secondsMs;
    return this.sql.exec<MinuteRow>(minutesOf('kw_seconds WHERE t >= ?'), from - (from % 60_000)).toArray();
  }

  mark(name: string): number | null {
    const r = this.sql.exec<{ value: number }>('SELECT value FROM kw_marks WHERE name = ?', name).toArray();
    return r.length > 0 ? r[0]!.value : null;
  }

  setMark(name: string, value: number): void {
    this.sql.exec('INSERT OR REPLACE INTO kw_marks (name, value) VALUES (?, ?)', name, value);
  }

  addCounter(name: string, delta: number): void {
    if (delta === 0) return;
    this.sql.exec(
      'INSERT INTO kw_counters (name, value) VALUES (?, ?) ON CONFLICT DO UPDATE SET value = value + excluded.value',
      name,
      delta,
    );
  }

  counters(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.sql.exec<{ name: string; value: number }>('SELECT name, value FROM kw_counters')) {
      out[r.name] = r.value;
    }
    return out;
  }

  decisionTotals(): (DecisionTotal & { valueSum: number })[] {
    return this.sql
      .exec<DecisionTotal & { valueSum: number }>(
        'SELECT ns, pattern, decision, count, vsum AS valueSum FROM kw_decision_totals ORDER BY ns, pattern, decision',
      )
      .toArray();
  }

  saveSummary(tier: string, ns: string, s: Summary): void {
    this.sql.exec(
      'INSERT OR REPLACE INTO kw_hot_summaries (tier, ns, t, summary) VALUES (?, ?, ?, ?)',
      tier,
      ns,
      s.t,
      JSON.stringify(s),
    );
  }

  loadSummaries(tier: string, ns: string, from: number, to: number): Summary[] {
    return this.sql
      .exec<{ summary: string }>(
        'SELECT summary FROM kw_hot_summaries WHERE tier = ? AND ns = ? AND t >= ? AND t <= ? ORDER BY t',
        tier,
        ns,
        from,
        to,
      )
      .toArray()
      .map((r) => JSON.parse(r.summary) as Summary);
  }

  flushedCounts(tier: string, scope: string, from: number, to: number): { key: string; count: number }[] {
    const table = rollupsFor(tier, from);
    const { ns, pattern, decision } = parseHotScope(scope);
    const where = ['t >= ?', 't < ?', 'ns = ?'];
    const args: (string | number)[] = [from, to, ns];
    if (pattern !== undefined) {
      where.push('pattern = ?');
      args.push(pattern);
    }
    if (decision !== undefined) {
      where.push('decision = ?');
      args.push(decision);
    }
    return this.sql
      .exec<{ key: string; count: number }>(
        `SELECT key, sum(count) AS count FROM ${table} WHERE ${where.join(' AND ')} GROUP BY key`,
        ...args,
      )
      .toArray();
  }

  scopesSince(tier: string, from: number): string[] {
    const table = rollupsFor(tier, from);
    const scopes = new Set<string>();
    for (const r of this.sql.exec<{ ns: string; pattern: string; decision: string }>(
      `SELECT DISTINCT ns, pattern, decision FROM ${table} WHERE t >= ?`,
      from,
    )) {
      for (const s of scopesOf(r.ns, r.pattern, r.decision)) scopes.add(s);
    }
    return [...scopes];
  }

  /** Drops what is past retention; returns how many rows went. */
  prune(now: number): number {
    let removed = 0;
    removed += this.sql.exec('DELETE FROM kw_seconds WHERE t < ?', now - RETENTION.secondsMs).rowsWritten;
    removed += this.sql.exec('DELETE FROM kw_minutes WHERE t < ?', now - RETENTION.minutesMs).rowsWritten;
    removed += this.sql.exec('DELETE FROM kw_trail_events WHERE ts < ?', now - RETENTION.trailMs).rowsWritten;
    removed += this.sql.exec(
      'DELETE FROM kw_emitters WHERE last_seen < ?',
      now - RETENTION.emitterMs,
    ).rowsWritten;
    for (const tier of TIERS) {
      removed += this.sql.exec(
        'DELETE FROM kw_hot_summaries WHERE tier = ? AND t < ?',
        tier.name,
        now - tier.keepMs,
      ).rowsWritten;
    }
    return removed;
  }

  hotKeys(q: ShardHotKeysQuery): { total: number; keys: { key: string; count: number }[] } {
    const { table } = tableFor(q.windowSec);
    const where = ['t >= ?', 'ns = ?'];
    const args: (string | number)[] = [q.from, q.ns];
    if (q.pattern !== undefined) {
      where.push('pattern = ?');
      args.push(q.pattern);
    }
    if (q.decision !== undefined) {
      where.push('decision = ?');
      args.push(q.decision);
    }
    const cond = where.join(' AND ');
    const total = this.sql
      .exec<{ n: number | null }>(`SELECT sum(count) AS n FROM ${table} WHERE ${cond}`, ...args)
      .one().n;
    const keys = this.sql
      .exec<{ key: string; count: number }>(
        `SELECT key, sum(count) AS count FROM ${table} WHERE ${cond} GROUP BY key ORDER BY count DESC, key LIMIT ?`,
        ...args,
        q.limit,
      )
      .toArray();
    return { total: total ?? 0, keys };
  }

  /**
   * One key's buckets. The tables are ordered by time first (appends are cheap at any rate), so this
   * seeks (t, ns, key) once per bucket of the window instead of scanning every key's rows.
   */
  series(q: {
    ns: string;
    key: string;
    from: number;
    windowSec: number;
    stepMs: number;
    now?: number;
  }): SeriesPoint[] {
    const { table, bucketMs } = tableFor(q.windowSec);
    const first = q.from + ((bucketMs - (q.from % bucketMs)) % bucketMs);
    // Producers may run up to MAX_FUTURE_MS ahead of this clock.
    const last = Math.max(q.now ?? Date.now(), q.from + q.windowSec * 1000) + SERIES_FUTURE_MS;
    const rows = this.sql.exec<{
      b: number;
      pattern: string;
      decision: string;
      count: number;
      vsum: number;
      vmin: number | null;
      vmax: number | null;
      vn: number;
    }>(
      `WITH RECURSIVE buckets(t) AS (SELECT ?1 UNION ALL SELECT t + ?2 FROM buckets WHERE t + ?2 <= ?3)
       SELECT r.t - r.t % ?4 AS b, pattern, decision, sum(count) AS count, sum(vsum) AS vsum,
         min(vmin) AS vmin, max(vmax) AS vmax, sum(vn) AS vn
       FROM buckets CROSS JOIN ${table} r ON r.t = buckets.t AND r.ns = ?5 AND r.key = ?6
       GROUP BY b, pattern, decision ORDER BY b`,
      first,
      bucketMs,
      last,
      q.stepMs,
      q.ns,
      q.key,
    );
    const points = new Map<number, SeriesPoint>();
    for (const r of rows) {
      let p = points.get(r.b);
      if (!p) {
        p = { t: r.b, count: 0, decisions: {}, value: null };
        points.set(r.b, p);
      }
      p.count += r.count;
      const d = `${r.pattern}.${r.decision}`;
      p.decisions[d] = (p.decisions[d] ?? 0) + r.count;
      if (r.vn > 0) {
        if (!p.value)
          p.value = { sum: 0, min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY, n: 0 };
        p.value.sum += r.vsum;
        p.value.min = Math.min(p.value.min, r.vmin ?? Number.POSITIVE_INFINITY);
        p.value.max = Math.max(p.value.max, r.vmax ?? Number.NEGATIVE_INFINITY);
        p.value.n += r.vn;
      }
    }
    return [...points.values()];
  }

  totals(q: { from: number; windowSec: number; ns?: string }): DecisionTotal[] {
    const { table } = tableFor(q.windowSec);
    const byNs = q.ns === undefined ? '' : ' AND ns = ?';
    const args: (string | number)[] = q.ns === undefined ? [q.from] : [q.from, q.ns];
    return this.sql
      .exec<DecisionTotal>(
        `SELECT ns, pattern, decision, sum(count) AS count FROM ${table} WHERE t >= ?${byNs}
         GROUP BY ns, pattern, decision ORDER BY ns, pattern, decision`,
        ...args,
      )
      .toArray();
  }

  /** Per (time bucket, key) counts, for the heatmap; the caller folds keys into buckets. */
  keyTimeCounts(q: { ns: string; from: number; windowSec: number; stepMs: number }): {
    t: number;
    key: string;
    count: number;
  }[] {
    const { table } = tableFor(q.windowSec);
    return this.sql
      .exec<{ t: number; key: string; count: number }>(
        `SELECT t - t % ?1 AS t, key, sum(count) AS count FROM ${table} WHERE t >= ?2 AND ns = ?3 GROUP BY 1, 2`,
        q.stepMs,
        q.from,
        q.ns,
      )
      .toArray();
  }

  lookup(requestId: string): TrailEvent[] {
    return this.sql
      .exec<{ event: string }>(
        'SELECT event FROM kw_trail_events WHERE request_hash = ? AND request_id = ? ORDER BY ts, seq',
        fnv1a32(requestId),
        requestId,
      )
      .toArray()
      .map((r) => trailEvent(r.event));
  }

  recentTrail(ns: string, key: string, limit: number): TrailEvent[] {
    return this.sql
      .exec<{ event: string }>(
        'SELECT event FROM kw_trail_events WHERE key_hash = ? AND ns = ? AND key = ? ORDER BY ts DESC LIMIT ?',
        keyHash(ns, key),
        ns,
        key,
        limit,
      )
      .toArray()
      .map((r) => trailEvent(r.event));
  }
}

function keyHash(ns: string, key: string): number {
  return fnv1a32(`${ns}\u0000${key}`);
}

/**
 * Where a sketch tier's flushed counts are: the seconds while they are kept (they hold every flushed
 * event at once; a minute is written only when it closes), the minutes before that.
 */
function rollupsFor(tier: string, from: number): string {
  return tier === 'long' && from < Date.now() - RETENTION.secondsMs + 60_000 ? 'kw_minutes' : 'kw_seconds';
}

/** Rollup rows as positional arrays for json_each (a path lookup by name costs more than the insert). */
function rowsJson(rows: readonly MinuteRow[]): string {
  return JSON.stringify(
    rows.map((r) => [
      r.ns,
      r.key,
      r.pattern,
      r.decision,
      r.t,
      r.count,
      r.vsum,
      r.vmin,
      r.vmax,
      r.vn,
      r.dsum,
      r.dn,
    ]),
  );
}

/** A stored event as the trail shows it: the contract version is the storage's business. */
function trailEvent(json: string): TrailEvent {
  const { v: _v, ...event } = JSON.parse(json) as TrailEvent & { v: number };
  return event;
}
