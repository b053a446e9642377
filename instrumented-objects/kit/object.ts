// The base every pattern object extends: one place where the kit is set up (timers, emitter), and
// the one alarm handler that fans out to the timers.
import { DurableObject } from 'cloudflare:workers';
import { Collector, type EventSink } from '../../collector';
import { Emitter, type EmitterOptions } from './emitter';
import { AlarmScheduler } from './scheduler';

export abstract class InstrumentedObject extends DurableObject<Env> {
  protected readonly timers: AlarmScheduler;
  protected readonly emitter: Emitter;

  constructor(ctx: DurableObjectState, env: Env, emitterOptions: Partial<EmitterOptions> = {}) {
    super(ctx, env);
    this.timers = new AlarmScheduler(ctx.storage);
    this.emitter = new Emitter(ctx, this.timers, {
      sink: (): EventSink => new Collector(env),
      ...emitterOptions,
    });
  }

  /**
   * One object, one (ns, key). The first call names the key in the object's state row (`table` has
   * one row with `ns` and `key` columns); a call naming another key is refused, since two keys in
   * one object would share its sequence, budget, queue or holder.
   */
  protected claimKey<R extends { ns: string | null; key: string | null }>(
    table: string,
    row: R,
    ns: string,
    key: string,
    what: string,
  ): R {
    if (row.ns === null) {
      this.ctx.storage.sql.exec(`UPDATE ${table} SET ns = ?, key = ?`, ns, key);
      return { ...row, ns, key };
    }
    if (row.ns !== ns || row.key !== key) {
      throw new Error(`this ${what} object coordinates ${row.ns} ${row.key}, not ${ns} ${key}`);
    }
    return row;
  }

  override async alarm(): Promise<void> {
    await this.timers.run();
  }

  /** Telemetry on or off for this instance (the overhead benchmark's switch). */
  setTelemetry(enabled: boolean): void {
    this.emitter.enabled = enabled;
  }

  /** Delivers every event emitted so far (or parks it in the outbox). For tests and shutdown. */
  flushTelemetry(): Promise<void> {
    return this.emitter.drain();
  }

  telemetryStats() {
    return this.emitter.stats();
  }
}
