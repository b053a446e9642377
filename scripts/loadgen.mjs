// npm run loadgen -- --hot <key> --share 0.3 --seconds 60 [options]
//
// Makes one key hot on a running Keywarden: `--hot <key>` receives `--share` of all requests, the
// rest spread Zipf over other keys of the same namespace — the load that trips a hot-key alert and
// that a shard split is rehearsed on. Requests go to the real pattern objects (a counter increment
// or a rate-limit check, each with a fresh requestId), paced at `--rps`, with a bounded number in
// flight, for a bounded time. Loopback URLs only: this is a local drill, not a load-testing tool.
import { devVar, isLoopback, pacer, rng, semaphore, zipf } from './demo-traffic.mjs';
import { parseOptions, UsageError } from './lib/cli.mjs';

const PATTERNS = {
  counter: { action: 'increment', ok: [200] },
  // A limited check is a decision too (the hot tenant is expected to hit its limit), not an error.
  rate_limit: { action: 'check', ok: [200, 429] },
};

const OPTIONS = {
  share: { def: 0.3, min: 0, max: 1, help: "the hot key's share of all requests" },
  seconds: { def: 60, min: 1, max: 600, help: 'how long to run' },
  rps: { def: 50, min: 1, max: 2000, help: 'requests per second (target)' },
  concurrency: { def: 8, min: 1, max: 64, help: 'requests in flight at most' },
  keys: { def: 200, min: 1, max: 100_000, help: 'other keys the rest of the load spreads over' },
  zipf: { def: 1.1, min: 0, max: 5, help: 'Zipf exponent over the other keys (0: uniform)' },
  seed: { def: 42, min: 0, max: 2 ** 32 - 1, help: 'PRNG seed' },
};

function usage(code, error) {
  if (error) {
    console.error(`loadgen: ${error} (see npm run loadgen -- --help)`);
    process.exit(code);
  }
  const lines = Object.entries(OPTIONS).map(
    ([name, o]) => `  --${name.padEnd(13)} ${o.help} (default ${o.def}, ${o.min}–${o.max})`,
  );
  console.log(`usage: npm run loadgen -- --hot <key> [options]

Sends requests to a running Keywarden where <key> receives --share of them and the rest spread
Zipf over other keys, for --seconds; prints progress every second and a summary.

  --hot <key>     the key to make hot (required)
  --pattern <p>   ${Object.keys(PATTERNS).join(' | ')} (default counter)
  --ns <ns>       the namespace (default loadgen.<pattern>)
  --url <url>     Keywarden's URL, loopback only (default http://127.0.0.1:8787)
${lines.join('\n')}
  --help          this text

The API token is KEYWARDEN_API_TOKEN from .dev.vars (default dev-api-token).
Example: npm run loadgen -- --hot tenant:42 --share 0.3 --seconds 60 --pattern rate_limit`);
  process.exit(code);
}

