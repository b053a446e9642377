// The single_flight pattern object (DESIGN §4): one refresh of a key runs at a time, and every
// caller that arrives while it runs shares its result — or its error.
//
//   load → `led`    this call started the refresh (a registered loader, see loaders.ts)
//          `joined` a refresh of this loader was running: this call waited for it and shares it
//          `failed` the refresh this call led or joined threw (or timed out): all of them get the error
//
// The running flight lives in memory (a promise callers await); the loader's `await`s do not hold
// the input gate, which is what lets joiners in. Every flight and every caller is also written to
// SQLite, so `inspect` can answer for a request after the fact and a restart is visible: a flight
// that was running when the object went away is marked `abandoned` when it comes back (its callers
// got an error from the runtime, never a result), and the next call leads a new one.
//
// Coalescing is per loader name: a caller that joins shares the leader's flight, params included.
// A requestId is a label for lookups, not a dedupe key: a retried call is a new call (it joins the
// running flight or leads the next one) and its ledger row is replaced.
import { InstrumentedObject } from '../../kit';
import { LOADER_LIMITS, LOADERS, type LoadedValue, type LoaderParams } from './loaders';

export type TraceContext = { traceId?: string; spanId?: string };

export type LoadInput = {
  ns: string;
  key: string;
  /** a name registered in LOADERS */
  loader: string;
  params?: LoaderParams;
  requestId?: string;
  /** give up on a flight after this long, 1 ms – 60 s (default 30 s); its callers get `failed` */
  timeoutMs?: number;
  trace?: TraceContext;
};

export type LoadResult = {
  decision: 'led' | 'joined' | 'failed';
  flightId: number;
  /** the loader's answer; null when the flight failed */
  result: LoadedValue | null;
  error: string | null;
  /** how many calls the flight served (this one included) */
  callers: number;
  role: 'led' | 'joined';
};

export type FlightState = 'running' | 'succeeded' | 'failed' | 'abandoned';

export type FlightRecord = {
  flightId: number;
  ns: string;
  key: string;
  loader: string;
  state: FlightState;
  startedAt: number;
  finishedAt: number | null;
  callers: number;
  result: LoadedValue | null;
  error: string | null;
};

export type SingleFlightInspect =
  | {
      found: true;
      requestId: string;
      role: 'led' | 'joined';
      /** null while its flight is still running */
      decision: 'led' | 'joined' | 'failed' | null;
      at: number;
      flight: FlightRecord;
    }
  | { found: false; requestId: string }
  | {
      found: true;
      running: { flightId: number; loader: string; callers: number; startedAt: number }[];
      /** the latest flights, newest first */
      recent: FlightRecord[];
      totals: Record<FlightState, number> & { flights: number; callers: number };
    };

export const DEFAULT_TIMEOUT_MS = 30_000;
export const MAX_TIMEOUT_MS = 60_000;
/** Flights (and their callers) kept for inspection; older ones are trimmed as new ones start. */
const KEEP_FLIGHTS = 1_000;

type Flight = { id: number; loader: string; callers: number; startedAt: number; done: Promise<LoadedValue> };

type FlightRow = {
  id: number;
  ns: string;
  key: string;
  loader: string;
  state: FlightState;
  started_at: number;
  finished_at: number | null;
  callers: number;
  result: string | null;
  error: string | null;
};

