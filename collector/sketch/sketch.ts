// Heavy hitters per namespace and window (DESIGN §5): Space-Saving's per-key bounds and merge, laid
// out as Misra–Gries with batched purges (like Apache DataSketches' frequent-items sketch) over 64-bit
// key fingerprints in flat typed arrays.
//
// Why not HeavyKeeper: its probabilistic decay gives no per-key bound and needs randomness, so two
// shards' sketches can't be merged with a guarantee. Space-Saving and Misra–Gries are isomorphic
// (Agarwal et al., "Mergeable summaries", 2012) and both give count − error ≤ true ≤ count per key.
// Why not Space-Saving's heap or stream-summary: they evict one minimum per miss, and at Zipf 0.8
// three events in four are misses. Here a miss writes one empty cell; when the table is full a purge
// subtracts the k-th smallest count v from every cell at once: amortized O(1), whatever the weights.
// Why fingerprints: plain Space-Saving needs ~1,000 counters for recall 1.0 at Zipf 0.8, and 1,000
// key texts (up to 512 bytes each) are far over 64 KB. A cell is 18 bytes; only the `capacity`
// largest counters keep their key's text.
//
// A cell holds `stored`; `offset` is the sum of every purge's v. For a key with a cell,
// stored ≤ true ≤ stored + offset (= count); a key without one has true ≤ offset. A named key also
// keeps the offset when it was named, a tighter error (its count since then is exact); the others
// report error = offset. Each purge sees ≥ M = full − k + 1 cells holding ≥ v, so it removes ≥ M·v of
// stored weight: Σ stored ≤ N − M·offset (N: total weight). Hence, with T = capacity ≤ M = counters:
//  - offset ≤ N/M: every error ≤ N/M and every key with true > N/M has a cell;
//  - fewer than T cells count more than N/T, so every key with true > N/T is in top(T);
//  - `merged` keeps the invariant, so both hold for merged sketches and after further adds.
// These assume no two keys share a 64-bit fingerprint (~n²/2^65 for n distinct keys).

import { ByteReader, ByteWriter, fromBase64, toBase64 } from './codec';

export interface HeavyHitter {
  key: string;
  /** Upper bound on the key's true count. */
  count: number;
  /** count − error is a lower bound on the key's true count. */
  error: number;
}

export interface Estimate {
  count: number;
  error: number;
}

const FORMAT_VERSION = 1;
/** A new sketch's table; it doubles as keys arrive, up to what `counters` asks for. */
const INITIAL_CELLS = 64;
const MAX_COUNTERS = 1 << 20;
const MAX_CAPACITY = 0x7fff;

export class HeavyHitters {
  /** How many keys the sketch reports (keeps the text of). */
  readonly capacity: number;
  /** M: the guarantees' denominator (error ≤ N/M). Memory is ~40 bytes per counter. */
  readonly counters: number;

  private weight = 0;
  private offset = 0;
  private size = 0;
  // Open addressing, linear probing; a cell is empty when stored is 0 (counts are ≥ 1). A cell's
  // fingerprint is fp[2·cell] and fp[2·cell + 1]; the first lane's top bits are its home. The table
  // starts small and doubles while it fills (no purge, so counts stay exact) up to `maxCells`: a
  // sketch of a scope with a few keys holds a few cells, not the full 40 KB.
  private fp: Uint32Array;
  private stored: Float64Array;
  private mask: number;
  private shift: number;
  /** grow (or, at maxCells, purge) when `full` cells are used */
  private full: number;
  private readonly maxCells: number;
  /** `full` at maxCells: what the guarantees count on */
  private readonly maxFull: number;
  // A purge (at maxCells) drops at least the `k` smallest.
  private readonly k: number;
  private scratch: Float64Array | null = null;
  private readonly small = new Int32Array(16);

  // Named counters: ids 0..capacity-1 in a min-heap by count. An id has a cell, its key's text and
  // error (the offset when it was named); cellId maps back (-1: unnamed or empty).
  private readonly heap: Int32Array;
  private readonly idPos: Int32Array;
  private readonly idCell: Int32Array;
  private readonly idError: Float64Array;
  private readonly idName: string[];
  private readonly freeIds: Int32Array;
  private cellId: Int16Array;
  private namedSize = 0;

