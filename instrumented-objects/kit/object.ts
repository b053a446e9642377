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
