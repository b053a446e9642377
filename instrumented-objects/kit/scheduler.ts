// Alarm multiplexing: a Durable Object has one alarm, but lock leases, queue redelivery, outbox
// retries and debounce timers each need one. Every timer is a row here; the earliest row sets the
// object's single alarm, and `run()` (called from `alarm()`) fires whatever is due.

export type TimerHandler = (name: string, payload: unknown, at: number) => void | Promise<void>;

/** A handler that throws is retried this much later (its row stays, so nothing is lost). */
const RETRY_FAILED_MS = 5_000;

export class AlarmScheduler {
  #handlers = new Map<string, TimerHandler>();
  #armedAt: number | null | undefined = undefined;

  constructor(private readonly storage: DurableObjectStorage) {
    storage.sql.exec(`CREATE TABLE IF NOT EXISTS kw_timers (kind TEXT NOT NULL, name TEXT NOT NULL,
      at INTEGER NOT NULL, payload TEXT, PRIMARY KEY (kind, name)) WITHOUT ROWID`);
    storage.sql.exec('CREATE INDEX IF NOT EXISTS kw_timers_by_at ON kw_timers (at)');
  }

  /** Registers what runs when a timer of `kind` is due. One handler per kind. */
  on(kind: string, handler: TimerHandler): void {
    this.#handlers.set(kind, handler);
  }

  /** Sets (or moves) timer `kind/name` to fire at `at`. */
  schedule(kind: string, name: string, at: number, payload?: unknown): void {
    this.storage.sql.exec(
      `INSERT INTO kw_timers (kind, name, at, payload) VALUES (?, ?, ?, ?)
       ON CONFLICT DO UPDATE SET at = excluded.at, payload = excluded.payload`,
      kind,
      name,
      at,
      payload === undefined ? null : JSON.stringify(payload),
    );
    this.#arm();
  }

  cancel(kind: string, name: string): void {
    this.storage.sql.exec('DELETE FROM kw_timers WHERE kind = ? AND name = ?', kind, name);
    this.#arm();
  }

  next(kind: string, name: string): number | null {
    const row = this.storage.sql
      .exec<{ at: number }>('SELECT at FROM kw_timers WHERE kind = ? AND name = ?', kind, name)
      .toArray()[0];
    return row?.at ?? null;
  }

  pending(kind?: string): { kind: string; name: string; at: number }[] {
    const rows =
      kind === undefined
        ? this.storage.sql.exec<{ kind: string; name: string; at: number }>(
            'SELECT kind, name, at FROM kw_timers ORDER BY at',
          )
        : this.storage.sql.exec<{ kind: string; name: string; at: number }>(
            'SELECT kind, name, at FROM kw_timers WHERE kind = ? ORDER BY at',
            kind,
          );
    return rows.toArray();
  }

  /**
   * Fires every due timer, earliest first, then re-arms the alarm for the next one. The alarm was
   * set for the earliest timer, so that one is due even if the clock reads a little earlier.
   */
  async run(now = Date.now()): Promise<number> {
    const earliest = this.storage.sql
      .exec<{ at: number | null }>('SELECT min(at) AS at FROM kw_timers')
      .one().at;
    const due = this.storage.sql
      .exec<{ kind: string; name: string; at: number; payload: string | null }>(
        'SELECT kind, name, at, payload FROM kw_timers WHERE at <= ? ORDER BY at',
        Math.max(now, earliest ?? now),
      )
      .toArray();
    // The alarm that woke us is spent: whatever we set next must be set for real.
    this.#armedAt = undefined;
    let fired = 0;
    for (const t of due) {
      const handler = this.#handlers.get(t.kind);
      try {
        if (!handler) throw new Error(`no handler for timer kind "${t.kind}"`);
        await handler(t.name, t.payload === null ? undefined : JSON.parse(t.payload), t.at);
        // Only delete the row we fired: a handler may have moved its own timer to a later time.
        this.storage.sql.exec(
          'DELETE FROM kw_timers WHERE kind = ? AND name = ? AND at = ?',
          t.kind,
          t.name,
          t.at,
        );
        fired++;
      } catch (err) {
        console.error(`keywarden: timer ${t.kind}/${t.name} failed; retrying in ${RETRY_FAILED_MS} ms`, err);
        this.storage.sql.exec(
          'UPDATE kw_timers SET at = ? WHERE kind = ? AND name = ? AND at = ?',
          Date.now() + RETRY_FAILED_MS,
          t.kind,
          t.name,
          t.at,
        );
      }
    }
    this.#arm();
    return fired;
  }

  #arm(): void {
    const next = this.storage.sql.exec<{ at: number | null }>('SELECT min(at) AS at FROM kw_timers').one().at;
    if (next === this.#armedAt) return;
    this.#armedAt = next;
    // Storage calls are ordered and covered by the output gate: no need to hold the caller up.
    const done = next === null ? this.storage.deleteAlarm() : this.storage.setAlarm(next);
    done.catch((err) => console.error('keywarden: could not set the alarm', err));
  }
}