function parseArgs(argv) {
  let o;
  try {
    o = parseOptions(argv, {
      numbers: OPTIONS,
      strings: {
        hot: { def: null },
        ns: { def: null },
        url: { def: 'http://127.0.0.1:8787' },
        pattern: { def: 'counter', oneOf: Object.keys(PATTERNS) },
      },
    });
  } catch (err) {
    if (err instanceof UsageError) usage(2, err.message);
    throw err;
  }
  if (o.help) usage(0);
  if (!o.hot) usage(2, '--hot <key> is required');
  if (o.hot.length > 512) usage(2, '--hot: a key is at most 512 bytes');
  let url;
  try {
    url = new URL(o.url);
  } catch {
    usage(2, `--url "${o.url}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    usage(2, `--url must be http(s), got "${o.url}"`);
  if (!isLoopback(o.url))
    usage(2, `--url must point at this machine (127.0.0.1, localhost or ::1), got "${url.hostname}"`);
  o.url = o.url.replace(/\/$/, '');
  o.ns ??= `loadgen.${o.pattern}`;
  return o;
}

/** The other keys: named like the hot one (`tenant:42` → `tenant:0`, `tenant:1`, …), never equal to it. */
function otherKeys(hot, n) {
  const prefix = hot.includes(':') ? hot.slice(0, hot.lastIndexOf(':') + 1) : `${hot}-`;
  const keys = [];
  for (let i = 0; keys.length < n; i++) if (`${prefix}${i}` !== hot) keys.push(`${prefix}${i}`);
  return keys;
}

/** Why a fetch got no answer: ECONNREFUSED rather than "fetch failed". */
const reason = (err) => err.cause?.code ?? err.cause?.errors?.[0]?.code ?? err.cause?.message ?? err.message;

const pct = (x) => `${(100 * x).toFixed(1)}%`;

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const token = devVar('KEYWARDEN_API_TOKEN', 'dev-api-token');
  const { action, ok } = PATTERNS[o.pattern];
  const random = rng(o.seed);
  const others = otherKeys(o.hot, o.keys);
  const pickOther = zipf(others.length, o.zipf, random);
  const run = Date.now().toString(36);
  const path = (key) =>
    `/objects/${o.pattern}/${encodeURIComponent(key)}/${action}?ns=${encodeURIComponent(o.ns)}`;

  // Fail fast, with the reason, when Keywarden is not there or the token is wrong.
  try {
    const res = await fetch(`${o.url}${path(o.hot)}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ requestId: `loadgen-${run}-probe` }),
    });
    if (!ok.includes(res.status)) {
      console.error(`loadgen: ${o.url} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
      process.exit(1);
    }
  } catch (err) {
    console.error(`loadgen: no Keywarden at ${o.url} (${reason(err)}); start it with npm start`);
    process.exit(1);
  }

  console.log(
    `loadgen: ${o.url} ${o.pattern} ns=${o.ns}: ${o.hot} gets ${pct(o.share)} of ${o.rps} req/s, ` +
      `the rest Zipf(${o.zipf}) over ${others.length} keys, for ${o.seconds} s`,
  );

  const total = { sent: 0, hot: 0, answered: 0, statuses: {}, errors: 0, latencies: [] };
  let second = { sent: 0, hot: 0, errors: 0, limited: 0 };
  const errorSamples = [];
  const pace = pacer(o.rps);
  const slots = semaphore(o.concurrency);
  let serial = 0;

  async function one() {
    const isHot = random() < o.share;
    const key = isHot ? o.hot : others[pickOther()];
    total.sent++;
    second.sent++;
    if (isHot) {
      total.hot++;
      second.hot++;
    }
    const t0 = performance.now();
    try {
      const res = await fetch(`${o.url}${path(key)}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ requestId: `loadgen-${run}-${(serial++).toString(36)}` }),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      total.answered++;
      total.latencies.push(performance.now() - t0);
      total.statuses[res.status] = (total.statuses[res.status] ?? 0) + 1;
      if (res.status === 429) second.limited++;
      if (!ok.includes(res.status)) {
        total.errors++;
        second.errors++;
        if (errorSamples.length < 3)
          errorSamples.push(`POST ${path(key)} → ${res.status} ${text.slice(0, 200)}`);
      }
    } catch (err) {
      total.errors++;
      second.errors++;
      if (errorSamples.length < 3) errorSamples.push(`POST ${path(key)} → ${reason(err)}`);
    } finally {
      slots.release();
    }
  }

  const started = performance.now();
  const end = started + o.seconds * 1000;
  let tick = 1;
  const progress = setInterval(() => {
    const s = second;
    second = { sent: 0, hot: 0, errors: 0, limited: 0 };
    const limited = o.pattern === 'rate_limit' ? ` limited=${s.limited}` : '';
    console.log(
      `  t=${String(tick++).padStart(3)}s sent=${s.sent} hot=${s.hot} (${s.sent ? pct(s.hot / s.sent) : '-'})${limited} errors=${s.errors}`,
    );
  }, 1000);

  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const inFlight = new Set();
  while (!interrupted) {
    await pace();
    if (performance.now() >= end || interrupted) break;
    await slots.acquire();
    const p = one();
    inFlight.add(p);
    p.finally(() => inFlight.delete(p));
  }
  await Promise.all(inFlight);
  clearInterval(progress);
  const elapsed = (performance.now() - started) / 1000;

  const lat = total.latencies.sort((a, b) => a - b);
  const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(1) : '-');
  const statuses = Object.entries(total.statuses)
    .map(([s, n]) => `${s}×${n}`)
    .join(' ');
  console.log(`
loadgen summary${interrupted ? ' (interrupted)' : ''}
  requests sent   ${total.sent} in ${elapsed.toFixed(1)} s (${(total.sent / elapsed).toFixed(1)} req/s; target ${o.rps})
  hot key         ${o.hot}: ${total.hot} requests, share ${total.sent ? pct(total.hot / total.sent) : '-'} (target ${pct(o.share)})
  answers         ${statuses || '-'}
  latency         p50 ${q(0.5)} ms, p99 ${q(0.99)} ms
  errors          ${total.errors}${errorSamples.map((e) => `\n    ${e}`).join('')}
  see             ${o.url}/api/hot-keys?ns=${encodeURIComponent(o.ns)}&window=60`);
  process.exit(total.errors > 0 ? 1 : 0);
}

await main();