export class SingleFlightObject extends InstrumentedObject {
  /** The running flight of each loader. Memory only: a promise cannot outlive its instance. */
  readonly #running = new Map<string, Flight>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS single_flight_flights (id INTEGER PRIMARY KEY AUTOINCREMENT,
      ns TEXT NOT NULL, key TEXT NOT NULL, loader TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'abandoned')),
      started_at INTEGER NOT NULL, finished_at INTEGER, callers INTEGER NOT NULL, result TEXT, error TEXT)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS single_flight_callers (request_id TEXT PRIMARY KEY,
      flight_id INTEGER NOT NULL, role TEXT NOT NULL, decision TEXT, at INTEGER NOT NULL)`);
    sql.exec(
      'CREATE INDEX IF NOT EXISTS single_flight_callers_by_flight ON single_flight_callers (flight_id)',
    );
    // A new instance runs nothing: whatever was running died with the previous one.
    sql.exec(
      `UPDATE single_flight_flights SET state = 'abandoned', finished_at = ?,
       error = 'the object restarted while this refresh ran' WHERE state = 'running'`,
      Date.now(),
    );
  }

  async load(input: LoadInput): Promise<LoadResult> {
    const startedAt = Date.now();
    const loader = LOADERS[input.loader];
    if (!loader) {
      throw new RangeError(`unknown loader "${input.loader}"; known: ${Object.keys(LOADERS).join(', ')}`);
    }
    const params = checkParams(input.params ?? {});
    const timeoutMs = input.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
      throw new RangeError(`timeoutMs must be an integer from 1 to ${MAX_TIMEOUT_MS}`);
    }
    const sql = this.ctx.storage.sql;

    // From here to the first await nothing else runs: joining or leading is decided atomically.
    let flight = this.#running.get(input.loader);
    const role: 'led' | 'joined' = flight ? 'joined' : 'led';
    if (flight) {
      flight.callers++;
    } else {
      const id = sql
        .exec<{ id: number }>(
          `INSERT INTO single_flight_flights (ns, key, loader, state, started_at, callers)
           VALUES (?, ?, ?, 'running', ?, 1) RETURNING id`,
          input.ns,
          input.key,
          input.loader,
          startedAt,
        )
        .one().id;
      this.#trim(id);
      const work = loader({ ns: input.ns, key: input.key, generation: id, params });
      flight = {
        id,
        loader: input.loader,
        callers: 1,
        startedAt,
        done: this.#fly(id, input.loader, work, timeoutMs),
      };
      this.#running.set(input.loader, flight);
    }
    if (input.requestId !== undefined) {
      sql.exec(
        'INSERT OR REPLACE INTO single_flight_callers VALUES (?, ?, ?, NULL, ?)',
        input.requestId,
        flight.id,
        role,
        startedAt,
      );
    }

    let result: LoadedValue | null = null;
    let error: string | null = null;
    try {
      result = await flight.done;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    const decision = error === null ? role : 'failed';
    if (input.requestId !== undefined) {
      sql.exec(
        'UPDATE single_flight_callers SET decision = ? WHERE request_id = ? AND flight_id = ?',
        decision,
        input.requestId,
        flight.id,
      );
    }
    this.emitter.emit({
      pattern: 'single_flight',
      decision,
      ns: input.ns,
      key: input.key,
      requestId: input.requestId,
      value: flight.callers,
      durationMs: Date.now() - startedAt,
      traceId: input.trace?.traceId,
      spanId: input.trace?.spanId,
    });
    return { decision, flightId: flight.id, result, error, callers: flight.callers, role };
  }

  /** Settles a flight: records its outcome, then frees the loader for the next flight. */
  async #fly(
    id: number,
    loader: string,
    work: Promise<LoadedValue>,
    timeoutMs: number,
  ): Promise<LoadedValue> {
    // A loader that loses the race to the timeout may still reject later: nobody awaits it then.
    work.catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the refresh took longer than ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const value = await Promise.race([work, timeout]);
      this.#finish(id, 'succeeded', JSON.stringify(value), null);
      return value;
    } catch (err) {
      this.#finish(id, 'failed', null, err instanceof Error ? err.message : String(err));
      throw err;
    } finally {
      clearTimeout(timer);
      // Synchronously with settling: a call arriving after this leads a new flight, never joins a finished one.
      this.#running.delete(loader);
    }
  }

  #finish(id: number, state: FlightState, result: string | null, error: string | null): void {
    const callers = [...this.#running.values()].find((f) => f.id === id)?.callers ?? 0;
    this.ctx.storage.sql.exec(
      'UPDATE single_flight_flights SET state = ?, finished_at = ?, callers = ?, result = ?, error = ? WHERE id = ?',
      state,
      Date.now(),
      callers,
      result,
      error === null ? null : error.slice(0, 1_000),
      id,
    );
  }

  inspect(requestId?: string): SingleFlightInspect {
    const sql = this.ctx.storage.sql;
    if (requestId !== undefined) {
      const row = sql
        .exec<{
          flight_id: number;
          role: 'led' | 'joined';
          decision: LoadResult['decision'] | null;
          at: number;
        }>('SELECT flight_id, role, decision, at FROM single_flight_callers WHERE request_id = ?', requestId)
        .toArray()[0];
      const flight = row && this.#flight(row.flight_id);
      if (!row || !flight) return { found: false, requestId };
      return { found: true, requestId, role: row.role, decision: row.decision, at: row.at, flight };
    }
    const recent = sql
      .exec<FlightRow>('SELECT * FROM single_flight_flights ORDER BY id DESC LIMIT 20')
      .toArray()
      .map((r) => this.#record(r));
    const totals = {
      flights: 0,
      callers: this.#callersTotal(),
      running: 0,
      succeeded: 0,
      failed: 0,
      abandoned: 0,
    };
    for (const r of sql
      .exec<{ state: FlightState; n: number }>(
        'SELECT state, count(*) AS n FROM single_flight_flights GROUP BY state',
      )
      .toArray()) {
      totals[r.state] = r.n;
      totals.flights += r.n;
    }
    const running = [...this.#running.values()].map((f) => ({
      flightId: f.id,
      loader: f.loader,
      callers: f.callers,
      startedAt: f.startedAt,
    }));
    return { found: true, running, recent, totals };
  }

  #callersTotal(): number {
    const settled =
      this.ctx.storage.sql
        .exec<{ n: number | null }>(
          "SELECT sum(callers) AS n FROM single_flight_flights WHERE state != 'running'",
        )
        .one().n ?? 0;
    let running = 0;
    for (const f of this.#running.values()) running += f.callers;
    return settled + running;
  }

  #flight(id: number): FlightRecord | null {
    const row = this.ctx.storage.sql
      .exec<FlightRow>('SELECT * FROM single_flight_flights WHERE id = ?', id)
      .toArray()[0];
    return row ? this.#record(row) : null;
  }

  #record(r: FlightRow): FlightRecord {
    const live = r.state === 'running' ? [...this.#running.values()].find((f) => f.id === r.id) : undefined;
    return {
      flightId: r.id,
      ns: r.ns,
      key: r.key,
      loader: r.loader,
      state: r.state,
      startedAt: r.started_at,
      finishedAt: r.finished_at,
      callers: live?.callers ?? r.callers,
      result: r.result === null ? null : (JSON.parse(r.result) as LoadedValue),
      error: r.error,
    };
  }

  /** Keeps the ledger bounded: drops flights (and their callers) older than the last KEEP_FLIGHTS. */
  #trim(newest: number): void {
    const horizon = newest - KEEP_FLIGHTS;
    if (horizon <= 0 || newest % 100 !== 0) return;
    const sql = this.ctx.storage.sql;
    sql.exec('DELETE FROM single_flight_callers WHERE flight_id <= ?', horizon);
    sql.exec("DELETE FROM single_flight_flights WHERE id <= ? AND state != 'running'", horizon);
  }
}

function checkParams(p: LoaderParams): LoaderParams {
  const { delayMs, fail, rounds } = p;
  if (
    delayMs !== undefined &&
    (!Number.isInteger(delayMs) || delayMs < 0 || delayMs > LOADER_LIMITS.maxDelayMs)
  ) {
    throw new RangeError(`params.delayMs must be an integer from 0 to ${LOADER_LIMITS.maxDelayMs}`);
  }
  if (rounds !== undefined && (!Number.isInteger(rounds) || rounds < 1 || rounds > LOADER_LIMITS.maxRounds)) {
    throw new RangeError(`params.rounds must be an integer from 1 to ${LOADER_LIMITS.maxRounds}`);
  }
  if (fail !== undefined && (typeof fail !== 'string' || fail.length > LOADER_LIMITS.maxFailBytes)) {
    throw new RangeError(`params.fail must be a string of at most ${LOADER_LIMITS.maxFailBytes} characters`);
  }
  return { delayMs, fail, rounds };
}
