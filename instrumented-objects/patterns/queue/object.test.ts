import {
  abortAllDurableObjects,
  env,
  runDurableObjectAlarm,
  runInDurableObject,
  SELF,
} from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { Collector, parseEventId } from '../../../collector';
import { answered, flushTelemetry, runConformance } from '../../conformance';
import { objectFor } from '../../kit';
import type { Delivery, EnqueueResult, QueueObject } from './object';

const NS = 'test.queue';
const queue = (key: string, ns = NS) => objectFor(env.QUEUE, ns, key);
const AUTH = { authorization: 'Bearer test-api-token' };
const OPS = { authorization: 'Bearer test-operator-token' };

/**
 * Steps the object's clock by hand (test-only; no route takes a time). It starts a day ahead of the
 * real clock, so the alarms it sets never fire by themselves: the test fires them.
 */
async function fakeClock(stub: DurableObjectStub<QueueObject>, clock = { now: Date.now() + 86_400_000 }) {
  await runInDurableObject(stub, (o) => {
    (o as unknown as { clock: () => number }).clock = () => clock.now;
  });
  return clock;
}

/** Fires every pending timer (the alarm runs the earliest each time). */
async function fireAllAlarms(stub: DurableObjectStub<QueueObject>): Promise<number> {
  let n = 0;
  while (await runDurableObjectAlarm(stub)) n++;
  return n;
}

/** The message's events in the order the object made them (one emitter: its sequence numbers). */
async function trail(id: string) {
  const seq = (e: { id: string }) => parseEventId(e.id)!.seq;
  return (await new Collector(env).lookup(id))
    .filter((e) => e.pattern === 'queue')
    .sort((a, b) => seq(a) - seq(b));
}