  /**
   * `expectedKeys`: how many distinct keys the caller expects (say, what the same scope's previous
   * bucket held), so a busy sketch starts at its size instead of doubling its way there.
   */
  constructor(capacity = 64, counters = 1024, expectedKeys = 0) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) {
      throw new RangeError(`capacity must be an integer in [1, ${MAX_CAPACITY}]`);
    }
    if (!Number.isInteger(counters) || counters < capacity || counters > MAX_COUNTERS) {
      throw new RangeError(`counters must be an integer in [capacity, ${MAX_COUNTERS}]`);
    }
    this.capacity = capacity;
    this.counters = counters;
    // Cells at most 3/4 full, and a purge drops at least a quarter of them: probes stay short and
    // purges stay rare.
    let cells = 4;
    while (cells * 9 < counters * 16) cells *= 2;
    this.maxCells = cells;
    this.maxFull = (cells * 3) >> 2;
    this.k = this.maxFull - counters + 1;
    let initial = Math.min(cells, INITIAL_CELLS);
    while (initial < cells && initial * 3 < expectedKeys * 4) initial *= 2;
    this.mask = initial - 1;
    this.shift = 32 - Math.log2(initial);
    this.full = (initial * 3) >> 2;
    this.fp = new Uint32Array(2 * initial);
    this.stored = new Float64Array(initial);
    this.heap = new Int32Array(capacity);
    this.idPos = new Int32Array(capacity);
    this.idCell = new Int32Array(capacity);
    this.idError = new Float64Array(capacity);
    this.idName = new Array<string>(capacity).fill('');
    this.freeIds = new Int32Array(capacity);
    for (let id = 0; id < capacity; id++) this.freeIds[id] = capacity - 1 - id;
    this.cellId = new Int16Array(initial).fill(-1);
  }

  /** Count `weight` more occurrences of `key` (an event's `count`). */
  add(key: string, weight = 1): void {
    fingerprint(key);
    this.addFingerprinted(key, weight, fpLo, fpHi);
  }

  /** The 64-bit fingerprint `add` hashes a key to: hash once, add to many sketches. */
  static fingerprint(key: string): { lo: number; hi: number } {
    fingerprint(key);
    return { lo: fpLo, hi: fpHi };
  }

  /** `add` with the key's fingerprint already computed (`HeavyHitters.fingerprint`). */
  addFingerprinted(key: string, weight: number, lo: number, hi: number): void {
    if (!Number.isSafeInteger(weight) || weight < 1) throw new RangeError('weight must be an integer ≥ 1');
    this.weight += weight;
    const fp = this.fp;
    const stored = this.stored;
    const mask = this.mask;
    let cell = lo >>> this.shift;
    for (let s = stored[cell]!; s !== 0; s = stored[cell]!) {
      if (fp[2 * cell] === lo && fp[2 * cell + 1] === hi) {
        stored[cell] = s + weight;
        const id = this.cellId[cell]!;
        if (id >= 0) this.namedDown(this.idPos[id]!);
        else this.grown(cell, key);
        return;
      }
      cell = (cell + 1) & mask;
    }
    if (this.size >= this.full) {
      if (this.mask + 1 < this.maxCells) this.double();
      else this.purge();
      cell = this.insert(lo, hi, weight);
    } else {
      this.size++;
      fp[2 * cell] = lo;
      fp[2 * cell + 1] = hi;
      stored[cell] = weight;
    }
    this.grown(cell, key);
  }

  /** Distinct keys counted now (cells in use). */
  distinct(): number {
    return this.size;
  }

  /** Total weight added (N). */
  total(): number {
    return this.weight;
  }

  /** The largest `k` keys by count, largest first. */
  top(k = this.capacity): HeavyHitter[] {
    const out: HeavyHitter[] = [];
    for (let p = 0; p < this.namedSize; p++) {
      const id = this.heap[p]!;
      const cell = this.idCell[id]!;
      out.push({ key: this.idName[id]!, count: this.stored[cell]! + this.offset, error: this.idError[id]! });
    }
    out.sort(
      (a, b) => b.count - a.count || a.error - b.error || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
    );
    return out.slice(0, Math.max(0, k));
  }

  /** Bounds on `key`'s true count: count − error ≤ true ≤ count (for an uncounted key, 0 ≤ true ≤ count). */
  estimate(key: string): Estimate {
    fingerprint(key);
    const cell = this.find(fpLo, fpHi);
    if (cell < 0) return { count: this.offset, error: this.offset };
    const id = this.cellId[cell]!;
    return { count: this.stored[cell]! + this.offset, error: id >= 0 ? this.idError[id]! : this.offset };
  }

  /** Largest possible true count of a key the sketch does not count (≤ N / counters). */
  absentBound(): number {
    return this.offset;
  }

  /** Estimated bytes held: typed arrays, key texts (as two-byte strings, the worst case), objects. */
  byteSize(): number {
    let bytes = 512 + this.fp.byteLength + this.stored.byteLength + this.cellId.byteLength;
    bytes += (this.scratch?.byteLength ?? 0) + 40 * this.capacity;
    for (let p = 0; p < this.namedSize; p++) bytes += 64 + 2 * this.idName[this.heap[p]!]!.length;
    return bytes;
  }

  /** Fold `other` into this sketch (see `HeavyHitters.merged`); keeps this sketch's sizes. */
  merge(other: HeavyHitters): this {
    this.load(HeavyHitters.merged([this, other], this.capacity, this.counters));
    return this;
  }

  /**
   * One sketch for the union of the streams behind `list` (shards, or time buckets of one shard).
   * A key missing from an input may still have occurred there up to that input's `absentBound()`,
   * so it is counted at that bound with the same error (Space-Saving's merge, Cafaro et al. 2016).
   * The guarantees hold with the smallest input's sizes, the default.
   */
  static merged(
    list: readonly HeavyHitters[],
    capacity = list.length > 0 ? Math.min(...list.map((s) => s.capacity)) : 64,
    counters = list.length > 0 ? Math.max(capacity, Math.min(...list.map((s) => s.counters))) : 1024,
  ): HeavyHitters {
    const out = new HeavyHitters(capacity, counters);
    let base = 0;
    for (const s of list) {
      base += s.offset;
      out.weight += s.weight;
    }
    // The union by fingerprint, in a scratch open-addressing table at most half full. g: summed
    // stored counts (0 = empty slot); err: Σ of each input's error for the key, its offset where absent.
    let slots = 16;
    for (const s of list) slots += 2 * s.size;
    slots = 2 ** Math.ceil(Math.log2(slots));
    const shift = 32 - Math.log2(slots);
    const lo = new Uint32Array(slots);
    const hi = new Uint32Array(slots);
    const g = new Float64Array(slots);
    const err = new Float64Array(slots);
    const name: (string | undefined)[] = [];
    const slotOf = (l: number, h: number): number => {
      let i = l >>> shift;
      while (g[i] !== 0 && (lo[i] !== l || hi[i] !== h)) i = (i + 1) & (slots - 1);
      return i;
    };
    for (const s of list) {
      for (let cell = 0; cell <= s.mask; cell++) {
        if (s.stored[cell] === 0) continue;
        const i = slotOf(s.fp[2 * cell]!, s.fp[2 * cell + 1]!);
        if (g[i] === 0) {
          lo[i] = s.fp[2 * cell]!;
          hi[i] = s.fp[2 * cell + 1]!;
          err[i] = base;
        }
        g[i]! += s.stored[cell]!;
      }
      for (let p = 0; p < s.namedSize; p++) {
        const id = s.heap[p]!;
        const cell = s.idCell[id]!;
        const i = slotOf(s.fp[2 * cell]!, s.fp[2 * cell + 1]!);
        name[i] = s.idName[id];
        err[i]! += s.idError[id]! - s.offset;
      }
    }
    const order: number[] = [];
    for (let i = 0; i < slots; i++) if (g[i] !== 0) order.push(i);
    order.sort((a, b) => g[b]! - g[a]! || err[a]! - err[b]!);
    // Too many keys: cut at the full-th largest g, like a purge. ≥ full ≥ M keys held ≥ cut, so the
    // merged sketch still has Σ stored ≤ N − M·offset.
    const cut = order.length >= out.maxFull ? g[order[out.maxFull - 1]!]! : 0;
    out.offset = base + cut;
    for (const i of order) {
      if (g[i]! <= cut) break;
      const cell = out.insert(lo[i]!, hi[i]!, g[i]! - cut);
      const key = name[i];
      if (key !== undefined && out.namedSize < out.capacity) out.name(cell, key, err[i]!);
    }
    return out;
  }

  /** Compact binary form (for a SQLite BLOB). Lossless: the sketch keeps counting after a reload. */
  toBytes(): Uint8Array {
    const w = new ByteWriter(64 + 16 * this.size);
    w.varint(FORMAT_VERSION);
    w.varint(this.capacity);
    w.varint(this.counters);
    w.varint(this.weight);
    w.varint(this.offset);
    w.varint(this.size);
    const ordinal = new Map<number, number>();
    for (let cell = 0; cell <= this.mask; cell++) {
      if (this.stored[cell] === 0) continue;
      ordinal.set(cell, ordinal.size);
      w.u32(this.fp[2 * cell]!);
      w.u32(this.fp[2 * cell + 1]!);
      w.varint(this.stored[cell]!);
    }
    w.varint(this.namedSize);
    for (let p = 0; p < this.namedSize; p++) {
      const id = this.heap[p]!;
      w.varint(ordinal.get(this.idCell[id]!)!);
      w.varint(this.idError[id]!);
      w.text(this.idName[id]!);
    }
    return w.bytes();
  }

  static fromBytes(bytes: Uint8Array): HeavyHitters {
    const r = new ByteReader(bytes);
    const version = r.varint();
    if (version !== FORMAT_VERSION) throw new RangeError(`unknown sketch format ${version}`);
    const out = new HeavyHitters(r.varint(), r.varint());
    out.weight = r.varint();
    out.offset = r.varint();
    const size = r.varint();
    if (size > out.maxFull) throw new RangeError('corrupt sketch: more entries than cells');
    // Entries by fingerprint: a later insert may double the table and move earlier ones.
    const entries: number[] = [];
    for (let i = 0; i < size; i++) {
      const lo = r.u32();
      const hi = r.u32();
      const stored = r.varint();
      if (stored < 1 || out.find(lo, hi) >= 0) throw new RangeError('corrupt sketch entry');
      out.insert(lo, hi, stored);
      entries.push(lo, hi);
    }
    const named = r.varint();
    if (named > out.capacity) throw new RangeError('corrupt sketch: more names than capacity');
    for (let p = 0; p < named; p++) {
      const ordinal = r.varint();
      const cell = ordinal < size ? out.find(entries[2 * ordinal]!, entries[2 * ordinal + 1]!) : undefined;
      const error = r.varint();
      const key = r.text();
      if (cell === undefined || error > out.offset || out.cellId[cell] !== -1) {
        throw new RangeError('corrupt sketch name');
      }
      out.name(cell, key, error);
    }
    if (!r.done()) throw new RangeError('corrupt sketch: trailing bytes');
    return out;
  }

  /** `toBytes()` as base64 text (for a TEXT column or JSON). */
  serialize(): string {
    return toBase64(this.toBytes());
  }

  static deserialize(text: string): HeavyHitters {
    return HeavyHitters.fromBytes(fromBase64(text));
  }

  toJSON(): string {
    return this.serialize();
  }

  private find(lo: number, hi: number): number {
    let cell = lo >>> this.shift;
    while (this.stored[cell] !== 0) {
      if (this.fp[2 * cell] === lo && this.fp[2 * cell + 1] === hi) return cell;
      cell = (cell + 1) & this.mask;
    }
    return -1;
  }

  /** Puts a fingerprint not in the table into a free cell (the table doubles first if it is full). */
  private insert(lo: number, hi: number, stored: number): number {
    if (this.size >= this.full && this.mask + 1 < this.maxCells) this.double();
    let cell = lo >>> this.shift;
    while (this.stored[cell] !== 0) cell = (cell + 1) & this.mask;
    this.fp[2 * cell] = lo;
    this.fp[2 * cell + 1] = hi;
    this.stored[cell] = stored;
    this.size++;
    return cell;
  }

  /** Twice the cells: every entry moves to its place in the larger table, names follow. */
  private double(): void {
    const oldFp = this.fp;
    const oldStored = this.stored;
    const oldCellId = this.cellId;
    const cells = (this.mask + 1) * 2;
    this.fp = new Uint32Array(2 * cells);
    this.stored = new Float64Array(cells);
    this.cellId = new Int16Array(cells).fill(-1);
    this.mask = cells - 1;
    this.shift = 32 - Math.log2(cells);
    this.full = (cells * 3) >> 2;
    this.size = 0;
    for (let from = 0; from < oldStored.length; from++) {
      const c = oldStored[from]!;
      if (c === 0) continue;
      const to = this.insert(oldFp[2 * from]!, oldFp[2 * from + 1]!, c);
      const id = oldCellId[from]!;
      if (id >= 0) {
        this.cellId[to] = id;
        this.idCell[id] = to;
      }
    }
  }

  // Subtracts the k-th smallest count from every cell and drops those that reach 0.
  private purge(): void {
    const stored = this.stored;
    const cells = this.mask + 1;
    // Fresh keys hold small counts, so v is usually found by a histogram of counts below 16.
    const small = this.small;
    small.fill(0);
    for (let cell = 0; cell < cells; cell++) {
      const c = stored[cell]!;
      if (c !== 0 && c < 16) small[c]!++;
    }
    let v = 0;
    for (let below = 0, j = 1; j < 16; j++) {
      below += small[j]!;
      if (below >= this.k) {
        v = j;
        break;
      }
    }
    if (v === 0) v = this.kthSmallest();
    this.offset += v;
    // A cell empty before the drop: no probe chain crosses it, so the walk below can start there.
    let start = 0;
    while (stored[start] !== 0) start++;
    for (let cell = 0; cell < cells; cell++) {
      const c = stored[cell]!;
      if (c === 0) continue;
      if (c > v) {
        stored[cell] = c - v;
        continue;
      }
      stored[cell] = 0;
      this.size--;
      const id = this.cellId[cell]!;
      if (id >= 0) {
        this.idCell[id] = -1;
        this.cellId[cell] = -1;
      }
    }
    // Dropping cells broke probe chains: walking on from `start`, move each entry to the first free
    // cell from its home; that cell is never past the entry's own.
    for (let step = 1; step < cells; step++) {
      const from = (start + step) & this.mask;
      const c = stored[from]!;
      if (c === 0) continue;
      let to = this.fp[2 * from]! >>> this.shift;
      while (to !== from && stored[to] !== 0) to = (to + 1) & this.mask;
      if (to === from) continue;
      this.fp[2 * to] = this.fp[2 * from]!;
      this.fp[2 * to + 1] = this.fp[2 * from + 1]!;
      stored[to] = c;
      stored[from] = 0;
      const id = this.cellId[from]!;
      this.cellId[to] = id;
      this.cellId[from] = -1;
      if (id >= 0) this.idCell[id] = to;
    }
    // Dropped names leave the heap; the rest fell by v alike, so re-heapifying them is enough.
    let kept = 0;
    let size = this.namedSize;
    for (let p = 0; p < this.namedSize; p++) {
      const id = this.heap[p]!;
      if (this.idCell[id]! >= 0) {
        this.heap[kept] = id;
        this.idPos[id] = kept++;
        continue;
      }
      this.idName[id] = '';
      this.freeIds[this.capacity - 1 - --size] = id;
    }
    this.namedSize = kept;
    for (let p = (kept >> 1) - 1; p >= 0; p--) this.namedDown(p);
  }

  // The k smallest counts in a max-heap: its root is the k-th smallest.
  private kthSmallest(): number {
    const stored = this.stored;
    const cells = this.mask + 1;
    this.scratch ??= new Float64Array(this.k);
    const h = this.scratch;
    const k = this.k;
    let n = 0;
    for (let cell = 0; cell < cells; cell++) {
      const c = stored[cell]!;
      if (c === 0) continue;
      if (n < k) {
        let p = n++;
        while (p > 0) {
          const parent = (p - 1) >> 1;
          if (h[parent]! >= c) break;
          h[p] = h[parent]!;
          p = parent;
        }
        h[p] = c;
      } else if (c < h[0]!) {
        let p = 0;
        for (;;) {
          let child = 2 * p + 1;
          if (child >= n) break;
          if (child + 1 < n && h[child + 1]! > h[child]!) child++;
          if (h[child]! <= c) break;
          h[p] = h[child]!;
          p = child;
        }
        h[p] = c;
      }
    }
    return h[0]!;
  }

  // Keeps the text of the `capacity` largest counters: an unnamed counter that grows past the
  // smallest named one takes its place. Counts only grow between purges, and purges keep the order,
  // so no unnamed counter exceeds the smallest named one.
  private grown(cell: number, key: string): void {
    if (this.namedSize < this.capacity) {
      this.name(cell, key, this.offset);
      return;
    }
    const root = this.heap[0]!;
    if (this.stored[cell]! <= this.stored[this.idCell[root]!]!) return;
    this.cellId[this.idCell[root]!] = -1;
    this.label(root, cell, key, this.offset);
    this.namedDown(0);
  }

  // Until it was named the key's count was known within `error`; since then every event is counted.
  private label(id: number, cell: number, key: string, error: number): void {
    this.idCell[id] = cell;
    this.cellId[cell] = id;
    this.idError[id] = error;
    this.idName[id] = key;
  }

  private name(cell: number, key: string, error: number): void {
    const id = this.freeIds[this.capacity - 1 - this.namedSize]!;
    const p = this.namedSize++;
    this.heap[p] = id;
    this.idPos[id] = p;
    this.label(id, cell, key, error);
    this.namedUp(p);
  }

  private namedUp(p: number): void {
    const id = this.heap[p]!;
    const c = this.stored[this.idCell[id]!]!;
    while (p > 0) {
      const parent = (p - 1) >> 1;
      const pid = this.heap[parent]!;
      if (this.stored[this.idCell[pid]!]! <= c) break;
      this.heap[p] = pid;
      this.idPos[pid] = p;
      p = parent;
    }
    this.heap[p] = id;
    this.idPos[id] = p;
  }

  private namedDown(p: number): void {
    const heap = this.heap;
    const n = this.namedSize;
    const id = heap[p]!;
    const c = this.stored[this.idCell[id]!]!;
    for (;;) {
      let child = 2 * p + 1;
      if (child >= n) break;
      let cid = heap[child]!;
      let cc = this.stored[this.idCell[cid]!]!;
      if (child + 1 < n) {
        const rid = heap[child + 1]!;
        const rc = this.stored[this.idCell[rid]!]!;
        if (rc < cc) {
          child++;
          cid = rid;
          cc = rc;
        }
      }
      if (cc >= c) break;
      heap[p] = cid;
      this.idPos[cid] = p;
      p = child;
    }
    heap[p] = id;
    this.idPos[id] = p;
  }

  private load(from: HeavyHitters): void {
    this.weight = from.weight;
    this.offset = from.offset;
    this.size = from.size;
    // Same sizes (merge keeps them), but `from` may hold a larger or smaller table so far.
    this.fp = from.fp.slice();
    this.stored = from.stored.slice();
    this.mask = from.mask;
    this.shift = from.shift;
    this.full = from.full;
    this.heap.set(from.heap);
    this.idPos.set(from.idPos);
    this.idCell.set(from.idCell);
    this.idError.set(from.idError);
    this.freeIds.set(from.freeIds);
    for (let id = 0; id < this.capacity; id++) this.idName[id] = from.idName[id]!;
    this.cellId = from.cellId.slice();
    this.namedSize = from.namedSize;
  }
}

