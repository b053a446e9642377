// Demo traffic for `npm start`: real requests to the real pattern objects, so a new user's dashboard
// shows live decisions with the mix production has — duplicates, in-flight retries, rate limiting,
// lock waits, nacks and dead letters, out-of-order writes, shared refreshes. Keys are Zipf-skewed
// per namespace (a few hot ones), the workload is seeded, and the load stays modest: `wrangler dev`
// already takes most of one of the two cores. A low-rate synthetic producer also posts events to
// POST /ingest, as an outside Worker (one without a pattern object here) would.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rng, zipf as zipfSampler } from './lib/random.mjs';
import { root } from './wrangler-dev.mjs';

/** Reads KEY=VALUE lines of .dev.vars (the tokens `npm start` runs with). */
export function devVar(name, fallback) {
  try {
    for (const line of readFileSync(join(root, '.dev.vars'), 'utf8').split('\n')) {
      const m = /^\s*([A-Z0-9_]+)\s*=\s*(.*)\s*$/.exec(line);
      if (m && m[1] === name) return m[2].replace(/^"(.*)"$/, '$1');
    }
  } catch {}
  return process.env[name] ?? fallback;
}

// One seeded PRNG and Zipf sampler for the demo, the load generator and the benchmarks.
export { rng };

/** Zipf(s) over ranks 0..n-1: a function that draws a rank. */
export function zipf(n, s, random) {
  return zipfSampler(n, s, random).next;
}

