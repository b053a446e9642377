import {
  abortAllDurableObjects,
  env,
  runDurableObjectAlarm,
  runInDurableObject,
  SELF,
} from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { Collector, parseEventId } from '../../../collector';
import { flushTelemetry, runConformance } from '../../conformance';
import { objectFor } from '../../kit';
import type { AcquireResult, GuardedWriteResult, LockObject, ReleaseResult } from './object';

const NS = 'test.lock';
const lock = (key: string, ns = NS) => objectFor(env.LOCK, ns, key);
const AUTH = { authorization: 'Bearer test-api-token' };

/**
 * Steps the object's clock by hand (test-only; no route takes a time). It starts a day ahead of the
 * real clock, so the alarms it sets never fire by themselves: the test fires them.
 */
async function fakeClock(stub: DurableObjectStub<LockObject>) {
  const clock = { now: Date.now() + 86_400_000 };
  await runInDurableObject(stub, (o) => {
    (o as unknown as { clock: () => number }).clock = () => clock.now;
  });
  return clock;
}

/** The lock's events for a requestId in the order the object made them, as [decision, value]. */
async function trail(requestId: string) {
  return (await events(requestId)).map((e) => [e.decision, e.value ?? null]);
}

async function events(requestId: string) {
  const seq = (e: { id: string }) => parseEventId(e.id)!.seq;
  return (await new Collector(env).lookup(requestId))
    .filter((e) => e.pattern === 'lock')
    .sort((a, b) => seq(a) - seq(b));
}

