import {
  abortAllDurableObjects,
  env,
  runDurableObjectAlarm,
  runInDurableObject,
  SELF,
} from 'cloudflare:test';
import { describe, expect, it, vi } from 'vitest';
import { event, postIngest } from '../test/events';
import { AE_WRITES_PER_INVOCATION } from './analytics';
import { Collector } from './client';
import type { DecisionEvent } from './contract';
import { shardOf } from './hash';
import type { CollectorShard } from './shard';
import { encodeShardBatch } from './shard-batch';

async function ingest(body: unknown, token?: string | null) {
  const { url, init } = postIngest(body, token);
  return SELF.fetch(url, init);
}

async function hotKeys(ns: string, window = 300, limit = 100) {
  const res = await SELF.fetch(
    `http://keywarden.test/api/hot-keys?ns=${encodeURIComponent(ns)}&window=${window}&limit=${limit}`,
  );
  expect(res.status).toBe(200);
  return (await res.json()) as { total: number; keys: { key: string; count: number; share: number }[] };
}

/** Lets the shard's alarm write every pending Analytics Engine point (250 per invocation). */
async function drainAnalytics(shard: CollectorShard): Promise<void> {
  while (shard.stats().aePending > 0) await shard.alarm();
}

describe('POST /ingest', () => {
  it('keeps the valid events of a mixed batch and says why each other one was refused', async () => {
    const ns = 'mixed.batch';
    const good1 = event({ ns, key: 'a', emitter: 'mixed', seq: 1 });
    const good2 = event({ ns, key: 'b', emitter: 'mixed', seq: 2, count: 3 });
    const res = await ingest({
      events: [
        good1,
        { ...event({ ns }), decision: 'acquired' },
        'not an event',
        good2,
        { ...event({ ns }), extra: true },
        { ...event({ ns }), key: 'k'.repeat(513) },
        { ...event({ ns }), id: 'no-seq' },
      ],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      accepted: number;
      duplicates: number;
      rejected: { index: number; code: string }[];
    };
    expect(body.accepted).toBe(2);
    expect(body.duplicates).toBe(0);
    expect(body.rejected.map((r) => [r.index, r.code])).toEqual([
      [1, 'invalid_decision'],
      [2, 'invalid_event'],
      [4, 'unknown_field'],
      [5, 'too_long'],
      [6, 'invalid_id'],
    ]);
    // Check the kept events are what the API counts.
    const hot = await hotKeys(ns);
    expect(hot.total).toBe(4);
    expect(hot.keys).toMatchObject([
      { key: 'b', count: 3, share: 0.75 },
      { key: 'a', count: 1, share: 0.25 },
    ]);
  });

  it('counts a batch replayed three times once', async () => {
    const ns = 'replay.batch';
    const events = Array.from({ length: 300 }, (_, i) =>
      event({ ns, key: `k${i % 17}`, emitter: `replayer-${i % 5}`, seq: i, count: 1 + (i % 3) }),
    );
    const sent = events.reduce((n, e) => n + e.count, 0);
    const first = (await (await ingest({ events })).json()) as { accepted: number; duplicates: number };
    expect(first).toMatchObject({ accepted: 300, duplicates: 0 });
    for (let i = 0; i < 2; i++) {
      const again = (await (await ingest({ events })).json()) as { accepted: number; duplicates: number };
      expect(again).toMatchObject({ accepted: 0, duplicates: 300 });
    }
    // A batch that overlaps the old one takes only what is new.
    const overlap = [...events.slice(250), event({ ns, key: 'k0', emitter: 'replayer-0', seq: 10_000 })];
    expect(await (await ingest({ events: overlap })).json()).toMatchObject({ accepted: 1, duplicates: 50 });
    const hot = await hotKeys(ns);
    expect(hot.total).toBe(sent + 1);
  });

  it('answers 401 without a token or with a wrong one', async () => {
    const body = { events: [event()] };
    for (const token of [null, 'wrong-token', '']) {
      const res = await ingest(body, token);
      expect(res.status).toBe(401);
      const err = (await res.json()) as { error: { code: string; message: string } };
      expect(err.error.code).toBe('unauthorized');
    }
  });

  it('answers 400 for a body that is not an object with an events array', async () => {
    for (const body of [
      '{not json',
      '[]',
      '"events"',
      '{"events":{}}',
      '{}',
      '{"events":[],"more":1}',
      'null',
    ]) {
      const res = await ingest(body);
      expect(res.status, body).toBe(400);
      const err = (await res.json()) as { error: { code: string; message: string } };
      expect(err.error.message.length).toBeGreaterThan(0);
    }
  });

  it('answers 413 over 1 MiB or 1,000 events, and keeps nothing of it', async () => {
    const ns = 'too.large';
    const big = { events: [event({ ns, key: 'x'.repeat(400) })], pad: 'p'.repeat(1024 * 1024) };
    const res = await ingest(big);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
    const many = { events: Array.from({ length: 1001 }, () => event({ ns })) };
    const res2 = await ingest(many);
    expect(res2.status).toBe(413);
    expect(((await res2.json()) as { error: { code: string } }).error.code).toBe('batch_too_large');
    // A chunked body without a length is cut off too.
    const stream = new ReadableStream({
      start(ctl) {
        for (let i = 0; i < 17; i++) ctl.enqueue(new TextEncoder().encode('x'.repeat(64 * 1024)));
        ctl.close();
      },
    });
    const res3 = await SELF.fetch('http://keywarden.test/ingest', {
      method: 'POST',
      headers: { authorization: 'Bearer test-ingest-token' },
      body: stream,
    });
    expect(res3.status).toBe(413);
    expect((await hotKeys(ns)).total).toBe(0);
  });

  it('refuses events from a skewed clock or past retention, one by one', async () => {
    const now = Date.now();
    const res = await ingest({
      events: [
        event({ ts: now + 10 * 60_000 }),
        event({ ts: now - 8 * 24 * 3600_000 }),
        event({ ns: 'clock.ok' }),
      ],
    });
    const body = (await res.json()) as { accepted: number; rejected: { index: number; code: string }[] };
    expect(body.accepted).toBe(1);
    expect(body.rejected.map((r) => r.code)).toEqual(['clock_skew', 'too_old']);
  });
});

describe('routing to collector shards', () => {
  it('sends each key to its one shard, and keys spread over all shards', async () => {
    const ns = 'routing.spread';
    const collector = new Collector(env);
    expect(collector.shards).toBe(4);
    const before = await collector.stats();
    const events = Array.from({ length: 400 }, (_, i) =>
      event({ ns, key: `user:${i}`, emitter: 'router', seq: i }),
    );
    await collector.ingest(events);
    const after = await collector.stats();
    const expected = [0, 0, 0, 0];
    for (const e of events) expected[shardOf(e.ns, e.key, 4)]!++;
    const got = after.map((s, i) => s.accepted - before[i]!.accepted);
    expect(got).toEqual(expected);
    for (const n of got) expect(n).toBeGreaterThan(60);
  });
});

describe('CollectorShard storage', () => {
  function shardFor(ns: string, key: string): DurableObjectStub<CollectorShard> {
    const i = shardOf(ns, key, 4);
    return env.COLLECTOR_SHARD.get(env.COLLECTOR_SHARD.idFromName(`shard-${i}`));
  }

  it('journals each ingest call, folds it into rollups in one flush, and survives a restart', async () => {
    const ns = 'journal.restart';
    let stub = shardFor(ns, 'k');
    const events = Array.from({ length: 50 }, (_, i) =>
      event({ ns, key: 'k', emitter: 'journaler', seq: i }),
    );
    await stub.ingest(encodeShardBatch(events.slice(0, 25)));
    await stub.ingest(encodeShardBatch(events.slice(25)));
    const sql = (s: DurableObjectState, q: string) => s.storage.sql.exec<{ n: number }>(q).one().n;
    // Check: both calls are in the journal, no rollup row yet.
    await runInDurableObject(stub, (_, state) => {
      expect(sql(state, 'SELECT count(*) AS n FROM kw_journal')).toBeGreaterThanOrEqual(2);
      expect(sql(state, `SELECT count(*) AS n FROM kw_seconds WHERE ns = '${ns}'`)).toBe(0);
    });
    // A restart before the flush loses nothing and dedupes the replay.
    const acceptedBefore = (await stub.stats()).accepted;
    await abortAllDurableObjects();
    stub = shardFor(ns, 'k');
    expect(await stub.ingest(encodeShardBatch(events))).toEqual({ accepted: 0, duplicates: 50 });
    // Check: the replayed journal still counts as accepted in the shard's health figures.
    expect((await stub.stats()).accepted).toBe(acceptedBefore);
    await runInDurableObject(stub, (instance, state) => {
      instance.flush();
      expect(sql(state, 'SELECT count(*) AS n FROM kw_journal')).toBe(0);
      // One row per (key, decision, second), not one per event.
      expect(sql(state, `SELECT count(*) AS n FROM kw_seconds WHERE ns = '${ns}'`)).toBeLessThanOrEqual(2);
      expect(sql(state, `SELECT sum(count) AS n FROM kw_seconds WHERE ns = '${ns}'`)).toBe(50);
      // Check: the minute is still open, so it is not written yet (it is written whole when it closes).
      expect(sql(state, `SELECT count(*) AS n FROM kw_minutes WHERE ns = '${ns}'`)).toBe(0);
    });
    // After the flush, a restart still dedupes (the watermarks were flushed with the rollups).
    await abortAllDurableObjects();
    stub = shardFor(ns, 'k');
    expect(await stub.ingest(encodeShardBatch(events))).toEqual({ accepted: 0, duplicates: 50 });
    expect((await hotKeys(ns)).total).toBe(50);
    // Check: the open minute came back from the seconds after the restart: a 2 h window (minutes) sees it.
    expect((await hotKeys(ns, 7200)).total).toBe(50);
    await runInDurableObject(stub, (_, state) => {
      expect(sql(state, `SELECT sum(count) AS n FROM kw_minutes WHERE ns = '${ns}'`)).toBe(50);
    });
  });

  it('answers concurrent calls only once their shared journal row is written, and a restart keeps them all', async () => {
    const ns = 'journal.group';
    let stub = shardFor(ns, 'k');
    const calls = Array.from({ length: 20 }, (_, c) =>
      Array.from({ length: 10 }, (_, i) => event({ ns, key: 'k', emitter: `group-${c}`, seq: i })),
    );
    const answers = await Promise.all(calls.map((events) => stub.ingest(encodeShardBatch(events))));
    expect(answers.every((a) => a.accepted === 10 && a.duplicates === 0)).toBe(true);
    // Check: the calls shared journal rows (group commit), and nothing was flushed yet.
    const stats = await stub.stats();
    expect(stats.journalCallsPerWrite).toBeGreaterThan(1);
    expect(stats.journalRows).toBeLessThan(20);
    // A restart before any flush: every answered call comes back from the journal, once.
    await abortAllDurableObjects();
    stub = shardFor(ns, 'k');
    const again = await Promise.all(calls.map((events) => stub.ingest(encodeShardBatch(events))));
    expect(again.every((a) => a.accepted === 0 && a.duplicates === 10)).toBe(true);
    expect((await hotKeys(ns)).total).toBe(200);
  });

  it('replays a journal row written before shard batches (the accepted events themselves)', async () => {
    const ns = 'journal.legacy';
    let stub = shardFor(ns, 'k');
    const events = Array.from({ length: 5 }, (_, i) => event({ ns, key: 'k', emitter: 'legacy', seq: i }));
    await runInDurableObject(stub, (_, state) => {
      state.storage.sql.exec('INSERT INTO kw_journal (events) VALUES (?)', JSON.stringify(events));
    });
    await abortAllDurableObjects();
    stub = shardFor(ns, 'k');
    // Check: the old row came back as accepted events, and they dedupe like any other.
    expect(await stub.ingest(encodeShardBatch(events))).toEqual({ accepted: 0, duplicates: 5 });
    expect((await hotKeys(ns)).total).toBe(5);
  });

  it('enforces retention from the alarm: seconds for an hour, minutes for a week, trail for a day', async () => {
    const ns = 'retention.alarm';
    const stub = shardFor(ns, 'old');
    const now = Date.now();
    const twoHours = now - 2 * 3600_000;
    const twoDays = now - 2 * 24 * 3600_000;
    await stub.ingest(
      encodeShardBatch([
        event({ ns, key: 'old', emitter: 'retention', seq: 1, ts: twoHours, requestId: 'req-two-hours' }),
        event({ ns, key: 'old', emitter: 'retention', seq: 2, ts: twoDays, requestId: 'req-two-days' }),
        event({ ns, key: 'old', emitter: 'retention', seq: 3, ts: now, requestId: 'req-now' }),
      ]),
    );
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await runInDurableObject(stub, (_, state) => {
      const q = (sql: string) => state.storage.sql.exec<{ n: number }>(sql, ns).one().n;
      expect(q('SELECT count(*) AS n FROM kw_seconds WHERE ns = ?')).toBe(1);
      // The two old minutes were closed when their events came (added at once); `now`'s is still open.
      expect(q('SELECT count(*) AS n FROM kw_minutes WHERE ns = ?')).toBe(2);
      expect(q('SELECT count(*) AS n FROM kw_trail_events WHERE ns = ?')).toBe(2);
    });
    // Check: the alarm re-armed itself.
    await runInDurableObject(stub, async (_, state) => expect(await state.storage.getAlarm()).not.toBeNull());
    const trail = await SELF.fetch('http://keywarden.test/api/lookup?requestId=req-two-hours');
    expect(((await trail.json()) as { trail: DecisionEvent[] }).trail.map((e) => e.id)).toEqual([
      'retention:1',
    ]);
  });

  it('writes every accepted event to Analytics Engine with the documented mapping, 250 per invocation', async () => {
    const ns = 'ae.mapping';
    const stub = shardFor(ns, 'order:9');
    const events = Array.from({ length: 600 }, (_, i) =>
      event({
        ns,
        key: 'order:9',
        emitter: 'ae',
        seq: i,
        requestId: `req-${i}`,
        traceId: 'trace-abc',
        value: i,
        durationMs: 2,
        shard: 1,
        epoch: 3,
      }),
    );
    const calls = await runInDurableObject(stub, async (instance) => {
      instance.flush(); // what earlier tests left in this shard goes to AE first
      const dataset = (instance as unknown as { env: Env }).env.KEYWARDEN_EVENTS;
      const spy = vi.spyOn(dataset, 'writeDataPoint');
      await drainAnalytics(instance);
      spy.mockClear();
      await instance.ingest(encodeShardBatch(events));
      const afterFirst = spy.mock.calls.length;
      await instance.alarm();
      const afterAlarm = spy.mock.calls.length;
      await instance.ingest(encodeShardBatch([]));
      const points = spy.mock.calls.map((c) => c[0]);
      spy.mockRestore();
      return { afterFirst, afterAlarm, points, stats: instance.stats() };
    });
    expect(calls.afterFirst).toBe(AE_WRITES_PER_INVOCATION);
    expect(calls.afterAlarm).toBe(2 * AE_WRITES_PER_INVOCATION);
    // Check: each event with a requestId has its own point, and its rollup row writes none.
    expect(calls.points.filter((p) => p!.blobs![0] === ns)).toHaveLength(600);
    expect(calls.points[0]).toEqual({
      indexes: [`${ns}:order:9`],
      blobs: [ns, 'order:9', 'idempotency', 'applied', 'req-0', 'trace-abc', 'ae:0', ''],
      doubles: [1, 0, 2, 1, 3, 0, 0, 1, 1, events[0]!.ts],
    });
    expect(calls.stats.aeDropped).toBe(0);
  });

  it('coalesces identical decisions without a requestId into one weighted data point', async () => {
    const ns = 'ae.coalesce';
    const stub = shardFor(ns, 'tenant:1');
    const events = Array.from({ length: 40 }, (_, i) =>
      event({
        ns,
        key: 'tenant:1',
        emitter: 'coalesce',
        seq: i,
        pattern: 'rate_limit',
        decision: 'allowed',
        value: i,
      }),
    );
    const points = await runInDurableObject(stub, async (instance) => {
      const spy = vi.spyOn((instance as unknown as { env: Env }).env.KEYWARDEN_EVENTS, 'writeDataPoint');
      await instance.ingest(encodeShardBatch(events));
      // Check: rows get their points once they are flushed, at the next invocation.
      const beforeFlush = spy.mock.calls.filter((c) => c[0]!.blobs![0] === ns).length;
      instance.flush();
      await drainAnalytics(instance);
      const p = spy.mock.calls.map((c) => c[0]!).filter((point) => point.blobs![0] === ns);
      spy.mockRestore();
      expect(beforeFlush).toBe(0);
      return p;
    });
    expect(points).toHaveLength(1);
    // count 40, value sum 0+…+39, min 0, max 39
    // A row's point carries its second as the decision time (one point per key, decision and second).
    expect(points[0]!.doubles).toEqual([
      40,
      780,
      0,
      -1,
      0,
      0,
      39,
      1,
      0,
      events[0]!.ts - (events[0]!.ts % 1000),
    ]);
    expect(points[0]!.blobs![6]).toBe('');
  });
});

describe('GET /api/hot-keys', () => {
  it('counts exactly what was sent, per key, across shards', async () => {
    const ns = 'hot.exact';
    const sent = new Map<string, number>();
    const events: DecisionEvent[] = [];
    for (let i = 0; i < 900; i++) {
      const key = `order:${i % 7 === 0 ? 'hot' : i % 31}`;
      const count = 1 + (i % 2);
      sent.set(key, (sent.get(key) ?? 0) + count);
      events.push(event({ ns, key, emitter: 'hot-exact', seq: i, count }));
    }
    const res = (await (await ingest({ events })).json()) as { accepted: number };
    expect(res.accepted).toBe(900);
    const hot = await hotKeys(ns, 60, 1000);
    const total = [...sent.values()].reduce((a, b) => a + b, 0);
    expect(hot.total).toBe(total);
    expect(new Map(hot.keys.map((k) => [k.key, k.count]))).toEqual(sent);
    expect(hot.keys[0]!.key).toBe('order:hot');
    const top = (await hotKeys(ns, 60, 3)).keys;
    expect(top).toHaveLength(3);
  });

  it('refuses bad parameters with a 400 that says what to fix', async () => {
    for (const q of ['', '?ns=x&window=0', '?ns=x&window=abc', '?ns=x&limit=100000', '?ns=x&pattern=nope']) {
      const res = await SELF.fetch(`http://keywarden.test/api/hot-keys${q}`);
      expect(res.status, q).toBe(400);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toMatch(/parameter/);
    }
  });
});
