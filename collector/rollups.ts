// Per-key rollups aggregated in memory between flushes: one row per (ns, key, pattern, decision,
// second), however many events land in it. The store upserts them in one statement per flush, and
// each row becomes one Analytics Engine data point (analytics.ts): a row also keeps apart what a
// point must not mix — events with and without a value or a duration, a split key's shard and
// epoch, events that have their own point — which the store's upsert then adds up.
import { type DecisionEvent, hasOwnPoint } from './contract';
import { rowTime, type WireGroup } from './shard-batch';

export type RollupRow = {
  ns: string;
  key: string;
  pattern: string;
  decision: string;
  /** bucket start, ms since epoch, a whole second */
  t: number;
  count: number;
  /** sum, min, max and number of events of `value`, for those events that carry one */
  vsum: number;
  vmin: number | null;
  vmax: number | null;
  vn: number;
  /** sum of durationMs, and how many events carried one */
  dsum: number;
  dn: number;
  /** the split key's shard (-1: not split) and its epoch */
  shard: number;
  epoch: number;
  /** events with a requestId or traceId: each has its own data point, so the row writes none */
  own: boolean;
};

export class RollupBuffer {
  /** rows by `${ns}\0${key}`: a key has a handful of rows between flushes, found by a scan */
  #keys = new Map<string, RollupRow[]>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(e: DecisionEvent): void {
    const hasValue = e.value !== undefined;
    const value = e.value ?? 0;
    this.#merge(
      this.#rowsOf(e.ns, e.key),
      e.ns,
      e.key,
      e.pattern,
      e.decision,
      e.ts - (e.ts % 1000),
      e.count,
      value,
      // A coalesced event stands for `count` values whose extremes are min/max.
      hasValue ? (e.min ?? value) : null,
      hasValue ? (e.max ?? value) : null,
      hasValue ? e.count : 0,
      e.durationMs ?? 0,
      e.durationMs !== undefined ? e.count : 0,
      e.shard ?? -1,
      e.epoch ?? 0,
      hasOwnPoint(e),
    );
  }

  /** Folds in one key's rows as the Worker coalesced them (shard-batch.ts) for a unit. */
  addGroup([ns, key, wire]: WireGroup, unitLastTs: number): void {
    const rows = this.#rowsOf(ns, key);
    for (const r of wire) {
      this.#merge(
        rows,
        ns,
        key,
        r[0],
        r[1],
        rowTime(r, unitLastTs),
        r[3],
        r[4],
        r[5],
        r[6],
        r[7],
        r[8],
        r[9],
        r[10] ?? -1,
        r[11] ?? 0,
        false,
      );
    }
  }

  #rowsOf(ns: string, key: string): RollupRow[] {
    const id = `${ns}\u0000${key}`;
    let rows = this.#keys.get(id);
    if (rows === undefined) {
      rows = [];
      this.#keys.set(id, rows);
    }
    return rows;
  }

  #merge(
    rows: RollupRow[],
    ns: string,
    key: string,
    pattern: string,
    decision: string,
    t: number,
    count: number,
    vsum: number,
    vmin: number | null,
    vmax: number | null,
    vn: number,
    dsum: number,
    dn: number,
    shard: number,
    epoch: number,
    own: boolean,
  ): void {
    for (const row of rows) {
      if (
        row.t === t &&
        row.decision === decision &&
        row.pattern === pattern &&
        row.own === own &&
        row.shard === shard &&
        row.epoch === epoch &&
        row.vn > 0 === vn > 0 &&
        row.dn > 0 === dn > 0
      ) {
        addSums(row, count, vsum, vmin, vmax, vn, dsum, dn);
        return;
      }
    }
    rows.push({
      ns,
      key,
      pattern,
      decision,
      t,
      count,
      vsum,
      vmin,
      vmax,
      vn,
      dsum,
      dn,
      shard,
      epoch,
      own,
    });
    this.#size++;
  }

  /** Hands over every row and starts empty. */
  drain(): RollupRow[] {
    const out: RollupRow[] = [];
    for (const rows of this.#keys.values()) for (const r of rows) out.push(r);
    this.#keys = new Map();
    this.#size = 0;
    return out;
  }
}

