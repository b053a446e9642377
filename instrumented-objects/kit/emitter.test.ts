import {
  abortAllDurableObjects,
  env,
  runDurableObjectAlarm,
  runInDurableObject,
  SELF,
} from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { KitProbe } from '../../test/worker';

const probes = (env as unknown as { KIT_PROBE: DurableObjectNamespace<KitProbe> }).KIT_PROBE;
const probe = (name: string) => probes.get(probes.idFromName(name));

async function countFor(key: string, decision = 'incremented'): Promise<number> {
  const res = await SELF.fetch(
    `http://keywarden.test/api/hot-keys?ns=kit.probe&window=300&limit=1000&pattern=${decision === 'dropped' ? 'telemetry' : 'counter'}&decision=${decision}`,
  );
  const body = (await res.json()) as { keys: { key: string; count: number }[] };
  return body.keys.find((k) => k.key === key)?.count ?? 0;
}

describe('the emitter', () => {
  it('delivers every decision once, in batches of at most 100', async () => {
    const p = probe('batches');
    await p.decide(250, 'probe:batches');
    await p.flushTelemetry();
    const stats = await p.telemetryStats();
    expect(stats.sent).toBe(250);
    expect(stats.buffered).toBe(0);
    expect(await countFor('probe:batches')).toBe(250);
  });

  it('keeps failed batches in the outbox and delivers them exactly once from the alarm after recovery', async () => {
    const p = probe('outbox');
    await p.setCollectorDown(true);
    await p.decide(120, 'probe:outbox', 'req-outbox');
    await p.flushTelemetry();
    // Check: nothing reached the collector, all of it is in the outbox, and a retry timer is set.
    let stats = await p.telemetryStats();
    expect(stats.outboxEvents).toBe(120);
    expect(await countFor('probe:outbox')).toBe(0);
    expect((await p.timersPending()).map((t) => t.kind)).toEqual(['kw.outbox']);
    // A retry while the collector is still down backs off and keeps the batch.
    expect(await runDurableObjectAlarm(p)).toBe(true);
    stats = await p.telemetryStats();
    expect(stats.outboxEvents).toBe(120);
    expect((await p.timersPending()).length).toBe(1);
    await p.setCollectorDown(false);
    expect(await runDurableObjectAlarm(p)).toBe(true);
    stats = await p.telemetryStats();
    expect(stats.outboxEvents).toBe(0);
    expect(stats.droppedTotal).toBe(0);
    expect(await countFor('probe:outbox')).toBe(120);
    // Check: no timer left, and a spurious second alarm run delivers nothing twice.
    expect(await p.timersPending()).toEqual([]);
    await runInDurableObject(p, (instance) => instance.alarm());
    expect(await countFor('probe:outbox')).toBe(120);
    const lookup = await SELF.fetch('http://keywarden.test/api/lookup?requestId=req-outbox-7');
    expect(((await lookup.json()) as { trail: unknown[] }).trail).toHaveLength(1);
  });

  it('bounds the outbox, counts what it drops, and reports the drops once delivery recovers', async () => {
    const p = probe('overflow');
    await p.setCollectorDown(true);
    for (let i = 0; i < 10; i++) {
      await p.decide(100, 'probe:overflow');
      await p.flushTelemetry();
    }
    let stats = await p.telemetryStats();
    expect(stats.outboxEvents).toBe(300);
    expect(stats.droppedUnreported).toBe(700);
    await p.setCollectorDown(false);
    await runDurableObjectAlarm(p);
    await p.flushTelemetry();
    stats = await p.telemetryStats();
    expect(stats.outboxEvents).toBe(0);
    expect(stats.droppedUnreported).toBe(0);
    expect(stats.droppedTotal).toBe(700);
    // The newest 300 decisions arrived; the drop report says how many did not.
    expect(await countFor('probe:overflow')).toBe(300);
    const res = await SELF.fetch(
      'http://keywarden.test/api/keys/kit.probe/probe:overflow/series?window=300&step=300',
    );
    const series = (await res.json()) as {
      points: { decisions: Record<string, number>; value: { sum: number } | null }[];
    };
    const dropped = series.points.reduce((n, pt) => n + (pt.decisions['telemetry.dropped'] ?? 0), 0);
    expect(dropped).toBe(1);
    expect(series.points.find((pt) => pt.decisions['telemetry.dropped'])?.value?.sum).toBe(700);
  });

  it('never reuses an event id across restarts', async () => {
    const name = 'restarts';
    await probe(name).decide(5, 'probe:restarts');
    await probe(name).flushTelemetry();
    const first = await probe(name).telemetryStats();
    await abortAllDurableObjects();
    await probe(name).decide(5, 'probe:restarts');
    await probe(name).flushTelemetry();
    const second = await probe(name).telemetryStats();
    expect(second.nextSeq).toBeGreaterThan(first.nextSeq);
    // Nothing after the restart was taken for a duplicate.
    expect(await countFor('probe:restarts')).toBe(10);
  });

  it('does nothing when telemetry is off', async () => {
    const p = probe('off');
    await p.setTelemetry(false);
    await p.decide(50, 'probe:off');
    await p.flushTelemetry();
    expect((await p.telemetryStats()).sent).toBe(0);
    expect(await countFor('probe:off')).toBe(0);
  });
});

describe('the alarm multiplexer', () => {
  it('keeps one alarm at the earliest timer and fires each timer once, when due', async () => {
    const p = probe('timers');
    const now = Date.now();
    const alarmAt = () => runInDurableObject(p, (_, state) => state.storage.getAlarm());
    await p.scheduleTimer('lease', 'a', now + 60_000);
    await p.scheduleTimer('debounce', 'b', now + 30_000);
    await p.scheduleTimer('lease', 'c', now + 120_000);
    expect(await alarmAt()).toBe(now + 30_000);
    await runInDurableObject(p, async (instance) => {
      instance.onTimer('lease');
      instance.onTimer('debounce');
      await instance.alarm();
    });
    expect(await p.fired()).toEqual(['debounce/b']);
    expect(await alarmAt()).toBe(now + 60_000);
    // Moving a timer later re-arms the alarm; cancelling the last one clears it.
    await p.scheduleTimer('lease', 'a', now + 180_000);
    expect(await alarmAt()).toBe(now + 120_000);
    await runInDurableObject(p, (instance) => {
      (instance as unknown as { timers: { cancel(k: string, n: string): void } }).timers.cancel('lease', 'a');
      (instance as unknown as { timers: { cancel(k: string, n: string): void } }).timers.cancel('lease', 'c');
    });
    expect(await alarmAt()).toBeNull();
  });
});
