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
import { type DecisionEvent, parseEventId } from './contract';
import { emptyRanges, intervalsOf, markSeen, type SeenRanges } from './dedupe';

/** [ns, key, pattern, decision, t, count, vsum, vmin, vmax, vn, dsum, dn, shard, epoch, ts] */
export type WireRow = [
  string,
  string,
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
  number,
  number,
  number,
];

/**
 * One emitter's part of a batch: its id, the newest event time, its seqs as flat inclusive
 * intervals, its rows and its whole events.
 */
export type WireUnit = [string, number, number[], WireRow[], DecisionEvent[]];

/** [units, duplicates within the batch itself] */
export type ShardBatchWire = [WireUnit[], number];

type Unit = {
  emitter: string;
  seen: SeenRanges;
  lastTs: number;
  rows: WireRow[];
  /** rows by their coalescing key, once a unit has too many to scan (an emitter of many keys) */
  index: Map<string, WireRow> | null;
  events: DecisionEvent[];
};

const SCAN_ROWS = 8;

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
      u = { emitter, seen: emptyRanges(), lastTs: e.ts, rows: [], index: null, events: [] };
      if (this.singletons) this.#singletons.push(u);
      else this.#units.set(emitter, u);
    }
    if (!markSeen(u.seen, seq)) {
      this.duplicates++;
      return;
    }
    this.events.push(e);
    if (e.ts > u.lastTs) u.lastTs = e.ts;
    if (e.requestId !== undefined || e.traceId !== undefined) {
      u.events.push(e);
      return;
    }
    const t = e.ts - (e.ts % 1000);
    const shard = e.shard ?? -1;
    const epoch = e.epoch ?? 0;
    const hasValue = e.value !== undefined;
    const hasDuration = e.durationMs !== undefined;
    let row: WireRow | undefined;
    if (u.index === null) {
      for (const r of u.rows) {
        if (
          r[4] === t &&
          r[3] === e.decision &&
          r[1] === e.key &&
          r[0] === e.ns &&
          r[2] === e.pattern &&
          r[12] === shard &&
          r[13] === epoch &&
          r[9] > 0 === hasValue &&
          r[11] > 0 === hasDuration
        ) {
          row = r;
          break;
        }
      }
    } else {
      row = u.index.get(rowKey(e.ns, e.key, e.pattern, e.decision, t, shard, epoch, hasValue, hasDuration));
    }
    if (row === undefined) {
      row = [e.ns, e.key, e.pattern, e.decision, t, 0, 0, null, null, 0, 0, 0, shard, epoch, e.ts];
      u.rows.push(row);
      if (u.index === null && u.rows.length > SCAN_ROWS) {
        u.index = new Map(
          u.rows.map((r) => [rowKey(r[0], r[1], r[2], r[3], r[4], r[12], r[13], r[9] > 0, r[11] > 0), r]),
        );
      } else if (u.index !== null) {
        u.index.set(rowKey(e.ns, e.key, e.pattern, e.decision, t, shard, epoch, hasValue, hasDuration), row);
      }
    }
    row[5] += e.count;
    if (hasValue) {
      const value = e.value!;
      // A coalesced event stands for `count` values whose extremes are min/max.
      const lo = e.min ?? value;
      const hi = e.max ?? value;
      row[6] += value;
      row[7] = row[7] === null || lo < row[7] ? lo : row[7];
      row[8] = row[8] === null || hi > row[8] ? hi : row[8];
      row[9] += e.count;
    }
    if (hasDuration) {
      row[10] += e.durationMs!;
      row[11] += e.count;
    }
  }

  /** The wire form; empty units (all duplicates) are left out. */
  build(): ShardBatchWire {
    const units: WireUnit[] = [];
    for (const u of this.singletons ? this.#singletons : this.#units.values()) {
      if (u.rows.length > 0 || u.events.length > 0)
        units.push([u.emitter, u.lastTs, intervalsOf(u.seen), u.rows, u.events]);
    }
    return [units, this.duplicates];
  }

  encode(): string {
    return JSON.stringify(this.build());
  }
}

function rowKey(
  ns: string,
  key: string,
  pattern: string,
  decision: string,
  t: number,
  shard: number,
  epoch: number,
  hasValue: boolean,
  hasDuration: boolean,
): string {
  return `${ns}\u0000${key}\u0000${pattern}\u0000${decision}\u0000${t}\u0000${shard}\u0000${epoch}\u0000${hasValue}\u0000${hasDuration}`;
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
