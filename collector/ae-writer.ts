// Writes data points to Analytics Engine within its limit of 250 writes per invocation. What does
// not fit waits for the next invocation (the next ingest call or the shard's alarm), in a bounded
// queue; past the bound points are dropped and counted, never silently.
import { AE_WRITES_PER_INVOCATION } from './analytics';

export class AnalyticsWriter {
  /** pending points are #queue[#head…]: a drain moves the head instead of copying what is left */
  #queue: AnalyticsEngineDataPoint[] = [];
  #head = 0;
  dropped = 0;
  written = 0;

  constructor(
    private readonly dataset: AnalyticsEngineDataset | undefined,
    private readonly maxPending = 50_000,
  ) {}

  get pending(): number {
    return this.#queue.length - this.#head;
  }

  enqueue(points: AnalyticsEngineDataPoint[]): void {
    if (!this.dataset) return;
    const room = Math.max(this.maxPending - this.pending, 0);
    const take = Math.min(points.length, room);
    this.dropped += points.length - take;
    for (let i = 0; i < take; i++) this.#queue.push(points[i]!);
  }

  /** Writes at most one invocation's worth; call once per invocation. Returns how many went. */
  drain(budget = AE_WRITES_PER_INVOCATION): number {
    if (!this.dataset || this.pending === 0) return 0;
    const end = Math.min(this.#queue.length, this.#head + budget);
    let written = 0;
    for (let i = this.#head; i < end; i++) {
      try {
        this.dataset.writeDataPoint(this.#queue[i]);
        written++;
      } catch {
        this.dropped++;
      }
    }
    this.#head = end;
    // Drop the written part once it is most of the array (amortized O(1) per point).
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    this.written += written;
    return written;
  }
}