describe('the queue object', () => {
  it('delivers oldest first under a lease, and an ack removes the message for good', async () => {
    const key = 'basic';
    const q = queue(key);
    const clock = await fakeClock(q);
    const t0 = clock.now;
    for (const id of ['basic-a', 'basic-b', 'basic-c']) {
      expect(await q.enqueue({ ns: NS, key, id, body: { id } })).toMatchObject({
        decision: 'enqueued',
        duplicate: false,
      });
    }
    clock.now += 5000;
    const first = await q.receive({ ns: NS, key, max: 2 });
    expect(first.messages.map((m) => [m.id, m.attempt, m.leaseUntil, m.body])).toEqual([
      ['basic-a', 1, clock.now + 30_000, { id: 'basic-a' }],
      ['basic-b', 1, clock.now + 30_000, { id: 'basic-b' }],
    ]);
    expect(first).toMatchObject({ depth: 3, oldestAgeMs: 5000 });
    expect(await q.inspect('basic-a')).toMatchObject({
      found: true,
      state: 'leased',
      attempts: 1,
      enqueuedAt: t0,
    });
    const a = first.messages[0]!;
    expect(await q.ack({ ns: NS, key, id: a.id, leaseToken: a.leaseToken })).toMatchObject({
      decision: 'acked',
      replayed: false,
      depth: 2,
    });
    // The same ack again (its answer was lost) is answered as done, and acks nothing more.
    expect(await q.ack({ ns: NS, key, id: a.id, leaseToken: a.leaseToken })).toMatchObject({
      acked: true,
      replayed: true,
    });
    expect((await q.receive({ ns: NS, key, max: 10 })).messages.map((m) => m.id)).toEqual(['basic-c']);
    expect(await q.inspect('basic-a')).toMatchObject({ state: 'acked', ackedAt: clock.now });
    expect(await q.inspect()).toMatchObject({
      ns: NS,
      key,
      depth: 2,
      leased: 2,
      ready: 0,
      ackedTotal: 1,
      deliveredTotal: 3,
      oldestAgeMs: 5000,
    });
    // Check: one event per decision, requestId = message id, value = depth after it; the replayed
    // ack is one `duplicate`.
    await flushTelemetry(q);
    expect((await trail('basic-a')).map((e) => [e.decision, e.value, e.ns, e.key])).toEqual([
      ['enqueued', 1, NS, key],
      ['delivered', 3, NS, key],
      ['acked', 2, NS, key],
      ['duplicate', 2, NS, key],
    ]);
  });

  it('makes a message visible again after an exponential backoff when its lease lapses, then dead-letters it', async () => {
    const key = 'backoff';
    const q = queue(key);
    const clock = await fakeClock(q);
    await q.configure({ ns: NS, key, config: { maxAttempts: 3, backoffBaseMs: 1000, backoffCapMs: 10_000 } });
    await q.enqueue({ ns: NS, key, id: 'backoff-m', body: 'm' });
    const receive = () => q.receive({ ns: NS, key, leaseMs: 5000 });

    expect((await receive()).messages[0]).toMatchObject({ attempt: 1 });
    // Check: the lease timer is what retries it — no consumer call needed.
    expect(await fireAllAlarms(q)).toBe(1);
    let seen = await q.inspect('backoff-m');
    expect(seen).toMatchObject({
      state: 'delayed',
      attempts: 1,
      visibleAt: clock.now + 1000,
      leaseUntil: null,
    });
    expect((await receive()).messages).toEqual([]);
    clock.now += 1000;
    expect((await receive()).messages[0]).toMatchObject({ attempt: 2 });
    await fireAllAlarms(q);
    seen = await q.inspect('backoff-m');
    expect(seen).toMatchObject({ state: 'delayed', visibleAt: clock.now + 2000 });
    clock.now += 2000;
    const third = (await receive()).messages[0]!;
    expect(third.attempt).toBe(3);
    // The third delivery was the last: a nack now buries it.
    expect(await q.nack({ ns: NS, key, id: third.id, leaseToken: third.leaseToken })).toMatchObject({
      decision: 'dead_lettered',
      attempts: 3,
      depth: 0,
    });
    expect(await q.deadLetters({ ns: NS, key })).toMatchObject({
      total: 1,
      deadLetters: [{ id: 'backoff-m', body: 'm', attempts: 3, reason: 'nacked' }],
    });
    expect(await q.inspect()).toMatchObject({
      depth: 0,
      deadLetters: 1,
      retriedTotal: 2,
      deadLetteredTotal: 1,
    });
    expect(await q.enqueue({ ns: NS, key, id: 'backoff-m', body: 'm' })).toMatchObject({
      duplicate: true,
      state: 'dead_lettered',
    });
    // An operator puts it back: a fresh message with the same id and a fresh attempt count.
    expect(await q.redrive({ ns: NS, key, id: 'backoff-m' })).toMatchObject({
      decision: 'enqueued',
      depth: 1,
    });
    expect((await receive()).messages[0]).toMatchObject({ id: 'backoff-m', attempt: 1 });
    expect(await q.redrive({ ns: NS, key, id: 'backoff-m' })).toMatchObject({ reason: 'not_dead' });
    await flushTelemetry(q);
    expect((await trail('backoff-m')).map((e) => e.decision)).toEqual([
      'enqueued',
      'delivered',
      'retried',
      'delivered',
      'retried',
      'delivered',
      'dead_lettered',
      'duplicate',
      'enqueued',
      'delivered',
    ]);
  });

  it('caps the backoff, and handles a lapsed lease at the next call even before the alarm runs', async () => {
    const key = 'cap';
    const q = queue(key);
    const clock = await fakeClock(q);
    await q.configure({ ns: NS, key, config: { maxAttempts: 10, backoffBaseMs: 1000, backoffCapMs: 3000 } });
    await q.enqueue({ ns: NS, key, id: 'cap-m', body: null });
    const visibleAfter: number[] = [];
    for (let i = 0; i < 4; i++) {
      const m = (await q.receive({ ns: NS, key, leaseMs: 100 })).messages[0]!;
      clock.now = m.leaseUntil;
      expect((await q.receive({ ns: NS, key })).messages).toEqual([]);
      const seen = await q.inspect('cap-m');
      visibleAfter.push((seen as { visibleAt: number }).visibleAt - clock.now);
      clock.now += 3000;
    }
    expect(visibleAfter).toEqual([1000, 2000, 3000, 3000]);
  });

  it('refuses an ack or nack with a stale lease token', async () => {
    const key = 'stale';
    const q = queue(key);
    const clock = await fakeClock(q);
    await q.configure({ ns: NS, key, config: { backoffBaseMs: 0 } });
    await q.enqueue({ ns: NS, key, id: 'stale-m', body: 1 });
    const first = (await q.receive({ ns: NS, key, leaseMs: 1000 })).messages[0]!;
    clock.now += 1000;
    // The lease lapsed: its holder may no longer ack (the message was retried).
    expect(await q.ack({ ns: NS, key, id: 'stale-m', leaseToken: first.leaseToken })).toEqual({
      acked: false,
      id: 'stale-m',
      reason: 'lease_expired',
    });
    const second = (await q.receive({ ns: NS, key, leaseMs: 1000 })).messages[0]!;
    expect(second.attempt).toBe(2);
    expect(await q.ack({ ns: NS, key, id: 'stale-m', leaseToken: first.leaseToken })).toMatchObject({
      reason: 'stale_lease',
    });
    expect(await q.nack({ ns: NS, key, id: 'stale-m', leaseToken: first.leaseToken })).toMatchObject({
      reason: 'stale_lease',
    });
    expect(await q.ack({ ns: NS, key, id: 'stale-m', leaseToken: second.leaseToken })).toMatchObject({
      acked: true,
    });
    expect(await q.ack({ ns: NS, key, id: 'stale-m', leaseToken: first.leaseToken })).toMatchObject({
      reason: 'already_acked',
    });
    expect(await q.nack({ ns: NS, key, id: 'stale-m', leaseToken: second.leaseToken })).toMatchObject({
      reason: 'already_acked',
    });
    expect(await q.ack({ ns: NS, key, id: 'nope', leaseToken: 'x' })).toMatchObject({ reason: 'not_found' });
    // Check: the stale lease's timer, if it runs late, changes nothing.
    await fireAllAlarms(q);
    expect(await q.inspect()).toMatchObject({ depth: 0, ackedTotal: 1, retriedTotal: 1 });
    // Check: every refusal is one `refused` event, among the message's other decisions.
    await flushTelemetry(q);
    expect((await trail('stale-m')).map((e) => e.decision)).toEqual([
      'enqueued',
      'delivered',
      'retried',
      'refused', // ack, lease_expired
      'delivered',
      'refused', // ack, stale_lease
      'refused', // nack, stale_lease
      'acked',
      'refused', // ack, already_acked
      'refused', // nack, already_acked
    ]);
    expect(await trail('nope')).toMatchObject([{ decision: 'refused', ns: NS, key, value: 0 }]);
  });

  it("emits refused and duplicate events with the caller's trace, depth and duration", async () => {
    const key = 'trace';
    const q = queue(key);
    const trace = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' };
    await q.enqueue({ ns: NS, key, id: 'trace-m', body: 1 });
    await q.enqueue({ ns: NS, key, id: 'trace-m', body: 1, trace });
    const m = (await q.receive({ ns: NS, key })).messages[0]!;
    await q.nack({ ns: NS, key, id: m.id, leaseToken: 'forged', trace });
    await q.ack({ ns: NS, key, id: m.id, leaseToken: m.leaseToken });
    await q.ack({ ns: NS, key, id: m.id, leaseToken: m.leaseToken, trace });
    await flushTelemetry(q);
    const events = await trail('trace-m');
    expect(events.map((e) => [e.decision, e.value])).toEqual([
      ['enqueued', 1],
      ['duplicate', 1],
      ['delivered', 1],
      ['refused', 1],
      ['acked', 0],
      ['duplicate', 0],
    ]);
    for (const e of events.filter((e) => e.decision === 'duplicate' || e.decision === 'refused')) {
      expect(e).toMatchObject({ ns: NS, key, requestId: 'trace-m', count: 1, ...trace });
      expect(e.durationMs).toBeGreaterThanOrEqual(0);
    }
  });

  it('enqueues a message id once, however often it is sent', async () => {
    const key = 'dedupe';
    const q = queue(key);
    const sent = await Promise.all(
      Array.from({ length: 5 }, () => q.enqueue({ ns: NS, key, id: 'dedupe-x', body: { v: 1 } })),
    );
    expect(sent.filter((r) => !r.duplicate)).toHaveLength(1);
    expect(await q.enqueue({ ns: NS, key, id: 'dedupe-x', body: { v: 2 } })).toMatchObject({
      duplicate: true,
      state: 'ready',
      sameBody: false,
      depth: 1,
    });
    const m = (await q.receive({ ns: NS, key })).messages[0]!;
    await q.ack({ ns: NS, key, id: m.id, leaseToken: m.leaseToken });
    expect(await q.enqueue({ ns: NS, key, id: 'dedupe-x', body: { v: 1 } })).toMatchObject({
      duplicate: true,
      state: 'acked',
      depth: 0,
    });
    // A message without an id gets one.
    const anonymous = await q.enqueue({ ns: NS, key, body: 'anon' });
    expect(anonymous.id).toMatch(/^[0-9a-f-]{36}$/);
    await flushTelemetry(q);
    // Check: one event per enqueue: the first is `enqueued`, every other a `duplicate`.
    expect((await trail('dedupe-x')).map((e) => e.decision)).toEqual([
      'enqueued',
      ...Array(5).fill('duplicate'),
      'delivered',
      'acked',
      'duplicate',
    ]);
  });

  it('loses no message and acks none twice with concurrent consumers, lapses, nacks and a restart', async () => {
    const key = 'storm';
    const total = 60;
    let q = queue(key);
    let clock = await fakeClock(q);
    await q.configure({ ns: NS, key, config: { maxAttempts: 4, backoffBaseMs: 500, backoffCapMs: 2000 } });
    // Producers: every message sent once, a third of them twice at once.
    const ids = Array.from({ length: total }, (_, i) => `storm-${i}`);
    await Promise.all(
      [...ids, ...ids.filter((_, i) => i % 3 === 0)].map((id) => q.enqueue({ ns: NS, key, id, body: id })),
    );
    const successfulAcks = new Map<string, number>();
    let restarted = false;
    const consume = async (m: Delivery) => {
      const roll = Math.random();
      if (roll < 0.2) return; // the consumer dies holding the lease
      if (roll < 0.4) return void (await q.nack({ ns: NS, key, id: m.id, leaseToken: m.leaseToken }));
      // Ack, sometimes twice at once (a retried ack): at most one of them acks.
      const tries = roll < 0.6 ? 2 : 1;
      const answers = await Promise.all(
        Array.from({ length: tries }, () => q.ack({ ns: NS, key, id: m.id, leaseToken: m.leaseToken })),
      );
      const fresh = answers.filter((a) => a.acked && !a.replayed).length;
      successfulAcks.set(m.id, (successfulAcks.get(m.id) ?? 0) + fresh);
    };
    for (let round = 0; round < 50; round++) {
      // Four consumers at once, each taking a batch and working through it concurrently.
      const batches = await Promise.all(
        Array.from({ length: 4 }, () => q.receive({ ns: NS, key, max: 5, leaseMs: 10_000 })),
      );
      const leased = batches.flatMap((b) => b.messages.map((m) => m.id));
      expect(new Set(leased).size, 'no message is leased to two consumers at once').toBe(leased.length);
      await Promise.all(batches.flatMap((b) => b.messages.map(consume)));
      if (round === 3) {
        await flushTelemetry(q);
        await abortAllDurableObjects();
        q = queue(key);
        clock = await fakeClock(q, clock);
        restarted = true;
      }
      await fireAllAlarms(q);
      clock.now += 2000;
      if (((await q.inspect()) as { depth: number }).depth === 0) break;
    }
    // Check: every message ended acked exactly once, or dead-lettered after its attempts; none lost.
    expect(restarted).toBe(true);
    const summary = await q.inspect();
    expect(summary).toMatchObject({ depth: 0, enqueuedTotal: total });
    let acked = 0;
    for (const id of ids) {
      const seen = await q.inspect(id);
      expect(seen.found, id).toBe(true);
      const state = (seen as { state: string }).state;
      expect(['acked', 'dead_lettered'], id).toContain(state);
      if (state === 'acked') {
        acked++;
        expect(successfulAcks.get(id), id).toBe(1);
      } else {
        expect(successfulAcks.get(id) ?? 0, id).toBe(0);
        expect((seen as { attempts: number }).attempts).toBe(4);
      }
    }
    expect(summary).toMatchObject({ ackedTotal: acked, deadLetteredTotal: total - acked });
  });
});