/** A minute rollup row: the seconds rows of one (ns, key, pattern, decision) and minute, added up. */
export type MinuteRow = Pick<
  RollupRow,
  'ns' | 'key' | 'pattern' | 'decision' | 't' | 'count' | 'vsum' | 'vmin' | 'vmax' | 'vn' | 'dsum' | 'dn'
>;

/**
 * Minute rollups of the open minutes, in memory. A flush hands over its seconds rows; a minute is
 * written once, when it closes (GRACE after its end), as whole rows that replace whatever that
 * minute held. That is one write per (key, decision) and minute instead of an upsert per flush, and
 * it is idempotent: after a restart the open minutes are rebuilt from the seconds (`load`) and
 * written whole again. Rows of a minute already closed (late events) are added to its rows instead.
 */
export class MinuteBuffer {
  static readonly GRACE_MS = 10_000;
  #minutes = new Map<number, Map<string, MinuteRow>>();

  /** Counts seconds rows in their open minutes; returns the rows of minutes already closed. */
  add(rows: readonly RollupRow[], now: number): RollupRow[] {
    const late: RollupRow[] = [];
    for (const r of rows) {
      const m = r.t - (r.t % 60_000);
      let minute = this.#minutes.get(m);
      if (minute === undefined) {
        if (m + 60_000 + MinuteBuffer.GRACE_MS <= now) {
          late.push(r);
          continue;
        }
        minute = new Map();
        this.#minutes.set(m, minute);
      }
      mergeMinute(minute, r, m);
    }
    return late;
  }

  /** Rows rebuilt from the flushed seconds of minutes not yet written (after a restart). */
  load(rows: readonly MinuteRow[]): void {
    for (const r of rows) {
      let minute = this.#minutes.get(r.t);
      if (minute === undefined) {
        minute = new Map();
        this.#minutes.set(r.t, minute);
      }
      mergeMinute(minute, r, r.t);
    }
  }

  /** Takes out the minutes that closed by `now`: their rows, whole. */
  closeDue(now: number): { through: number; rows: MinuteRow[] } | null {
    let through = -1;
    const rows: MinuteRow[] = [];
    for (const [m, minute] of this.#minutes) {
      if (m + 60_000 + MinuteBuffer.GRACE_MS > now) continue;
      for (const r of minute.values()) rows.push(r);
      this.#minutes.delete(m);
      if (m + 60_000 > through) through = m + 60_000;
    }
    return through < 0 ? null : { through, rows };
  }

  /** The open minutes' rows so far (written whole before a query reads the minutes table). */
  open(): MinuteRow[] {
    const rows: MinuteRow[] = [];
    for (const minute of this.#minutes.values()) for (const r of minute.values()) rows.push(r);
    return rows;
  }

  get size(): number {
    let n = 0;
    for (const minute of this.#minutes.values()) n += minute.size;
    return n;
  }
}

function mergeMinute(minute: Map<string, MinuteRow>, r: MinuteRow, m: number): void {
  const id = `${r.ns}\u0000${r.key}\u0000${r.pattern}\u0000${r.decision}`;
  const row = minute.get(id);
  if (row === undefined) {
    minute.set(id, {
      ns: r.ns,
      key: r.key,
      pattern: r.pattern,
      decision: r.decision,
      t: m,
      count: r.count,
      vsum: r.vsum,
      vmin: r.vmin,
      vmax: r.vmax,
      vn: r.vn,
      dsum: r.dsum,
      dn: r.dn,
    });
    return;
  }
  addSums(row, r.count, r.vsum, r.vmin, r.vmax, r.vn, r.dsum, r.dn);
}

/** Adds one row's sums into another's: counts and sums add up, extremes take the outer value. */
function addSums(
  row: MinuteRow,
  count: number,
  vsum: number,
  vmin: number | null,
  vmax: number | null,
  vn: number,
  dsum: number,
  dn: number,
): void {
  row.count += count;
  row.vsum += vsum;
  if (vmin !== null && (row.vmin === null || vmin < row.vmin)) row.vmin = vmin;
  if (vmax !== null && (row.vmax === null || vmax > row.vmax)) row.vmax = vmax;
  row.vn += vn;
  row.dsum += dsum;
  row.dn += dn;
}
