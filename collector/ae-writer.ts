// Writes data points to Analytics Engine within its limit of 250 writes per invocation. What does
// not fit waits for the next invocation (the next ingest call or the shard's alarm), in a bounded
// queue; past the bound points are dropped and counted, never silently.
import { AE_WRITES_PER_INVOCATION } from './analytics';

export class AnalyticsWriter {
  #pending: AnalyticsEngineDataPoint[] = [];
  dropped = 0;
  written = 0;

  constructor(
    private readonly dataset: AnalyticsEngineDataset | undefined,
    private readonly maxPending = 50_000,
  ) {}

  get pending(): number {
    return this.#pending.length;
  }

  enqueue(points: AnalyticsEngineDataPoint[]): void {
    if (!this.dataset) return;
    const room = this.maxPending - this.#pending.length;
    if (points.length > room) {
      this.dropped += points.length - Math.max(room, 0);
      points = points.slice(0, Math.max(room, 0));
    }
    for (const p of points) this.#pending.push(p);
  }

  /** Writes at most one invocation's worth; call once per invocation. Returns how many went. */
  drain(budget = AE_WRITES_PER_INVOCATION): number {
    if (!this.dataset || this.#pending.length === 0) return 0;
    const batch = this.#pending.length <= budget ? this.#pending : this.#pending.slice(0, budget);
    this.#pending = this.#pending.length <= budget ? [] : this.#pending.slice(budget);
    let written = 0;
    for (const p of batch) {
      try {
        this.dataset.writeDataPoint(p);
        written++;
      } catch {
        this.dropped++;
      }
    }
    this.written += written;
    return written;
  }
}