/** Retries a call that failed because the object restarted under it (fresh stub each try). */
async function persist<T>(f: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await f();
    } catch (err) {
      if (i >= 20) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

describe('the lock object', () => {
  it('grants a free lock with a fencing token, refuses a try-lock while held, and releases', async () => {
    const key = 'basic';
    const l = lock(key);
    const clock = await fakeClock(l);
    const a = await l.acquire({ ns: NS, key, requestId: 'basic-a', ttlMs: 10_000 });
    expect(a).toEqual({
      decision: 'acquired',
      acquired: true,
      requestId: 'basic-a',
      token: 1,
      leaseUntil: clock.now + 10_000,
      waitedMs: 0,
      queued: false,
      replayed: false,
    });
    // A retried acquire is answered from the lock's state, not granted twice.
    expect(await l.acquire({ ns: NS, key, requestId: 'basic-a' })).toMatchObject({
      token: 1,
      replayed: true,
    });
    expect(await l.acquire({ ns: NS, key, requestId: 'basic-b' })).toMatchObject({
      decision: 'timed_out',
      waitedMs: 0,
      replayed: false,
    });
    expect(await l.acquire({ ns: NS, key, requestId: 'basic-b' })).toMatchObject({
      decision: 'timed_out',
      replayed: true,
    });
    expect(await l.inspect()).toMatchObject({
      ns: NS,
      key,
      holder: { requestId: 'basic-a', token: 1 },
      waiters: [],
      lastToken: 1,
    });
    expect(await l.release({ ns: NS, key, token: 1 })).toMatchObject({
      decision: 'released',
      replayed: false,
    });
    expect(await l.release({ ns: NS, key, token: 1 })).toMatchObject({
      decision: 'released',
      replayed: true,
    });
    // The acquisition is over: retrying it does not take the lock again.
    expect(await l.acquire({ ns: NS, key, requestId: 'basic-a' })).toMatchObject({
      decision: 'released',
      acquired: false,
      token: 1,
    });
    expect(await l.acquire({ ns: NS, key, requestId: 'basic-c' })).toMatchObject({
      acquired: true,
      token: 2,
    });
    expect(await l.inspect('basic-a')).toMatchObject({ found: true, state: 'released', token: 1 });
    expect(await l.inspect('basic-c')).toMatchObject({ found: true, state: 'holding', token: 2 });
    expect(await l.inspect('nobody')).toEqual({ found: false, requestId: 'nobody' });
    // Check: one event per decision, each retry a `duplicate`; the value is wait time, and only
    // waits carry one.
    await flushTelemetry(l);
    expect(await trail('basic-a')).toEqual([
      ['acquired', 0],
      ['duplicate', null], // the retried acquire
      ['released', null],
      ['duplicate', null], // the retried release
      ['duplicate', null], // the acquire retried after its release
    ]);
    expect(await trail('basic-b')).toEqual([
      ['timed_out', 0],
      ['duplicate', null],
    ]);
  });

  it('queues waiters first come, first served, hands over in storage, and times out the late', async () => {
    const key = 'fifo';
    const l = lock(key);
    const clock = await fakeClock(l);
    const t0 = clock.now;
    await l.acquire({ ns: NS, key, requestId: 'fifo-a', ttlMs: 60_000 });
    const wait = (requestId: string, waitMs: number) =>
      l.acquire({ ns: NS, key, requestId, ttlMs: 60_000, waitMs, pollMs: 0 });
    clock.now = t0 + 1000;
    expect(await wait('fifo-b', 30_000)).toMatchObject({
      decision: 'waited',
      position: 1,
      waitUntil: t0 + 31_000,
    });
    clock.now = t0 + 2000;
    expect(await wait('fifo-c', 30_000)).toMatchObject({ decision: 'waited', position: 2 });
    clock.now = t0 + 3000;
    expect(await wait('fifo-d', 5000)).toMatchObject({ decision: 'waited', position: 3 });
    expect(await l.inspect()).toMatchObject({
      waiters: [
        { requestId: 'fifo-b', position: 1 },
        { requestId: 'fifo-c', position: 2 },
        { requestId: 'fifo-d', position: 3, waitUntil: t0 + 8000 },
      ],
    });
    // The release hands the lock to B at once; B learns it on its next poll.
    clock.now = t0 + 5000;
    await l.release({ ns: NS, key, token: 1 });
    expect(await l.inspect()).toMatchObject({ holder: { requestId: 'fifo-b', token: 2 } });
    expect(await wait('fifo-b', 30_000)).toMatchObject({
      decision: 'acquired',
      token: 2,
      waitedMs: 4000,
      queued: true,
      replayed: true,
    });
    expect(await wait('fifo-c', 30_000)).toMatchObject({ decision: 'waited', position: 1, replayed: true });
    // D's deadline comes first among the timers: its timer takes it out of the queue.
    expect(await runDurableObjectAlarm(l)).toBe(true);
    expect(await l.inspect('fifo-d')).toMatchObject({ state: 'timed_out' });
    expect(await wait('fifo-d', 5000)).toMatchObject({
      decision: 'timed_out',
      waitedMs: 5000,
      replayed: true,
    });
    clock.now = t0 + 9000;
    await l.release({ ns: NS, key, token: 2 });
    expect(await wait('fifo-c', 30_000)).toMatchObject({ acquired: true, token: 3, waitedMs: 7000 });
    await flushTelemetry(l);
    expect(await trail('fifo-b')).toEqual([
      ['waited', 0],
      ['acquired', 4000],
      ['released', null],
    ]);
    expect((await trail('fifo-d')).map(([d]) => d)).toEqual(['waited', 'timed_out']);
  });

  it('holds an acquire call open until the lock is handed over (long poll)', async () => {
    const key = 'long-poll';
    const l = lock(key);
    const a = await l.acquire({ ns: NS, key, requestId: 'lp-a' });
    const waiting = l.acquire({ ns: NS, key, requestId: 'lp-b', waitMs: 20_000, pollMs: 10_000 });
    // Calls arrive in no promised order: let B take its place in line before C asks.
    for (let i = 0; i < 100; i++) {
      const seen = (await l.inspect()) as { waiters?: { requestId: string }[] };
      if (seen.waiters?.some((w) => w.requestId === 'lp-b')) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    // A poll that ends before the handover answers with the place in line.
    const short = await l.acquire({ ns: NS, key, requestId: 'lp-c', waitMs: 20_000, pollMs: 30 });
    expect(short).toMatchObject({ decision: 'waited', position: 2 });
    const started = Date.now();
    await l.release({ ns: NS, key, token: (a as { token: number }).token });
    expect(await waiting).toMatchObject({ decision: 'acquired', requestId: 'lp-b', token: 2, queued: true });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('expires a lease by its timer, fences the late holder, and hands the lock on', async () => {
    const key = 'expiry';
    const l = lock(key);
    await fakeClock(l);
    await l.acquire({ ns: NS, key, requestId: 'expiry-a', ttlMs: 1000 });
    await l.acquire({ ns: NS, key, requestId: 'expiry-b', ttlMs: 60_000, waitMs: 60_000, pollMs: 0 });
    expect(await runDurableObjectAlarm(l)).toBe(true);
    expect(await l.inspect()).toMatchObject({ holder: { requestId: 'expiry-b', token: 2 }, waiters: [] });
    // A's lease is over: its writes and its release are refused, and never land.
    const late = await l.write({ ns: NS, key, token: 1, payload: 'from a', requestId: 'expiry-a-write' });
    expect(late).toMatchObject({ decision: 'fenced', written: false, reason: 'expired', currentToken: 2 });
    expect(await l.release({ ns: NS, key, token: 1 })).toMatchObject({
      decision: 'fenced',
      reason: 'expired',
    });
    expect(
      await l.write({ ns: NS, key, token: 2, payload: 'from b', requestId: 'expiry-b-write' }),
    ).toMatchObject({
      written: true,
      replayed: false,
      writes: 1,
    });
    expect(
      await l.write({ ns: NS, key, token: 2, payload: 'from b', requestId: 'expiry-b-write' }),
    ).toMatchObject({
      written: true,
      replayed: true,
      writes: 1,
    });
    expect(await l.write({ ns: NS, key, token: 99, payload: 'forged' })).toMatchObject({ reason: 'unknown' });
    expect(await l.record({ ns: NS, key })).toMatchObject({
      payload: 'from b',
      token: 2,
      writes: 1,
      landed: [{ token: 2, requestId: 'expiry-b-write' }],
    });
    // Check: the ledger knows the write that landed, and nothing of the fenced one.
    expect(await l.inspect('expiry-b-write')).toMatchObject({ found: true, state: 'written', token: 2 });
    expect(await l.inspect('expiry-a-write')).toEqual({ found: false, requestId: 'expiry-a-write' });
    await flushTelemetry(l);
    expect((await trail('expiry-a')).map(([d]) => d)).toEqual(['acquired', 'expired', 'fenced']);
    expect(await trail('expiry-a-write')).toEqual([['fenced', null]]);
    expect(await trail('expiry-b-write')).toEqual([
      ['written', null],
      ['duplicate', null],
    ]);
  });

  it('emits written and duplicate events with the request, its trace and a duration, one per call', async () => {
    const key = 'events';
    const l = lock(key);
    const trace = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' };
    const t = { ns: NS, key, trace };
    const a = (await l.acquire({ ...t, requestId: 'events-a' })) as { token: number };
    expect(await l.acquire({ ...t, requestId: 'events-a' })).toMatchObject({ replayed: true });
    await l.write({ ...t, token: a.token, payload: 1, requestId: 'events-w' });
    await l.write({ ...t, token: a.token, payload: 1, requestId: 'events-w' });
    // A write without its own requestId is the holder's acquisition's.
    await l.write({ ...t, token: a.token, payload: 2 });
    await l.release({ ...t, token: a.token });
    await l.release({ ...t, token: a.token });
    await flushTelemetry(l);
    expect(await trail('events-a')).toEqual([
      ['acquired', 0],
      ['duplicate', null],
      ['written', null],
      ['released', null],
      ['duplicate', null],
    ]);
    expect(await trail('events-w')).toEqual([
      ['written', null],
      ['duplicate', null],
    ]);
    for (const e of [...(await events('events-a')), ...(await events('events-w'))]) {
      expect(e).toMatchObject({ ns: NS, key, count: 1, ...trace });
      expect(e.durationMs).toBeGreaterThanOrEqual(0);
    }
  });

  it('counts a poll that learns its grant or timeout as no retry, and a call after it as one', async () => {
    const key = 'polls';
    const l = lock(key);
    const clock = await fakeClock(l);
    const a = (await l.acquire({ ns: NS, key, requestId: 'polls-a', ttlMs: 60_000 })) as { token: number };
    const wait = (requestId: string) =>
      l.acquire({ ns: NS, key, requestId, ttlMs: 60_000, waitMs: 10_000, pollMs: 0 });
    await wait('polls-b');
    await wait('polls-c');
    // Polls while in line: not retries, no events.
    await wait('polls-b');
    await wait('polls-b');
    await l.release({ ns: NS, key, token: a.token });
    // B's first poll after the handover learns its grant (the `acquired` event was the handover's) …
    expect(await wait('polls-b')).toMatchObject({ decision: 'acquired', replayed: true });
    // … and the one after it is a retry.
    expect(await wait('polls-b')).toMatchObject({ decision: 'acquired', replayed: true });
    // C's deadline passes in line: its timer decides, C's next poll learns it, a later one retries.
    clock.now += 10_000;
    expect(await runDurableObjectAlarm(l)).toBe(true);
    expect(await wait('polls-c')).toMatchObject({ decision: 'timed_out', replayed: true });
    expect(await wait('polls-c')).toMatchObject({ decision: 'timed_out', replayed: true });
    await flushTelemetry(l);
    expect((await trail('polls-b')).map(([d]) => d)).toEqual(['waited', 'acquired', 'duplicate']);
    expect((await trail('polls-c')).map(([d]) => d)).toEqual(['waited', 'timed_out', 'duplicate']);
  });

  it('adds the answered marks to tables made before them, counting their rows as answered', async () => {
    const key = 'schema';
    await lock(key).acquire({ ns: NS, key, requestId: 'schema-a', ttlMs: 60_000 });
    await flushTelemetry(lock(key));
    // The tables as they shipped, before the column.
    await runInDurableObject(lock(key), (_, state) => {
      state.storage.sql.exec('ALTER TABLE lock_state DROP COLUMN answered');
      state.storage.sql.exec('ALTER TABLE lock_history DROP COLUMN answered');
    });
    await abortAllDurableObjects();
    expect(await lock(key).acquire({ ns: NS, key, requestId: 'schema-a' })).toMatchObject({
      token: 1,
      replayed: true,
    });
    expect(await lock(key).release({ ns: NS, key, token: 1 })).toMatchObject({ decision: 'released' });
    await flushTelemetry(lock(key));
    expect((await trail('schema-a')).map(([d]) => d)).toEqual(['acquired', 'duplicate', 'released']);
  });

  it('expires a lapsed lease at the next call even before its alarm runs', async () => {
    const key = 'lazy';
    const l = lock(key);
    const clock = await fakeClock(l);
    await l.acquire({ ns: NS, key, requestId: 'lazy-a', ttlMs: 1000 });
    clock.now += 1000;
    expect(await l.acquire({ ns: NS, key, requestId: 'lazy-b' })).toMatchObject({ acquired: true, token: 2 });
    expect(await l.inspect('lazy-a')).toMatchObject({ state: 'expired' });
    // Check: A's lease timer went with its lease; the alarm is armed for B's.
    const b = (await l.inspect()) as { holder: { requestId: string; leaseUntil: number } };
    expect(b.holder.requestId).toBe('lazy-b');
    expect(await runInDurableObject(l, (_, state) => state.storage.getAlarm())).toBe(b.holder.leaseUntil);
  });

  it('never reuses a fencing token across restarts', async () => {
    const key = 'tokens';
    for (let i = 1; i <= 3; i++) {
      const a = await lock(key).acquire({ ns: NS, key, requestId: `tokens-${i}` });
      expect(a).toMatchObject({ token: i });
      await lock(key).release({ ns: NS, key, token: i });
    }
    await abortAllDurableObjects();
    expect(await lock(key).acquire({ ns: NS, key, requestId: 'tokens-4' })).toMatchObject({ token: 4 });
    expect(await lock(key).inspect()).toMatchObject({ lastToken: 4 });
  });

  it('strands no waiter across a restart: its place is kept, and the handover waits for it', async () => {
    const key = 'restart';
    const a = (await lock(key).acquire({ ns: NS, key, requestId: 'restart-a', ttlMs: 60_000 })) as {
      token: number;
    };
    const open = lock(key)
      .acquire({ ns: NS, key, requestId: 'restart-b', ttlMs: 60_000, waitMs: 30_000, pollMs: 300 })
      .then(
        (r) => r.decision,
        () => 'dropped',
      );
    await new Promise((r) => setTimeout(r, 20));
    await abortAllDurableObjects();
    // Check: the call open across the restart is dropped (production) or ends its poll still
    // waiting (the test pool keeps the old instance's call alive); either way the waiter polls
    // again and finds its place kept.
    expect(['dropped', 'waited']).toContain(await open);
    expect(
      await lock(key).acquire({ ns: NS, key, requestId: 'restart-b', waitMs: 30_000, pollMs: 0 }),
    ).toMatchObject({ decision: 'waited', position: 1, replayed: true });
    await lock(key).acquire({
      ns: NS,
      key,
      requestId: 'restart-c',
      ttlMs: 60_000,
      waitMs: 120_000,
      pollMs: 0,
    });
    await lock(key).release({ ns: NS, key, token: a.token });
    expect(await lock(key).acquire({ ns: NS, key, requestId: 'restart-b', pollMs: 0 })).toMatchObject({
      acquired: true,
      token: 2,
    });
    // B never releases; after another restart its lease timer frees the lock, for C.
    await abortAllDurableObjects();
    expect(await runDurableObjectAlarm(lock(key))).toBe(true);
    expect(await lock(key).acquire({ ns: NS, key, requestId: 'restart-c', pollMs: 0 })).toMatchObject({
      acquired: true,
      token: 3,
    });
    expect(await lock(key).inspect('restart-b')).toMatchObject({ state: 'expired' });
  });

  it('never has two holders, and tokens strictly increase, with concurrent clients and a restart', async () => {
    const key = 'storm';
    const clients = 10;
    const rounds = 3;
    let inside = 0;
    let most = 0;
    const granted: number[] = [];
    let restarted = false;
    const client = async (c: number) => {
      for (let r = 0; r < rounds; r++) {
        const requestId = `storm-${c}-${r}`;
        let got: AcquireResult;
        do {
          got = await persist(async () =>
            lock(key).acquire({ ns: NS, key, requestId, ttlMs: 60_000, waitMs: 60_000, pollMs: 2000 }),
          );
        } while (got.decision === 'waited');
        expect(got.decision).toBe('acquired');
        const token = (got as { token: number }).token;
        inside++;
        most = Math.max(most, inside);
        granted.push(token);
        if (granted.length === 12 && !restarted) {
          // Mid-run, with one client holding the lock and the rest queued behind it.
          restarted = true;
          await abortAllDurableObjects();
        }
        const w = await persist(async () =>
          lock(key).write({ ns: NS, key, token, payload: { c, r }, requestId }),
        );
        expect(w).toMatchObject({ written: true });
        inside--;
        expect(await persist(async () => lock(key).release({ ns: NS, key, token }))).toMatchObject({
          decision: 'released',
        });
      }
    };
    await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
    // Check: one holder at a time; tokens handed out in strictly increasing order, none reused.
    expect(restarted).toBe(true);
    expect(most).toBe(1);
    expect(granted).toHaveLength(clients * rounds);
    for (let i = 1; i < granted.length; i++) expect(granted[i]).toBeGreaterThan(granted[i - 1]!);
    const record = await lock(key).record({ ns: NS, key, limit: 1000 });
    expect(record.landed.map((w) => w.token)).toEqual(granted);
    expect(await lock(key).inspect()).toMatchObject({
      holder: null,
      waiters: [],
      lastToken: clients * rounds,
    });
  }, 60_000);
});

describe('the lock routes', () => {
  const url = (key: string, action: string) =>
    `http://x/objects/lock/${key}/${action}${action.includes('?') ? '&' : '?'}ns=${NS}`;
  const send = (method: string, key: string, action: string, body?: unknown) =>
    SELF.fetch(url(key, action), {
      method,
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('acquires (200), queues (202), times out and fences (409), and reads the record', async () => {
    const key = 'http';
    const a = await send('POST', key, 'acquire', { requestId: 'http-a', ttlMs: 60_000 });
    expect(a.status).toBe(200);
    const { token } = (await a.json()) as { token: number };
    const queued = await send('POST', key, 'acquire', { requestId: 'http-b', waitMs: 60_000, pollMs: 0 });
    expect(queued.status).toBe(202);
    expect(await queued.json()).toMatchObject({ decision: 'waited', position: 1 });
    const busy = await send('POST', key, 'acquire', { requestId: 'http-c' });
    expect(busy.status).toBe(409);
    expect(await busy.json()).toMatchObject({ decision: 'timed_out', error: { code: 'lock_timeout' } });
    expect((await send('POST', key, 'write', { token, payload: { v: 1 } })).status).toBe(200);
    const forged = await send('POST', key, 'write', { token: token + 5, payload: { v: 2 } });
    expect(forged.status).toBe(409);
    expect(await forged.json()).toMatchObject({ decision: 'fenced', error: { code: 'fenced' } });
    expect((await send('POST', key, 'release', { token })).status).toBe(200);
    const stale = await send('POST', key, 'release', { token: token + 1000 });
    expect(stale.status).toBe(409);
    const ended = await send('POST', key, 'acquire', { requestId: 'http-a' });
    expect(ended.status).toBe(409);
    expect(await ended.json()).toMatchObject({ decision: 'released', error: { code: 'lease_ended' } });
    expect(await (await send('GET', key, 'record')).json()).toMatchObject({
      payload: { v: 1 },
      token,
      writes: 1,
    });
    expect(await (await send('GET', key, 'inspect?requestId=http-b')).json()).toMatchObject({
      state: 'holding',
      token: token + 1,
    });
  });

  it('answers bad input with a 4xx that says what to fix', async () => {
    const cases: [string, unknown][] = [
      ['acquire', { ttlMs: 0 }],
      ['acquire', { waitMs: -1 }],
      ['acquire', { pollMs: 60_000 }],
      ['acquire', { requestId: '' }],
      ['acquire', { owner: 'me' }],
      ['release', {}],
      ['release', { token: 0 }],
      ['write', { token: 1 }],
      ['write', '{'],
    ];
    for (const [action, body] of cases) {
      const res = await send('POST', 'http-bad', action, body);
      expect(res.status, `${action} ${JSON.stringify(body)}`).toBe(400);
    }
    expect(await lock('http-bad').inspect()).toMatchObject({ holder: null, lastToken: 0 });
  });
});

// The shared suite: one request = acquire (waiting in line, long poll), write under the token,
// release. A retry of the same requestId is answered from the lock's state: it never acquires a
// second time, and its write and release are replays. Each request's trail is: waited (if it
// queued), acquired, written, released, and one `duplicate` for every replayed call — but the first
// call to learn a grant the handover made is not a replay.
type LockStub = ReturnType<typeof lock>;
type Turn = { acquire: AcquireResult; write?: GuardedWriteResult; release?: ReleaseResult; overlap: boolean };
const holding = new Map<string, Set<string>>();

runConformance<LockStub, Turn>({
  pattern: 'lock',
  callers: 12,
  object: (ns, key) => objectFor(env.LOCK, ns, key),
  operation: async (l, call) => {
    const { ns, key, requestId } = call;
    const acquire = await l.acquire({ ns, key, requestId, ttlMs: 60_000, waitMs: 25_000, pollMs: 25_000 });
    if (acquire.decision !== 'acquired') return { acquire, overlap: false };
    // Two calls of one request may hold at once (they are one holder); two requests may not.
    const holders = holding.get(key) ?? new Set<string>();
    holding.set(key, holders);
    holders.add(requestId);
    const overlap = holders.size > 1;
    const write = await l.write({ ns, key, token: acquire.token, payload: call.index, requestId });
    holders.delete(requestId);
    const release = await l.release({ ns, key, token: acquire.token });
    return { acquire, write, release, overlap };
  },
  telemetry: {
    expected: (run) => {
      const expected = new Map<string, string[]>();
      for (const [requestId, tries] of run.byRequest) {
        const turns = tries.flatMap((c) => (c.ok ? [c.result] : []));
        const decisions: string[] = [];
        if (turns.some((t) => t.acquire.decision === 'acquired' && t.acquire.queued))
          decisions.push('waited');
        if (turns.some((t) => t.acquire.decision === 'acquired')) decisions.push('acquired');
        // Every call told the outcome after the first one told it is a retry.
        const told = turns.filter((t) => t.acquire.decision !== 'waited').length;
        for (let i = 1; i < told; i++) decisions.push('duplicate');
        for (const t of turns) {
          if (t.write)
            decisions.push(!t.write.written ? 'fenced' : t.write.replayed ? 'duplicate' : 'written');
          if (t.release)
            decisions.push(!t.release.released ? 'fenced' : t.release.replayed ? 'duplicate' : 'released');
        }
        expected.set(requestId, decisions);
      }
      return expected;
    },
  },
  check: async ({ calls, byRequest, inspect, object: l, ns, key }) => {
    const turns = calls.flatMap((c) => (c.ok ? [{ c, t: c.result }] : []));
    // Check: never two requests holding at once; every request acquired exactly once.
    expect(turns.filter(({ t }) => t.overlap)).toEqual([]);
    const fresh = turns.filter(
      ({ t }) => t.acquire.decision === 'acquired' && !t.acquire.replayed && !t.acquire.queued,
    );
    const grants = new Map<string, number>();
    for (const { c, t } of turns)
      if (t.acquire.decision === 'acquired') grants.set(c.requestId, t.acquire.token);
    expect(grants.size).toBe(byRequest.size);
    expect(fresh.length).toBeLessThanOrEqual(byRequest.size);
    // Fencing tokens: one per request, none reused, and the writes landed in strictly increasing token order.
    const tokens = [...grants.values()].sort((a, b) => a - b);
    expect(tokens).toEqual(Array.from({ length: byRequest.size }, (_, i) => i + 1));
    const landed = (await l.record({ ns, key, limit: 1000 })).landed.map((w) => w.token);
    expect(landed).toEqual(tokens);
    expect(inspect).toMatchObject({ holder: null, waiters: [], lastToken: byRequest.size });
  },
});