// The key's ~64-bit fingerprint, written to module variables instead of allocating a pair: this runs
// once per event. (Not exported: bundlers turn exported `let`s into getters, 3× slower here.)
// Defined over UTF-16 code units like collector/hash.ts, so it never changes between runtimes or
// deploys: serialized sketches store these values.
let fpLo = 0;
let fpHi = 0;

/**
 * murmur3 (x86, 32-bit) over pairs of UTF-16 code units, run with two seeds: two lanes, ~64 bits.
 * Two of n keys share a fingerprint with probability ~n²/2^65; with one 32-bit lane a 1M-key window
 * would hold ~100 colliding pairs. Pairs halve the multiply chain (a 45-character key hashes in
 * ~60% of the time one unit per step takes). The first lane gets murmur3's finalizer, as its top bits
 * pick the home cell; the second is only compared for equality.
 */
function fingerprint(key: string): void {
  let h1 = 0x9747b28c;
  let h2 = 0x2f4a7c15;
  const n = key.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    let k = key.charCodeAt(i) | (key.charCodeAt(i + 1) << 16);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h1 ^= k;
    h1 = (h1 << 13) | (h1 >>> 19);
    h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
    h2 ^= k;
    h2 = (h2 << 13) | (h2 >>> 19);
    h2 = (Math.imul(h2, 5) + 0xe6546b64) | 0;
  }
  if (i < n) {
    let k = key.charCodeAt(i);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h1 ^= k;
    h2 ^= k;
  }
  fpLo = fmix32(h1 ^ n);
  fpHi = (h2 ^ n) >>> 0;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
