// Per-key rollups aggregated in memory between flushes: one row per (ns, key, pattern, decision,
// second), however many events land in it. The store upserts them in one statement per flush.
import type { DecisionEvent } from './contract';

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
};

export class RollupBuffer {
  #rows = new Map<string, RollupRow>();

  get size(): number {
    return this.#rows.size;
  }

  add(e: DecisionEvent): void {
    const t = e.ts - (e.ts % 1000);
    const id = `${e.ns}\u0000${e.key}\u0000${e.pattern}\u0000${e.decision}\u0000${t}`;
    let row = this.#rows.get(id);
    if (row === undefined) {
      row = {
        ns: e.ns,
        key: e.key,
        pattern: e.pattern,
        decision: e.decision,
        t,
        count: 0,
        vsum: 0,
        vmin: null,
        vmax: null,
        vn: 0,
        dsum: 0,
        dn: 0,
      };
      this.#rows.set(id, row);
    }
    row.count += e.count;
    if (e.value !== undefined) {
      row.vsum += e.value;
      // A coalesced event stands for `count` values whose extremes are min/max.
      const lo = e.min ?? e.value;
      const hi = e.max ?? e.value;
      row.vmin = row.vmin === null ? lo : Math.min(row.vmin, lo);
      row.vmax = row.vmax === null ? hi : Math.max(row.vmax, hi);
      row.vn += e.count;
    }
    if (e.durationMs !== undefined) {
      row.dsum += e.durationMs;
      row.dn += e.count;
    }
  }

  /** Hands over every row and starts empty. */
  drain(): RollupRow[] {
    const rows = [...this.#rows.values()];
    this.#rows = new Map();
    return rows;
  }
}
