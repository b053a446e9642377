// What the ingest Worker hands one collector shard: the validated events of a batch that route to it,
// coalesced before the RPC. Per emitter (a *unit*) it sends the seqs as intervals and the events as
// rollup rows, one per (ns, key, pattern, decision, second); events with a requestId or traceId go
// whole, since the trail and their own Analytics Engine point need them. A batch of 1,000 Zipf keys
// becomes about 480 rows, so the shard parses, journals and aggregates half as many items, each a
// fraction of an event's size (see bench:ingest).
//
// Dedupe stays exact: a shard admits or refuses a unit whole (its rows cannot be split). A unit it
// has seen in part, which only a producer that re-batches differently can cause, goes back to the
// Worker, which sends those events again as units of one event each (`singletons`).
import { type DecisionEvent, hasOwnPoint, parseEventId } from './contract';
import { emptyRanges, intervalsOf, markSeen, type SeenRanges } from './dedupe';

/**
 * [pattern, decision, t, count, vsum, vmin, vmax, vn, dsum, dn, shard, epoch]. On the wire `t` is
 * whole seconds before the unit's newest second, and shard (-1) and epoch (0) are left off when a
 * key is not split: every character is parsed twice (the shard, and a restart's journal replay).
 */
export type WireRow = [
  string,
  string,
  number,
  number,
  number,
  number | null,
  number | null,
  number,
  number,
  number,
  number?,
  number?,
];

/** A row's bucket from its wire form (see WireRow). */
export function rowTime(r: WireRow, unitLastTs: number): number {
  return unitLastTs - (unitLastTs % 1000) - r[2] * 1000;
}

/** One key's rows: [ns, key, rows]. */
export type WireGroup = [string, string, WireRow[]];

/**
 * One emitter's part of a batch: its id, the newest event time, its seqs as flat inclusive
 * intervals, its rows by key, and its whole events.
 */
export type WireUnit = [string, number, number[], WireGroup[], DecisionEvent[]];

/** [units, duplicates within the batch itself] */
export type ShardBatchWire = [WireUnit[], number];

type Unit = {
  emitter: string;
  seen: SeenRanges;
  lastTs: number;
  /** mostly one: an object emits for its own key */
  groups: WireGroup[];
  /** groups by `${ns}\0${key}`, once a unit has too many to scan (an emitter of many keys) */
  index: Map<string, WireGroup> | null;
  events: DecisionEvent[];
};

const SCAN_GROUPS = 4;

export class ShardBatchBuilder {
  #units = new Map<string, Unit>();
  #singletons: Unit[] = [];
  /** events repeated within the batch: counted as duplicates, sent nowhere */
  duplicates = 0;
  /** every event added but the repeats, kept for the rare resend of a unit the shard saw in part */
  readonly events: DecisionEvent[] = [];

  /** `singletons`: every event its own unit, so a shard can admit or refuse each one. */
  constructor(private readonly singletons = false) {}

  get size(): number {
    return this.events.length;
  }

  /** `emitter` and `seq`: the event's id, split (validateEvent does it). */
  add(e: DecisionEvent, emitter: string, seq: number): void {
    let u = this.singletons ? undefined : this.#units.get(emitter);
    if (u === undefined) {
      u = { emitter, seen: emptyRanges(), lastTs: e.ts, groups: [], index: null, events: [] };
      if (this.singletons) this.#singletons.push(u);
      else this.#units.set(emitter, u);
    }
    if (!markSeen(u.seen, seq)) {
      this.duplicates++;
      return;
    }
    this.events.push(e);
    if (e.ts > u.lastTs) u.lastTs = e.ts;
    if (hasOwnPoint(e)) {
      u.events.push(e);
      return;
    }
    addToRows(groupOf(u, e.ns, e.key)[2], e);
  }

  /** The wire form; empty units (all duplicates) are left out. Rows are rewritten for the wire. */
  #build(): ShardBatchWire {
    const units: WireUnit[] = [];
    for (const u of this.singletons ? this.#singletons : this.#units.values()) {
      if (u.groups.length === 0 && u.events.length === 0) continue;
      const newest = u.lastTs - (u.lastTs % 1000);
      for (const g of u.groups) {
        for (const r of g[2]) {
          r[2] = (newest - r[2]) / 1000;
          if (r[10] === -1 && r[11] === 0) r.length = 10;
        }
      }
      units.push([u.emitter, u.lastTs, intervalsOf(u.seen), u.groups, u.events]);
    }
    return [units, this.duplicates];
  }

  #encoded: string | undefined;

  /** The batch as the shard takes it (built once: further adds are not in it). */
  encode(): string {
    this.#encoded ??= JSON.stringify(this.#build());
    return this.#encoded;
  }
}

function groupOf(u: Unit, ns: string, key: string): WireGroup {
  if (u.index === null) {
    for (const g of u.groups) if (g[1] === key && g[0] === ns) return g;
  } else {
    const g = u.index.get(`${ns}\u0000${key}`);
    if (g !== undefined) return g;
  }
  const g: WireGroup = [ns, key, []];
  u.groups.push(g);
  if (u.index !== null) u.index.set(`${ns}\u0000${key}`, g);
  else if (u.groups.length > SCAN_GROUPS) u.index = new Map(u.groups.map((x) => [`${x[0]}\u0000${x[1]}`, x]));
  return g;
}

/**
 * Counts an event into its key's rows: one per (second, pattern, decision), kept apart by what one
 * Analytics Engine point must not mix (with or without a value or a duration, a split key's shard
 * and epoch). A key has a handful of rows in a batch, so a scan beats building a string key.
 */
function addToRows(rows: WireRow[], e: DecisionEvent): void {
  const t = e.ts - (e.ts % 1000);
  const shard = e.shard ?? -1;
  const epoch = e.epoch ?? 0;
  const hasValue = e.value !== undefined;
  const hasDuration = e.durationMs !== undefined;
  let row: WireRow | undefined;
  for (const r of rows) {
    if (
      r[2] === t &&
      r[1] === e.decision &&
      r[0] === e.pattern &&
      r[10] === shard &&
      r[11] === epoch &&
      r[7] > 0 === hasValue &&
      r[9] > 0 === hasDuration
    ) {
      row = r;
      break;
    }
  }
  if (row === undefined) {
    row = [e.pattern, e.decision, t, 0, 0, null, null, 0, 0, 0, shard, epoch];
    rows.push(row);
  }
  row[3] += e.count;
  if (hasValue) {
    const value = e.value!;
    // A coalesced event stands for `count` values whose extremes are min/max.
    const lo = e.min ?? value;
    const hi = e.max ?? value;
    row[4] += value;
    row[5] = row[5] === null || lo < row[5] ? lo : row[5];
    row[6] = row[6] === null || hi > row[6] ? hi : row[6];
    row[7] += e.count;
  }
  if (hasDuration) {
    row[8] += e.durationMs!;
    row[9] += e.count;
  }
}

/** A shard batch of `events` (valid, routed to one shard): for producers inside the Worker and tests. */
export function encodeShardBatch(events: readonly DecisionEvent[], singletons = false): string {
  const b = new ShardBatchBuilder(singletons);
  for (const e of events) {
    const id = parseEventId(e.id);
    if (id === null) throw new RangeError(`invalid event id ${JSON.stringify(e.id)}`);
    b.add(e, id.emitter, id.seq);
  }
  return b.encode();
}

/** How many events a unit stands for: the length of its intervals. */
export function unitSize(intervals: readonly number[]): number {
  let n = 0;
  for (let i = 0; i < intervals.length; i += 2) n += intervals[i + 1]! - intervals[i]! + 1;
  return n;
}