/** True for a URL that points at this machine (load tools refuse anything else). */
export function isLoopback(url) {
  const host = new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * Admits at most `perSecond` starts per second, evenly spaced; callers wait their turn. When the
 * server falls behind, the schedule does not pile up a burst to catch up.
 */
export function pacer(perSecond) {
  const gap = 1000 / perSecond;
  let nextAt = 0;
  return () => {
    const now = performance.now();
    const at = Math.max(now, nextAt);
    nextAt = at + gap;
    return at - now < 1 ? Promise.resolve() : sleep(at - now);
  };
}

/** At most `n` holders at once; the rest wait in FIFO order. */
export function semaphore(n) {
  let free = n;
  const waiting = [];
  return {
    async acquire() {
      if (free > 0) {
        free--;
        return;
      }
      await new Promise((ok) => waiting.push(ok));
    },
    release() {
      const next = waiting.shift();
      if (next) next();
      else free++;
    },
  };
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// The namespaces the demo plays, one application per pattern (the Pay demo's are fixed: demo.pay*).
export const DEMO_NAMESPACES = {
  idempotency: 'shop.checkout',
  counter: 'web.page_views',
  rate_limit: 'api.tenants',
  queue: 'jobs.email',
  lock: 'inventory.sku',
  ordering: 'orders.events',
  single_flight: 'catalog.cache',
  ingest: 'partner.webhooks',
};

const QUEUE_KEYS = 6;
// Queue settings that let a poison message reach the dead-letter table within seconds, and an
// abandoned lease lapse while the demo watches.
const QUEUE_CONFIG = { maxAttempts: 4, leaseMs: 4_000, backoffBaseMs: 500, backoffCapMs: 4_000 };
// A namespace limit that the Zipf head exceeds at the demo's rate and the tail never does.
const TENANT_LIMIT = { algorithm: 'token_bucket', limit: 60, windowMs: 60_000, burst: 20 };

/** wrangler dev's own answer while it restarts the Worker after a source change. */
const RELOADING = /restarted mid-request/;

class Stopped extends Error {}
/** A request that got no answer (already logged by `call`). */
class NetworkError extends Error {}

/**
 * @param {{ url: string, requestsPerSecond?: number, maxInFlight?: number, seed?: number,
 *   apiToken?: string, operatorToken?: string, ingestToken?: string, ingestPerSecond?: number,
 *   log?: (line: string) => void }} opts
 *   requestsPerSecond: pattern requests per second (default 60); maxInFlight: requests in flight at
 *   most (default 8); ingestPerSecond: synthetic events per second posted to /ingest (default 8, 0: off)
 * @returns {{ stop: () => Promise<void>, stats: () => DemoStats }}
 *
 * @typedef {{ requests: number, byRoute: Record<string, Record<string, number>>, networkErrors: number,
 *   serverErrors: { method: string, path: string, status: number, body: string, answer: string }[],
 *   reloads: number,
 *   ingestedEvents: number }} DemoStats
 */
export function startDemoTraffic(opts) {
  const base = opts.url.replace(/\/$/, '');
  const apiToken = opts.apiToken ?? devVar('KEYWARDEN_API_TOKEN', 'dev-api-token');
  const operatorToken = opts.operatorToken ?? devVar('KEYWARDEN_OPERATOR_TOKEN', 'dev-operator-token');
  const ingestToken = opts.ingestToken ?? devVar('KEYWARDEN_INGEST_TOKEN', 'dev-ingest-token');
  const perSecond = opts.requestsPerSecond ?? 60;
  const maxInFlight = Math.min(opts.maxInFlight ?? 8, 8);
  const ingestPerSecond = opts.ingestPerSecond ?? 8;
  const log = opts.log ?? ((line) => console.warn(`keywarden demo: ${line}`));
  const random = rng(opts.seed ?? 42);
  // Ids must be new on every run: state persists across `npm start`s, and a requestId seen before
  // would be answered `duplicate` forever. The shape of the workload stays seeded.
  const run = Date.now().toString(36);
  let serial = 0;
  const newId = (prefix) => `${prefix}-${run}-${(serial++).toString(36)}`;
  const chance = (p) => random() < p;
  const between = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));

  const pace = pacer(perSecond);
  const slots = semaphore(maxInFlight);
  const abort = new AbortController();
  let stopped = false;
  /** @type {DemoStats} */
  const stats = {
    requests: 0,
    byRoute: {},
    networkErrors: 0,
    serverErrors: [],
    reloads: 0,
    ingestedEvents: 0,
  };
  let complaints = 0;
  const complain = (line) => {
    if (complaints++ < 5) log(line);
    else if (complaints === 6) log('more errors; not logging them any more');
  };

  /**
   * One request to the Worker, paced and bounded; answers {status, body (parsed JSON or null),
   * headers}. wrangler dev answers 503 "restarted mid-request" while it reloads a changed source
   * file: that is not Keywarden's answer, so it is counted apart and the request retried once, as a
   * client retries a 503.
   */
  async function call(method, path, body, headers = {}) {
    for (let attempt = 1; ; attempt++) {
      const res = await send(method, path, body, headers);
      if (!res.reloaded) return res;
      stats.reloads++;
      if (stats.reloads === 1) log('wrangler dev reloaded (a source file changed): retrying what it dropped');
      if (attempt === 2) return res;
      await pause(500);
    }
  }

  async function send(method, path, body, headers) {
    if (stopped) throw new Stopped();
    await pace();
    await slots.acquire();
    const route = `${method} ${path.replace(/\?.*$/, '').replace(/\/(objects\/[a-z_]+|demo\/pay)\/[^/]+/, '/$1/:key')}`;
    try {
      if (stopped) throw new Stopped();
      const text = body === undefined ? undefined : JSON.stringify(body);
      stats.requests++;
      const res = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${apiToken}`,
          traceparent: traceparent(),
          ...(text === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        body: text,
        signal: abort.signal,
      });
      const answer = await res.text();
      const reloaded = res.status === 503 && RELOADING.test(answer);
      if (!reloaded) {
        stats.byRoute[route] ??= {};
        const counts = stats.byRoute[route];
        counts[res.status] = (counts[res.status] ?? 0) + 1;
      }
      if (res.status >= 500 && !reloaded) {
        stats.serverErrors.push({ method, path, status: res.status, body: text ?? '', answer });
        complain(`${method} ${path} ${text ?? ''} answered ${res.status}: ${answer.slice(0, 300)}`);
      }
      let parsed = null;
      try {
        parsed = JSON.parse(answer);
      } catch {}
      return { status: res.status, body: parsed, headers: res.headers, reloaded };
    } catch (err) {
      if (stopped || err instanceof Stopped) throw new Stopped();
      stats.networkErrors++;
      complain(`${method} ${path} failed: ${err.message}`);
      throw new NetworkError(err.message);
    } finally {
      slots.release();
    }
  }

  /** A 4xx the scenario did not expect is a bug in the demo (or the route): say so, a few times. */
  function unexpected(what, res) {
    if (res.status < 500)
      complain(`${what} answered ${res.status}: ${JSON.stringify(res.body)?.slice(0, 300)}`);
  }

  const traceparent = () => `00-${hex(32)}-${hex(16)}-01`;
  function hex(n) {
    let s = '';
    while (s.length < n)
      s += Math.floor(random() * 0x100000000)
        .toString(16)
        .padStart(8, '0');
    return s.slice(0, n);
  }

  const obj = (pattern, key, action) =>
    `/objects/${pattern}/${encodeURIComponent(key)}/${action}?ns=${DEMO_NAMESPACES[pattern]}`;
  const pause = (ms) =>
    stopped ? Promise.reject(new Stopped()) : sleep(ms).then(() => stopped && Promise.reject(new Stopped()));

  // ---- scenarios: one client interaction each, a few requests in sequence --------------------

  const orderKey = zipf(300, 1.05, random);
  /** Pay button: one charge per Idempotency-Key; double clicks, late retries, a reused key. */
  async function pay() {
    const orderId = `A${1000 + orderKey()}`;
    const key = newId('pay');
    const amount = between(5, 500) * 100;
    const send = (amt = amount) =>
      call('POST', `/demo/pay/${orderId}`, { amount: amt }, { 'idempotency-key': key });
    const settle = async (res) => {
      // A 409 in_flight says: the first click is still charging; retry after Retry-After.
      for (let i = 0; i < 3 && res.status === 409 && res.body?.error?.code === 'in_flight'; i++) {
        await pause(
          Math.min(1000, 1000 * Number(res.headers.get('retry-after') ?? 1)) * (0.3 + random() * 0.3),
        );
        res = await send();
      }
      if (res.status !== 200) unexpected(`pay ${orderId}`, res);
      return res;
    };
    if (chance(0.15)) {
      // A double click: two requests with one key, at once.
      await Promise.all([send().then(settle), send().then(settle)]);
    } else {
      await settle(await send());
    }
    if (chance(0.12)) await settle(await send()); // the client did not see the answer and retries
    if (chance(0.02)) {
      const res = await send(amount + 100); // a key reused for another payment
      if (res.status !== 409) unexpected(`pay conflict ${orderId}`, res);
    }
  }

  const cartKey = zipf(200, 1.1, random);
  /** Idempotency ledger used directly: begin → side effect → complete | fail, with retries. */
  async function checkout() {
    const key = `cart:${cartKey()}`;
    const requestId = newId('co');
    const payloadHash = hex(16);
    const begin = (hash = payloadHash) =>
      call('POST', obj('idempotency', key, 'begin'), { requestId, payloadHash: hash, leaseMs: 5_000 });
    let res = await begin();
    if (res.body?.decision !== 'proceed') return unexpected(`begin ${key}`, res);
    let lease = res.body.lease;
    const failing = chance(0.05);
    const effect = pause(between(20, 80));
    // If the retry below throws (the demo stopped), nobody awaits `effect`: mark it handled.
    effect.catch(() => {});
    if (chance(0.12)) {
      // A concurrent retry while the owner works: `in_flight` at once.
      await begin();
    }
    await effect;
    if (failing) {
      const retryable = chance(0.8);
      await call('POST', obj('idempotency', key, 'fail'), {
        requestId,
        lease,
        error: 'card declined by issuer',
        retryable,
      });
      res = await begin(); // the client retries: runs again (retryable) or gets `failed`
      if (res.body?.decision !== 'proceed') return;
      lease = res.body.lease;
      await pause(between(20, 60));
    }
    await call('POST', obj('idempotency', key, 'complete'), {
      requestId,
      lease,
      response: { orderId: key, status: 'confirmed' },
    });
    if (chance(0.12)) await begin(); // a late retry: `duplicate` with the stored response
    if (chance(0.02)) await begin(hex(16)); // the same id for another payload: `conflict`
  }

  const pageKey = zipf(400, 1.1, random);
  /** Page views: exact counts, retried increments deduped by requestId. */
  async function pageView() {
    const key = `page:${pageKey()}`;
    const body = chance(0.9) ? { requestId: newId('view') } : {};
    await call('POST', obj('counter', key, 'increment'), body);
    if (body.requestId && chance(0.1)) await call('POST', obj('counter', key, 'increment'), body);
  }

  const tenantKey = zipf(40, 1.2, random);
  /** API calls per tenant: the hot tenants get limited, clients retry after Retry-After. */
  async function apiCall() {
    const key = `tenant:${tenantKey()}`;
    const body = { requestId: newId('api') };
    let res = await call('POST', obj('rate_limit', key, 'check'), body);
    if (res.status === 429 && chance(0.5)) {
      const after = Number(res.headers.get('retry-after') ?? 1);
      if (after <= 2) {
        await pause(after * 1000);
        res = await call('POST', obj('rate_limit', key, 'check'), body); // decided again
      }
    } else if (res.status === 200 && chance(0.06)) {
      await call('POST', obj('rate_limit', key, 'check'), body); // a retry: answered from the ledger
    }
    if (res.status !== 200 && res.status !== 429) unexpected(`check ${key}`, res);
  }

  const queueKey = zipf(QUEUE_KEYS, 1.0, random);
  /** Producers: enqueue with a message id; a producer retry is deduped by it. */
  async function produce() {
    const key = `queue:${queueKey()}`;
    const message = {
      id: newId('msg'),
      body: { to: `user${between(1, 5000)}@example.com`, poison: chance(0.03) },
    };
    await call('POST', obj('queue', key, 'enqueue'), message);
    if (chance(0.05)) await call('POST', obj('queue', key, 'enqueue'), message);
  }

  /** Consumers: receive a few, ack most, nack some, abandon a few leases (they lapse and retry). */
  async function consume() {
    const key = `queue:${queueKey()}`;
    const res = await call('POST', obj('queue', key, 'receive'), { max: 4, leaseMs: QUEUE_CONFIG.leaseMs });
    for (const m of res.body?.messages ?? []) {
      const lease = { id: m.id, leaseToken: m.leaseToken };
      if (m.body?.poison || chance(0.07)) await call('POST', obj('queue', key, 'nack'), lease);
      else if (chance(0.04))
        continue; // the consumer died: the lease lapses
      else {
        await call('POST', obj('queue', key, 'ack'), lease);
        if (chance(0.03)) await call('POST', obj('queue', key, 'ack'), lease); // replayed ack
      }
    }
  }

  const skuKey = zipf(5, 1.2, random);
  let lockers = 0;
  /** Stock updates under a lock: waits behind other holders, a crashed holder's lease expires. */
  async function stockUpdate(key = `sku:${skuKey()}`) {
    if (lockers >= 3) return; // long polls hold connections: keep them few
    lockers++;
    try {
      const requestId = newId('lk');
      const crash = chance(0.04);
      const acquire = () =>
        call('POST', obj('lock', key, 'acquire'), {
          requestId,
          ttlMs: crash ? 1_500 : 3_000,
          waitMs: 2_000,
          pollMs: 400,
        });
      let res = await acquire();
      while (res.status === 202) res = await acquire(); // still queued: poll again, same requestId
      if (res.status !== 200) return; // timed out behind the holders
      const { token } = res.body;
      if (chance(0.03)) await acquire(); // a retried acquire: the grant back, replayed
      await call('POST', obj('lock', key, 'write'), { token, payload: { stock: between(0, 99) }, requestId });
      if (crash) {
        // The holder stalls past its lease: the lease expires, and its late write is fenced.
        await pause(1_800);
        await call('POST', obj('lock', key, 'write'), { token, payload: { stock: 0 } });
        return;
      }
      await pause(between(40, 160));
      await call('POST', obj('lock', key, 'release'), { token });
    } finally {
      lockers--;
    }
  }
  /** Two clients racing for one SKU. */
  const stockRace = () => {
    const key = `sku:${skuKey()}`;
    return Promise.all([stockUpdate(key), stockUpdate(key)]);
  };

  const streamKey = zipf(20, 1.1, random);
  /** @type {Map<string, number>} the writer's next sequence number per stream */
  const nextSeq = new Map();
  /** An order's event stream: numbered writes, some overtaking others on the way. */
  async function orderEvents() {
    const key = `order:${streamKey()}`;
    if (!nextSeq.has(key)) {
      // State outlives the demo: continue where the stream is.
      const res = await call('GET', obj('ordering', key, 'inspect'));
      if (!nextSeq.has(key)) nextSeq.set(key, res.body?.expected ?? 1);
    }
    const write = async (seq) => {
      const res = await call('POST', obj('ordering', key, 'write'), {
        seq,
        payload: { status: ['created', 'paid', 'packed', 'shipped'][seq % 4] },
        requestId: `${key}#${seq}-${run}`,
      });
      // Refused: a write was lost on the way; the writer resends from what the stream expects.
      if (res.status === 409 && res.body?.expected) nextSeq.set(key, res.body.expected);
    };
    const u = random();
    const n = nextSeq.get(key);
    if (u < 0.75) {
      nextSeq.set(key, n + 1);
      await write(n);
    } else if (u < 0.9) {
      nextSeq.set(key, n + 2);
      await write(n + 1); // overtakes n: gap
      await write(n);
    } else if (u < 0.95) {
      nextSeq.set(key, n + 3);
      await write(n + 2);
      await write(n + 1);
      await write(n);
    } else if (n > 1) {
      await write(n - 1); // a retried write: duplicate
    }
  }

  const productKey = zipf(15, 1.1, random);
  /** Cache refreshes: a burst of misses on one product shares one load. */
  async function refresh() {
    const key = `product:${productKey()}`;
    const callers = chance(0.6) ? between(2, 4) : 1;
    const params = { delayMs: between(120, 300), rounds: 200 };
    if (chance(0.05)) params.fail = 'upstream answered 503';
    await Promise.all(
      Array.from({ length: callers }, () =>
        call('POST', obj('single_flight', key, 'load'), {
          loader: 'demo.digest',
          params,
          requestId: newId('ld'),
        }),
      ),
    );
  }

  // Weights in scenarios; a scenario averages about two requests.
  const SCENARIOS = [
    [pay, 8],
    [checkout, 9],
    [pageView, 16],
    [apiCall, 18],
    [produce, 11],
    [consume, 10],
    [stockUpdate, 5],
    [stockRace, 2],
    [orderEvents, 12],
    [refresh, 4],
  ];
  const totalWeight = SCENARIOS.reduce((n, [, w]) => n + w, 0);
  function pickScenario() {
    let u = random() * totalWeight;
    for (const [f, w] of SCENARIOS) {
      u -= w;
      if (u < 0) return f;
    }
    return SCENARIOS[0][0];
  }

  // Lanes run scenarios back to back; the pacer and the slots bound the load, and more lanes than
  // slots keep requests flowing while some lanes wait (lock holders, retry pauses).
  async function lane() {
    while (!stopped) {
      try {
        await pickScenario()();
      } catch (err) {
        if (err instanceof Stopped || stopped) return;
        if (!(err instanceof NetworkError)) complain(`a scenario failed: ${err.stack ?? err}`);
        await sleep(1_000); // the server is away (or the demo has a bug): do not spin
      }
    }
  }

  /** The demo's limits and queue settings: operator routes, so the operator token. */
  async function setup() {
    const asOperator = { authorization: `Bearer ${operatorToken}` };
    const configure = async (path, body) => {
      const res = await call('PUT', path, body, asOperator);
      if (res.status !== 200) unexpected(`PUT ${path}`, res);
    };
    try {
      await configure(`/ops/objects/rate_limit/config?ns=${DEMO_NAMESPACES.rate_limit}`, TENANT_LIMIT);
      for (let i = 0; i < QUEUE_KEYS; i++) {
        await configure(`/ops${obj('queue', `queue:${i}`, 'config')}`, QUEUE_CONFIG);
      }
    } catch {}
  }

  const lanes = setup().then(() => Promise.all(Array.from({ length: maxInFlight * 3 }, lane)));

  // ---- the outside producer: decision events posted to /ingest ------------------------------

  const endpointKey = zipf(30, 1.1, random);
  const emitter = `demo-webhooks-${run}`;
  let seq = 0;
  let last = [];
  async function ingestTick() {
    const events = [];
    for (let i = 0; i < Math.max(1, Math.round(ingestPerSecond / 2)); i++) {
      const u = random();
      events.push({
        v: 1,
        id: `${emitter}:${seq++}`,
        ts: Date.now(),
        ns: DEMO_NAMESPACES.ingest,
        key: `endpoint:${endpointKey()}`,
        pattern: 'webhook',
        decision: u < 0.85 ? 'accepted' : u < 0.97 ? 'duplicate' : 'rejected',
        count: 1,
        requestId: newId('evt'),
        durationMs: between(1, 40),
      });
    }
    // A producer retries a batch it did not see acknowledged: the collector counts it once.
    const batch = chance(0.2) ? [...events, ...last] : events;
    last = events;
    try {
      const res = await fetch(`${base}/ingest`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ingestToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ events: batch }),
        signal: abort.signal,
      });
      const answer = await res.text();
      if (res.ok) stats.ingestedEvents += events.length;
      else if (res.status === 503 && RELOADING.test(answer)) stats.reloads++;
      else if (res.status >= 500) {
        stats.serverErrors.push({ method: 'POST', path: '/ingest', status: res.status, body: '', answer });
        complain(`POST /ingest answered ${res.status}: ${answer.slice(0, 300)}`);
      } else complain(`POST /ingest answered ${res.status}: ${answer.slice(0, 300)}`);
    } catch (err) {
      if (!stopped) {
        stats.networkErrors++;
        complain(`POST /ingest failed: ${err.message}`);
      }
    }
  }
  const ingestTimer = ingestPerSecond > 0 ? setInterval(() => !stopped && ingestTick(), 500) : null;

  return {
    /** Stops at once: requests in flight are aborted, lanes end. */
    async stop() {
      if (stopped) return;
      stopped = true;
      if (ingestTimer) clearInterval(ingestTimer);
      abort.abort();
      await Promise.race([lanes, sleep(3_000)]);
    },
    stats: () => stats,
  };
}
