// Demo traffic for `npm start`: a Zipf mix of keys across namespaces, so a new user's dashboard
// shows live data. It plays an outside producer posting decision events to POST /ingest, with the
// retries and duplicates real producers send. Bounded rate; stops with the server.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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

/** Seeded PRNG (mulberry32): the same demo every run. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Zipf(s) over ranks 0..n-1 by inverse CDF over a precomputed table. */
export function zipf(n, s, random) {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += 1 / (i + 1) ** s;
    cdf[i] = sum;
  }
  for (let i = 0; i < n; i++) cdf[i] /= sum;
  return () => {
    const u = random();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

const NAMESPACES = [
  {
    ns: 'payments.idempotency',
    pattern: 'idempotency',
    prefix: 'order',
    decisions: [
      ['applied', 0.8],
      ['duplicate', 0.15],
      ['in_flight', 0.04],
      ['conflict', 0.01],
    ],
  },
  {
    ns: 'api.rate_limit',
    pattern: 'rate_limit',
    prefix: 'tenant',
    decisions: [
      ['allowed', 0.9],
      ['limited', 0.1],
    ],
  },
  {
    ns: 'jobs.queue',
    pattern: 'queue',
    prefix: 'queue',
    decisions: [
      ['enqueued', 0.35],
      ['delivered', 0.33],
      ['acked', 0.3],
      ['retried', 0.02],
    ],
  },
  {
    ns: 'inventory.lock',
    pattern: 'lock',
    prefix: 'sku',
    decisions: [
      ['acquired', 0.45],
      ['released', 0.45],
      ['waited', 0.08],
      ['expired', 0.02],
    ],
  },
];

/**
 * @param {{ url: string, eventsPerSecond?: number, seed?: number, token?: string }} opts
 */
export function startDemoTraffic(opts) {
  const token = opts.token ?? devVar('KEYWARDEN_INGEST_TOKEN', 'dev-ingest-token');
  const perSecond = opts.eventsPerSecond ?? 400;
  const random = rng(opts.seed ?? 42);
  const pickKey = zipf(500, 1.1, random);
  const emitter = `demo-${process.pid}-${Date.now()}`;
  let seq = 0;
  let last = [];
  let stopped = false;
  let failures = 0;

  function pickDecision(decisions) {
    let u = random();
    for (const [d, p] of decisions) {
      u -= p;
      if (u <= 0) return d;
    }
    return decisions[0][0];
  }

  async function tick() {
    const events = [];
    const n = Math.max(1, Math.round(perSecond / 4));
    for (let i = 0; i < n; i++) {
      const space = NAMESPACES[Math.floor(random() * NAMESPACES.length)];
      const decision = pickDecision(space.decisions);
      const e = {
        v: 1,
        id: `${emitter}:${seq++}`,
        ts: Date.now(),
        ns: space.ns,
        key: `${space.prefix}:${pickKey()}`,
        pattern: space.pattern,
        decision,
        count: 1,
      };
      if (space.pattern === 'idempotency') e.requestId = `req-${seq.toString(36)}`;
      if (space.pattern === 'lock' && decision === 'waited') e.value = Math.round(random() * 200);
      if (space.pattern === 'rate_limit') e.value = Math.floor(random() * 100);
      events.push(e);
    }
    // Real producers retry: resend a slice of the previous batch; the collector must count it once.
    const body = JSON.stringify({ events: [...events, ...last.slice(0, 5)] });
    last = events;
    try {
      const res = await fetch(`${opts.url}/ingest`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body,
      });
      if (!res.ok && failures++ < 3)
        console.warn(`keywarden demo: ingest answered ${res.status}: ${await res.text()}`);
    } catch (err) {
      if (!stopped && failures++ < 3) console.warn(`keywarden demo: ingest failed: ${err.message}`);
    }
  }

  const timer = setInterval(() => {
    if (!stopped) tick();
  }, 250);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
