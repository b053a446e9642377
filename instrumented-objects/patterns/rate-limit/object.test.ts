import { abortAllDurableObjects, env, runInDurableObject, SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { Collector } from '../../../collector';
import { answered, flushTelemetry, runConformance } from '../../conformance';
import { objectFor } from '../../kit';
import {
  type CheckResult,
  type LimitConfig,
  NAMESPACE_CONFIG_TTL_MS,
  namespaceConfigObject,
  type RateLimitObject,
} from './object';

const NS = 'test.rate_limit';
const limiter = (key: string, ns = NS) => objectFor(env.RATE_LIMIT, ns, key);
const AUTH = { authorization: 'Bearer test-api-token' };
const OPS = { authorization: 'Bearer test-operator-token' };
const HOUR = 3_600_000;

/** Steps the object's request time by hand (the test-only clock; the HTTP route has no `now`). */
async function fakeClock(stub: DurableObjectStub<RateLimitObject>, start = 1_700_000_000_000) {
  const clock = { now: start };
  await runInDurableObject(stub, (o) => {
    (o as unknown as { clock: () => number }).clock = () => clock.now;
  });
  return clock;
}

async function setNamespace(ns: string, config: LimitConfig | null) {
  return namespaceConfigObject(env.RATE_LIMIT, ns).setNamespaceLimit({ ns, config });
}

async function trail(requestId: string) {
  return (await new Collector(env).lookup(requestId)).filter((e) => e.pattern === 'rate_limit');
}

describe('the rate-limit object, token bucket', () => {
  it('spends a token per request, refuses when empty with the wait for the next token, refills evenly', async () => {
    const key = 'bucket:basic';
    const rl = limiter(key);
    const clock = await fakeClock(rl);
    await rl.configure({ ns: NS, key, override: { limit: 5, windowMs: 60_000 } });
    const answers: CheckResult[] = [];
    for (let i = 0; i < 7; i++) answers.push(await rl.check({ ns: NS, key, requestId: `${key}-${i}` }));
    expect(answers.map((a) => [a.decision, a.remaining])).toEqual([
      ['allowed', 4],
      ['allowed', 3],
      ['allowed', 2],
      ['allowed', 1],
      ['allowed', 0],
      ['limited', 0],
      ['limited', 0],
    ]);
    // One token per 12 s.
    expect(answers[5]!.retryAfterMs).toBe(12_000);
    clock.now += 11_999;
    expect(await rl.check({ ns: NS, key })).toMatchObject({ decision: 'limited', retryAfterMs: 1 });
    clock.now += 1;
    expect(await rl.check({ ns: NS, key })).toMatchObject({ decision: 'allowed', remaining: 0 });
    // A full window later the bucket is full again, and holds no more than its capacity.
    clock.now += 10 * 60_000;
    expect(await rl.check({ ns: NS, key })).toMatchObject({ decision: 'allowed', remaining: 4 });
    expect(await rl.inspect()).toMatchObject({
      ns: NS,
      key,
      allowedTotal: 7,
      limitedTotal: 3,
      limits: {
        effective: { algorithm: 'token_bucket', limit: 5, windowMs: 60_000 },
        override: { limit: 5 },
      },
    });
    // Check: one event per decision, its value the tokens left.
    await flushTelemetry(rl);
    expect((await trail(`${key}-4`)).map((e) => [e.decision, e.value])).toEqual([['allowed', 0]]);
    expect((await trail(`${key}-5`)).map((e) => [e.decision, e.value])).toEqual([['limited', 0]]);
    expect(typeof (await trail(`${key}-5`))[0]!.durationMs).toBe('number');
  });

  it('lets a burst through up to its size, then the refill rate', async () => {
    const key = 'bucket:burst';
    const rl = limiter(key);
    const clock = await fakeClock(rl);
    await rl.configure({ ns: NS, key, override: { limit: 1, windowMs: 1000, burst: 3 } });
    const first = await Promise.all(Array.from({ length: 5 }, () => rl.check({ ns: NS, key })));
    expect(first.filter((a) => a.allowed)).toHaveLength(3);
    clock.now += 1000;
    expect(await rl.check({ ns: NS, key })).toMatchObject({ allowed: true });
    expect(await rl.check({ ns: NS, key })).toMatchObject({ allowed: false, retryAfterMs: 1000 });
  });

  it('refuses a request costing more than the bucket holds, with no retry time', async () => {
    const key = 'bucket:cost';
    const rl = limiter(key);
    await rl.configure({ ns: NS, key, override: { limit: 3, windowMs: HOUR } });
    expect(await rl.check({ ns: NS, key, cost: 2 })).toMatchObject({ allowed: true, remaining: 1 });
    expect(await rl.check({ ns: NS, key, cost: 2 })).toMatchObject({ allowed: false, remaining: 1 });
    expect(await rl.check({ ns: NS, key, cost: 4 })).toMatchObject({ allowed: false, retryAfterMs: null });
  });
});

describe('the rate-limit object, sliding window', () => {
  it('allows at most the limit in any window, and says when the oldest request slides out', async () => {
    const ns = 'test.rate_limit.window';
    await setNamespace(ns, { algorithm: 'sliding_window', limit: 3, windowMs: 10_000, burst: null });
    const key = 'window:basic';
    const rl = limiter(key, ns);
    const clock = await fakeClock(rl);
    const check = () => rl.check({ ns, key });
    const t0 = clock.now;
    for (const dt of [0, 1000, 2000]) {
      clock.now = t0 + dt;
      expect(await check()).toMatchObject({ decision: 'allowed' });
    }
    clock.now = t0 + 3000;
    expect(await check()).toMatchObject({ decision: 'limited', remaining: 0, retryAfterMs: 7000 });
    clock.now = t0 + 9999;
    expect(await check()).toMatchObject({ decision: 'limited', retryAfterMs: 1 });
    clock.now = t0 + 10_000;
    expect(await check()).toMatchObject({ decision: 'allowed', remaining: 0 });
    expect(await rl.inspect()).toMatchObject({
      windowUsed: 3,
      limits: { effective: { algorithm: 'sliding_window' }, namespace: { source: 'namespace' } },
    });
  });

  it('carries usage over when the namespace switches algorithm', async () => {
    const ns = 'test.rate_limit.switch';
    await setNamespace(ns, { algorithm: 'sliding_window', limit: 5, windowMs: HOUR, burst: null });
    const key = 'switch';
    const rl = limiter(key, ns);
    const clock = await fakeClock(rl);
    for (let i = 0; i < 3; i++) await rl.check({ ns, key });
    await setNamespace(ns, { algorithm: 'token_bucket', limit: 5, windowMs: HOUR, burst: null });
    clock.now += NAMESPACE_CONFIG_TTL_MS;
    // 3 of 5 spent in the window: the bucket starts with 2, not full.
    expect(await rl.check({ ns, key })).toMatchObject({ allowed: true, remaining: 1 });
    expect(await rl.check({ ns, key })).toMatchObject({ allowed: true, remaining: 0 });
    expect(await rl.check({ ns, key })).toMatchObject({ allowed: false });
    await setNamespace(ns, { algorithm: 'sliding_window', limit: 5, windowMs: HOUR, burst: null });
    clock.now += NAMESPACE_CONFIG_TTL_MS;
    expect(await rl.check({ ns, key })).toMatchObject({
      allowed: false,
      config: { algorithm: 'sliding_window' },
    });
  });
});

describe('the rate-limit invariant', () => {
  // Random request times (several per ms at times) and costs; the object decides each in turn.
  async function simulate(ns: string, key: string, n: number) {
    const rl = limiter(key, ns);
    const clock = await fakeClock(rl);
    const t0 = clock.now;
    const times = Array.from({ length: n }, () => t0 + Math.floor(Math.random() * 30_000)).sort(
      (a, b) => a - b,
    );
    const allowed: { at: number; cost: number }[] = [];
    for (const at of times) {
      clock.now = at;
      const cost = Math.random() < 0.2 ? 2 : 1;
      if ((await rl.check({ ns, key, cost })).allowed) allowed.push({ at, cost });
    }
    return allowed;
  }

  it('a sliding window never lets more than the limit through in any window', async () => {
    const ns = 'test.rate_limit.sim-window';
    const limit = 7;
    const windowMs = 3000;
    await setNamespace(ns, { algorithm: 'sliding_window', limit, windowMs, burst: null });
    const allowed = await simulate(ns, 'sim', 400);
    for (const { at } of allowed) {
      const inWindow = allowed
        .filter((a) => a.at > at - windowMs && a.at <= at)
        .reduce((s, a) => s + a.cost, 0);
      expect(inWindow).toBeLessThanOrEqual(limit);
    }
    expect(allowed.length).toBeGreaterThan(limit);
  });

  it('a token bucket never lets more through than its burst plus what refilled', async () => {
    const ns = 'test.rate_limit.sim-bucket';
    const limit = 4;
    const windowMs = 2000;
    const burst = 6;
    await setNamespace(ns, { algorithm: 'token_bucket', limit, windowMs, burst });
    const allowed = await simulate(ns, 'sim', 400);
    for (let i = 0; i < allowed.length; i++) {
      let spent = 0;
      for (let j = i; j < allowed.length; j++) {
        spent += allowed[j]!.cost;
        const refill = ((allowed[j]!.at - allowed[i]!.at) * limit) / windowMs;
        expect(spent).toBeLessThanOrEqual(burst + refill + 1e-6);
      }
    }
  });

  for (const algorithm of ['token_bucket', 'sliding_window'] as const) {
    it(`${algorithm}: concurrent callers, retries and a restart never pass more than the limit`, async () => {
      const ns = `test.rate_limit.storm-${algorithm}`;
      await setNamespace(ns, { algorithm, limit: 10, windowMs: HOUR, burst: null });
      const key = 'storm';
      const ask = (i: number) => limiter(key, ns).check({ ns, key, requestId: `${ns}/${i}` });
      const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
      const answers: CheckResult[] = await Promise.all([...range(0, 30), ...range(0, 10)].map(ask));
      await flushTelemetry(limiter(key, ns));
      await abortAllDurableObjects();
      answers.push(...(await Promise.all([...range(30, 30), ...range(0, 30)].map(ask))));
      // Check: exactly the limit passed (an hour refills well under one token during the test) …
      const fresh = answers.filter((a) => a.allowed && !a.replayed);
      expect(fresh).toHaveLength(10);
      // … and every retry of an allowed request was answered from the ledger, not charged again.
      const allowedIds = new Set<string>();
      for (let i = 0; i < 60; i++) {
        const seen = await limiter(key, ns).inspect(`${ns}/${i}`);
        if (seen.found && 'decision' in seen && seen.decision === 'allowed') allowedIds.add(`${ns}/${i}`);
      }
      expect(allowedIds.size).toBe(10);
      expect(await limiter(key, ns).inspect()).toMatchObject({ allowedTotal: 10 });
    });
  }

  it('answers a retried allowed request from its ledger, and re-evaluates a limited one', async () => {
    const key = 'retries';
    const rl = limiter(key);
    const clock = await fakeClock(rl);
    await rl.configure({ ns: NS, key, override: { limit: 1, windowMs: 10_000 } });
    expect(await rl.check({ ns: NS, key, requestId: 'retries-a' })).toMatchObject({
      allowed: true,
      replayed: false,
    });
    const trace = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' };
    expect(await rl.check({ ns: NS, key, requestId: 'retries-a', trace })).toMatchObject({
      allowed: true,
      replayed: true,
      remaining: 0,
    });
    expect(await rl.check({ ns: NS, key, requestId: 'retries-b' })).toMatchObject({ allowed: false });
    expect(await rl.inspect('retries-b')).toMatchObject({ found: true, decision: 'limited' });
    clock.now += 10_000;
    expect(await rl.check({ ns: NS, key, requestId: 'retries-b' })).toMatchObject({
      allowed: true,
      replayed: false,
    });
    expect(await rl.inspect('retries-b')).toMatchObject({ found: true, decision: 'allowed', remaining: 0 });
    expect(await rl.inspect('never-seen')).toEqual({ found: false, requestId: 'never-seen' });
    // Check: the replay is one `duplicate` event, valued at the tokens left, with the retry's trace.
    await flushTelemetry(rl);
    const a = await trail('retries-a');
    expect(a.map((e) => e.decision)).toEqual(['allowed', 'duplicate']);
    expect(a[1]).toMatchObject({ ns: NS, key, requestId: 'retries-a', value: 0, count: 1, ...trace });
    expect(a[1]!.durationMs).toBeGreaterThanOrEqual(0);
    expect((await trail('retries-b')).map((e) => e.decision)).toEqual(['limited', 'allowed']);
  });
});

describe('the rate-limit routes', () => {
  const ns = 'test.rate_limit.http';
  const request =
    (root: string, auth: Record<string, string>) => (method: string, path: string, body?: unknown) =>
      SELF.fetch(`http://x${root}/rate_limit/${path}${path.includes('?') ? '&' : '?'}ns=${ns}`, {
        method,
        headers: { ...auth, 'content-type': 'application/json' },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
  /** The application's routes, with the API token. */
  const send = request('/objects', AUTH);
  /** The operator's routes (limits are set there), with the operator token. */
  const ops = request('/ops/objects', OPS);

  it('layers the limit: defaults, then the namespace, then the key', async () => {
    expect(await (await send('GET', 'config')).json()).toMatchObject({
      source: 'default',
      config: { algorithm: 'token_bucket', limit: 60, windowMs: 60_000 },
    });
    const set = await ops('PUT', 'config', { algorithm: 'sliding_window', limit: 20, windowMs: 1000 });
    expect(set.status).toBe(200);
    expect(await set.json()).toMatchObject({ source: 'namespace', version: 1, config: { burst: null } });
    expect(await (await send('GET', 'tenant:a/config')).json()).toMatchObject({
      effective: { algorithm: 'sliding_window', limit: 20, windowMs: 1000 },
      override: null,
    });
    const override = await ops('PUT', 'tenant:a/config', { limit: 2 });
    expect(await override.json()).toMatchObject({
      effective: { algorithm: 'sliding_window', limit: 2, windowMs: 1000 },
      override: { limit: 2 },
    });
    // Another tenant keeps the namespace's limit.
    expect(await (await send('GET', 'tenant:b/config')).json()).toMatchObject({ effective: { limit: 20 } });
    // Check: the operator reads what the application reads.
    expect(await (await ops('GET', 'tenant:a/config')).json()).toMatchObject({ effective: { limit: 2 } });
    expect(await (await ops('GET', 'config')).json()).toMatchObject({ source: 'namespace', version: 1 });
    expect(await (await ops('DELETE', 'tenant:a/config')).json()).toMatchObject({
      effective: { limit: 20 },
      override: null,
    });
    expect(await (await ops('DELETE', 'config')).json()).toMatchObject({ source: 'default', version: 2 });
  });

  it('sets limits only with the operator token', async () => {
    const asApp = request('/ops/objects', AUTH);
    const changes: [string, string, unknown?][] = [
      ['PUT', 'config', { algorithm: 'token_bucket', limit: 1, windowMs: 1000 }],
      ['DELETE', 'config'],
      ['PUT', 'tenant:ops/config', { limit: 1 }],
      ['DELETE', 'tenant:ops/config'],
      ['GET', 'config'],
    ];
    for (const [method, path, body] of changes) {
      // Check: the API token opens no operator route …
      const denied = await asApp(method, path, body);
      expect(denied.status, `${method} ${path}`).toBe(401);
      expect(((await denied.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
      // … and the application's routes no longer change limits.
      if (method !== 'GET') expect((await send(method, path, body)).status, `${method} ${path}`).toBe(404);
    }
    expect(await (await send('GET', 'tenant:ops/config')).json()).toMatchObject({
      effective: { limit: 60 },
      override: null,
    });
    expect(await (await send('GET', 'config')).json()).toMatchObject({ source: 'default' });
  });

  it('answers 429 with Retry-After in seconds, and says what to fix on bad input', async () => {
    await ops('PUT', 'tenant:429/config', { limit: 1, windowMs: 90_500 });
    const ok = await send('POST', 'tenant:429/check', { requestId: 'http-1' });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ decision: 'allowed', remaining: 0 });
    const limited = await send('POST', 'tenant:429/check', {});
    expect(limited.status).toBe(429);
    expect(limited.headers.get('Retry-After')).toBe('91');
    expect(await limited.json()).toMatchObject({ decision: 'limited', error: { code: 'rate_limited' } });
    const never = await send('POST', 'tenant:429/check', { cost: 5 });
    expect(never.status).toBe(429);
    expect(never.headers.get('Retry-After')).toBeNull();
    expect(await never.json()).toMatchObject({ error: { code: 'over_capacity' } });
    const inspect = await send('GET', 'tenant:429/inspect?requestId=http-1');
    expect(await inspect.json()).toMatchObject({ found: true, decision: 'allowed' });

    const bad: [typeof send, string, string, unknown][] = [
      [send, 'POST', 'tenant:429/check', { cost: 0 }],
      [send, 'POST', 'tenant:429/check', { now: 5 }],
      [send, 'POST', 'tenant:429/check', '{'],
      [ops, 'PUT', 'tenant:429/config', { limit: -1 }],
      [ops, 'PUT', 'tenant:429/config', { algorithm: 'token_bucket' }],
      [ops, 'PUT', 'config', { algorithm: 'leaky', limit: 1, windowMs: 1 }],
      [ops, 'PUT', 'config', { algorithm: 'token_bucket', limit: 1 }],
    ];
    for (const [route, method, path, body] of bad) {
      const res = await route(method, path, body);
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toMatch(/^invalid_/);
    }
  });
});

// The shared suite: ten requests an hour, sixteen callers a wave, so most are limited; retries of an
// allowed request are answered from the ledger (replayed: a `duplicate` event), limited ones are
// decided again.
runConformance<ReturnType<typeof limiter>, CheckResult>({
  pattern: 'rate_limit',
  callers: 16,
  object: (ns, key) => objectFor(env.RATE_LIMIT, ns, key),
  setup: async (rl, { ns, key }) => {
    await rl.configure({ ns, key, override: { limit: 10, windowMs: HOUR } });
  },
  operation: (rl, call) => rl.check({ ns: call.ns, key: call.key, requestId: call.requestId }),
  telemetry: {
    expected: (run) =>
      new Map(
        [...run.byRequest].map(([id, tries]) => [
          id,
          answered(tries).map((c) => (c.result.replayed ? 'duplicate' : c.result.decision)),
        ]),
      ),
  },
  check: ({ calls, byRequest, inspect }) => {
    const allowed = calls.filter((c) => c.ok && c.result.allowed && !c.result.replayed);
    expect(allowed).toHaveLength(Math.min(10, byRequest.size));
    // One admission per request at most, and every retry after it was a replay.
    expect(new Set(allowed.map((c) => c.requestId)).size).toBe(allowed.length);
    expect(inspect).toMatchObject({ allowedTotal: allowed.length });
  },
});