describe('the queue routes', () => {
  const request =
    (root: string, auth: Record<string, string>) =>
    (method: string, key: string, action: string, body?: unknown) =>
      SELF.fetch(`http://x${root}/queue/${key}/${action}${action.includes('?') ? '&' : '?'}ns=${NS}`, {
        method,
        headers: { ...auth, 'content-type': 'application/json' },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
  /** The application's routes, with the API token. */
  const send = request('/objects', AUTH);
  /** The operator's routes (config changes, redrives), with the operator token. */
  const ops = request('/ops/objects', OPS);

  it('enqueues, leases, acks, refuses a stale ack with 409, and reads dead letters and config', async () => {
    const key = 'http';
    const created = await send('POST', key, 'enqueue', { id: 'http-1', body: { hello: 'world' } });
    expect(created.status).toBe(201);
    expect((await send('POST', key, 'enqueue', { id: 'http-1', body: { hello: 'world' } })).status).toBe(200);
    const received = (await (await send('POST', key, 'receive', { max: 10 })).json()) as {
      messages: Delivery[];
    };
    expect(received.messages).toMatchObject([{ id: 'http-1', body: { hello: 'world' }, attempt: 1 }]);
    const bad = await send('POST', key, 'ack', { id: 'http-1', leaseToken: 'not-the-token' });
    expect(bad.status).toBe(409);
    expect(await bad.json()).toMatchObject({ acked: false, error: { code: 'stale_lease' } });
    const ok = await send('POST', key, 'ack', { id: 'http-1', leaseToken: received.messages[0]!.leaseToken });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ decision: 'acked' });
    expect((await send('POST', key, 'nack', { id: 'ghost', leaseToken: 't' })).status).toBe(404);
    expect(await (await send('GET', key, 'inspect?requestId=http-1')).json()).toMatchObject({
      state: 'acked',
    });
    expect(await (await send('GET', key, 'dead-letters')).json()).toEqual({ deadLetters: [], total: 0 });
    const notDead = await ops('POST', key, 'redrive', { id: 'http-1' });
    expect(notDead.status).toBe(404);
    expect(await notDead.json()).toMatchObject({ error: { code: 'not_dead' } });
    expect(await (await ops('PUT', key, 'config', { maxAttempts: 2 })).json()).toMatchObject({
      maxAttempts: 2,
      leaseMs: 30_000,
    });
    expect(await (await send('GET', key, 'config')).json()).toMatchObject({ maxAttempts: 2 });
    expect(await (await ops('GET', key, 'config')).json()).toMatchObject({ maxAttempts: 2 });
  });

  it('changes the retry policy and redrives only with the operator token', async () => {
    const key = 'http-ops';
    await ops('PUT', key, 'config', { maxAttempts: 1, backoffBaseMs: 0 });
    await send('POST', key, 'enqueue', { id: 'ops-1', body: 1 });
    const m = ((await (await send('POST', key, 'receive', {})).json()) as { messages: Delivery[] })
      .messages[0]!;
    await send('POST', key, 'nack', { id: m.id, leaseToken: m.leaseToken });
    const asApp = request('/ops/objects', AUTH);
    for (const [method, action, body] of [
      ['PUT', 'config', { maxAttempts: 5 }],
      ['POST', 'redrive', { id: 'ops-1' }],
      ['GET', 'config', undefined],
    ] as const) {
      // Check: the API token opens no operator route …
      const denied = await asApp(method, key, action, body);
      expect(denied.status, `${method} ${action}`).toBe(401);
      expect(((await denied.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
      // … and the application's routes no longer change the queue.
      if (method !== 'GET') expect((await send(method, key, action, body)).status).toBe(404);
    }
    expect(await queue(key).inspect()).toMatchObject({ config: { maxAttempts: 1 }, deadLetters: 1 });
    // The operator redrives it.
    const redriven = await ops('POST', key, 'redrive', { id: 'ops-1' });
    expect(redriven.status).toBe(200);
    expect(await redriven.json()).toMatchObject({ decision: 'enqueued', id: 'ops-1', depth: 1 });
  });

  it('answers bad input with a 4xx that says what to fix', async () => {
    const cases: [string, unknown][] = [
      ['enqueue', {}],
      ['enqueue', { body: 1, id: '' }],
      ['enqueue', { body: 1, delayMs: -1 }],
      ['enqueue', { body: 1, priority: 2 }],
      ['receive', { max: 0 }],
      ['receive', { max: 101 }],
      ['receive', { leaseMs: 0 }],
      ['ack', { id: 'x' }],
      ['nack', { leaseToken: 'x' }],
      ['receive', '[1'],
    ];
    for (const [action, body] of cases) {
      const res = await send('POST', 'http-bad', action, body);
      expect(res.status, `${action} ${JSON.stringify(body)}`).toBe(400);
    }
    expect((await ops('PUT', 'http-bad', 'config', { maxAttempts: 0 })).status).toBe(400);
    expect((await send('POST', 'http-bad', 'enqueue', { body: 'x'.repeat(140_000) })).status).toBe(413);
    expect(await queue('http-bad').inspect()).toMatchObject({ depth: 0, enqueuedTotal: 0 });
  });
});

// The shared suite: each request enqueues message `requestId` (retries are `duplicate` events).
// `settle` then drains the queue the way consumers do — some messages nacked, some abandoned until
// their lease timer fires, the rest acked (some acks sent twice) — and the check demands every
// message acked exactly once. The trail of each id is its enqueue plus what the drain did.
type QueueStub = ReturnType<typeof queue>;
type Drained = { events: Map<string, string[]>; freshAcks: Map<string, number> };

runConformance<QueueStub, EnqueueResult>({
  pattern: 'queue',
  callers: 16,
  object: (ns, key) => objectFor(env.QUEUE, ns, key),
  setup: async (q, { ns, key }) => {
    await q.configure({ ns, key, config: { maxAttempts: 10, backoffBaseMs: 0, backoffCapMs: 0 } });
  },
  operation: (q, call) => q.enqueue({ ns: call.ns, key: call.key, id: call.requestId, body: call.index }),
  settle: async ({ object: q, ns, key }): Promise<Drained> => {
    const events = new Map<string, string[]>();
    const freshAcks = new Map<string, number>();
    const note = (id: string, d: string) => events.set(id, [...(events.get(id) ?? []), d]);
    for (let round = 0; round < 20; round++) {
      const { messages } = await q.receive({ ns, key, max: 8, leaseMs: 60_000 });
      if (messages.length === 0) break;
      let abandoned = 0;
      await Promise.all(
        messages.map(async (m) => {
          note(m.id, 'delivered');
          const index = m.body as number;
          if (m.attempt === 1 && index % 3 === 0) {
            const r = await q.nack({ ns, key, id: m.id, leaseToken: m.leaseToken });
            note(m.id, 'decision' in r ? r.decision : 'refused');
          } else if (m.attempt === 1 && index % 3 === 1) {
            abandoned++;
          } else {
            const acks = await Promise.all(
              [1, 2].map(() => q.ack({ ns, key, id: m.id, leaseToken: m.leaseToken })),
            );
            const fresh = acks.filter((a) => a.acked && !a.replayed).length;
            freshAcks.set(m.id, (freshAcks.get(m.id) ?? 0) + fresh);
            for (const a of acks) note(m.id, !a.acked ? 'refused' : a.replayed ? 'duplicate' : 'acked');
          }
        }),
      );
      // The abandoned leases lapse by their timer (fired now rather than in a minute).
      if (abandoned > 0) {
        while (await runDurableObjectAlarm(q as unknown as DurableObjectStub<QueueObject>)) {}
        for (const m of messages) if (m.attempt === 1 && (m.body as number) % 3 === 1) note(m.id, 'retried');
      }
    }
    return { events, freshAcks };
  },
  telemetry: {
    expected: (run) => {
      const { events } = run.settled as Drained;
      return new Map(
        [...run.byRequest].map(([id, tries]) => [
          id,
          [
            ...answered(tries).map((c) => (c.result.duplicate ? 'duplicate' : c.result.decision)),
            ...(events.get(id) ?? []),
          ],
        ]),
      );
    },
  },
  check: async ({ calls, byRequest, inspect, object: q, settled }) => {
    // Check: each id enqueued once whatever the retries, and every one of them acked exactly once.
    expect(calls.filter((c) => c.ok && !c.result.duplicate)).toHaveLength(byRequest.size);
    expect(inspect).toMatchObject({
      depth: 0,
      enqueuedTotal: byRequest.size,
      ackedTotal: byRequest.size,
      deadLetters: 0,
    });
    const { freshAcks } = settled as Drained;
    for (const id of byRequest.keys()) {
      expect(freshAcks.get(id), id).toBe(1);
      expect(await q.inspect(id)).toMatchObject({ found: true, state: 'acked' });
    }
  },
});
