// Test entry: the real Worker plus a probe object that exercises the instrumentation kit with a
// collector that can be switched off, to test the outbox without touching production code paths.
import type { DecisionEvent, EventSink, IngestResult } from '../collector';
import { Collector } from '../collector';
import { InstrumentedObject } from '../instrumented-objects';

export * from '../worker';
export { default } from '../worker';

export class KitProbe extends InstrumentedObject {
  readonly #fault: { down: boolean };

  constructor(ctx: DurableObjectState, env: Env) {
    const real = new Collector(env);
    const fault = { down: false };
    const sink: EventSink = {
      ingest: (events: readonly DecisionEvent[]): Promise<IngestResult> =>
        fault.down ? Promise.reject(new Error('collector unreachable (test fault)')) : real.ingest(events),
    };
    super(ctx, env, { sink: () => sink, outboxMaxEvents: 300 });
    this.#fault = fault;
  }

  setCollectorDown(down: boolean): void {
    this.#fault.down = down;
  }

  decide(n: number, key = 'probe:1', requestPrefix?: string): void {
    for (let i = 0; i < n; i++) {
      this.emitter.emit({
        pattern: 'counter',
        decision: 'incremented',
        ns: 'kit.probe',
        key,
        requestId: requestPrefix === undefined ? undefined : `${requestPrefix}-${i}`,
      });
    }
  }

  timersPending() {
    return this.timers.pending();
  }

  scheduleTimer(kind: string, name: string, at: number): void {
    this.timers.schedule(kind, name, at);
  }

  onTimer(kind: string): void {
    this.timers.on(kind, (name) => {
      this.ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS fired (kind TEXT, name TEXT)');
      this.ctx.storage.sql.exec('INSERT INTO fired VALUES (?, ?)', kind, name);
    });
  }

  fired(): string[] {
    this.ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS fired (kind TEXT, name TEXT)');
    return this.ctx.storage.sql
      .exec<{ kind: string; name: string }>('SELECT kind, name FROM fired')
      .toArray()
      .map((r) => `${r.kind}/${r.name}`);
  }
}
