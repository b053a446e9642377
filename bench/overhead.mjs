// npm run bench:overhead [-- --patterns counter,rate_limit --phases 8 --seconds 4 --concurrency 16]
//
// What the telemetry costs a pattern object: throughput and latency with the emitter ON vs OFF, in
// the same build and the same wrangler dev (offline, 127.0.0.1, a fresh state dir). Two disjoint key
// sets of one namespace: `inst:NN` keep telemetry on, `bare:NN` are switched off through the operator
// route (PUT /ops/objects/:pattern/:key/telemetry {"enabled":false}). Before timing, the switch is
// checked: an ON object has sent events and an OFF object none (else exit 1); after every OFF phase,
// every OFF object is checked again (an evicted object would come back with telemetry on).
//
// wrangler dev rebuilds and restarts workerd when a source file changes. A phase during which that
// happened (workerd's pid changed) is void and done again, at most twice per pattern; the run then
// says how many reloads it saw, since phases before and after one ran different builds.
//
// Phases alternate ON, OFF, OFF, ON, ON, OFF, … (ABBA, so a drift of the machine — other processes,
// a warming JIT, a growing table — weighs on both sides alike), each a closed loop with the same
// concurrency and request shape. Printed: per-phase requests/s, the medians per side, the ratio
// instrumented / bare against the target ≥ 0.95 (PASS/MISS), p50/p99 latency per side, and the
// server's CPU per request (the wrangler process tree, from /proc): on a shared 2-core machine the
// CPU per request is steadier than the throughput.
//
// Locally the ON side also pays for the collector: its shards run in the same workerd, on the same
// core, where production runs them elsewhere. The local ratio is a pessimistic bound.
//
// Exit code: 0 when the run worked (PASS or MISS), 1 when the switch did not hold or a request
// failed, 2 on bad arguments.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWranglerDev } from '../scripts/wrangler-dev.mjs';

const TARGET = 0.95;
/** Other processes' average CPU above which a run is flagged as measured on a busy machine. */
const BUSY_CORES = 0.25;
const TOKENS = {
  KEYWARDEN_API_TOKEN: 'bench-api-token',
  KEYWARDEN_OPERATOR_TOKEN: 'bench-operator-token',
  KEYWARDEN_INGEST_TOKEN: 'bench-ingest-token',
};

/** The request each pattern is measured with; both sides send exactly this shape. */
const PATTERNS = {
  counter: { action: 'increment', body: (id) => `{"requestId":"${id}"}` },
  rate_limit: { action: 'check', body: (id) => `{"requestId":"${id}"}` },
};

// ---- options ------------------------------------------------------------------------------------

const OPTIONS = {
  phases: { def: 8, min: 2, max: 20, help: 'timed phases per pattern, alternating ON/OFF (even)' },
  seconds: { def: 4, min: 1, max: 30, help: 'length of one phase, s' },
  warmup: { def: 4, min: 0, max: 30, help: 'warmup per pattern (half per side), s' },
  concurrency: { def: 16, min: 1, max: 64, help: 'requests in flight' },
  keys: { def: 16, min: 1, max: 256, help: 'objects per side' },
};

function usage(code, error) {
  if (error) {
    console.error(`bench:overhead: ${error} (see npm run bench:overhead -- --help)`);
    process.exit(code);
  }
  console.log(`usage: npm run bench:overhead [-- options]

Throughput and latency of pattern objects with telemetry ON vs OFF, same build, same wrangler dev.

  --patterns <list>  ${Object.keys(PATTERNS).join(',')} (default both)
${Object.entries(OPTIONS)
  .map(([k, o]) => `  --${k.padEnd(16)} ${o.help} (default ${o.def}, ${o.min}–${o.max})`)
  .join('\n')}
  --help             this text`);
  process.exit(code);
}

function parseArgs(argv) {
  const o = Object.fromEntries(Object.entries(OPTIONS).map(([k, v]) => [k, v.def]));
  o.patterns = Object.keys(PATTERNS);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--help' || argv[i] === '-h') usage(0);
    const name = argv[i].replace(/^--/, '');
    const raw = argv[++i];
    if (raw === undefined) usage(2, `${argv[i - 1]} needs a value`);
    if (name === 'patterns') {
      o.patterns = raw.split(',').filter(Boolean);
      const bad = o.patterns.find((p) => !(p in PATTERNS));
      if (bad || o.patterns.length === 0) usage(2, `--patterns takes ${Object.keys(PATTERNS).join(',')}`);
      continue;
    }
    const spec = OPTIONS[name];
    if (!spec) usage(2, `unknown option ${argv[i - 1]}`);
    const n = Number(raw);
    if (!Number.isInteger(n) || n < spec.min || n > spec.max)
      usage(2, `--${name} must be an integer from ${spec.min} to ${spec.max}`);
    o[name] = n;
  }
  if (o.phases % 2 !== 0) usage(2, '--phases must be even (as many ON as OFF phases)');
  return o;
}

// ---- a lean keep-alive client: node:http costs the shared cores less per request than fetch ----

function httpClient(baseUrl, sockets) {
  const base = new URL(baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: sockets });
  function send(method, path, body, token) {
    return new Promise((ok, fail) => {
      const t0 = performance.now();
      const headers = { authorization: `Bearer ${token}` };
      if (body !== null) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(body);
      }
      const req = request({ host: base.hostname, port: base.port, method, path, agent, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          text += d;
        });
        res.on('end', () => ok({ status: res.statusCode ?? 0, text, ms: performance.now() - t0 }));
        res.on('error', fail);
      });
      req.setTimeout(30_000, () => req.destroy(new Error('no answer in 30 s')));
      req.on('error', fail);
      req.end(body ?? undefined);
    });
  }
  return { send, close: () => agent.destroy() };
}

// ---- the server's CPU: the wrangler process tree, from /proc (Linux) -----------------------------

/**
 * CPU seconds of `rootPid` and its descendants, and which processes they are. wrangler dev rebuilds
 * and restarts workerd when a source file changes (other people edit this tree while we measure):
 * a phase whose process set changed measured a reload, not the objects, and is done again.
 */
function serverSnapshot(rootPid) {
  const parent = new Map();
  const ticks = new Map();
  const workerds = new Set();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (stat.includes('(workerd)')) workerds.add(Number(name));
      parent.set(Number(name), Number(f[1]));
      ticks.set(Number(name), Number(f[11]) + Number(f[12]));
    } catch {}
  }
  let total = 0;
  const pids = [];
  for (const [pid, t] of ticks) {
    for (let p = pid; p > 1; p = parent.get(p) ?? 0) {
      if (p === rootPid) {
        total += t;
        if (workerds.has(pid)) pids.push(pid);
        break;
      }
    }
  }
  return { cpu: total / 100, pids: pids.sort((a, b) => a - b).join(',') }; // USER_HZ ticks; workerd pids
}

/** CPU seconds the whole machine spent busy (all cores), from /proc/stat. */
function machineBusy() {
  const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return (user + nice + system + irq + softirq + steal) / 100; // USER_HZ ticks
}

/** CPU seconds this process (the load generator) has used. */
const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

// ---- figures ------------------------------------------------------------------------------------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// ---- the run ------------------------------------------------------------------------------------

const opts = parseArgs(process.argv.slice(2));
const state = mkdtempSync(join(tmpdir(), 'keywarden-overhead-'));
// The whole run is bounded: whatever happens, the server is stopped and the process ends.
const budgetMs =
  30_000 + opts.patterns.length * (opts.warmup + (opts.phases + 2) * (opts.seconds + 2) + 10) * 1000;
let server;
const guard = setTimeout(async () => {
  console.error(`bench:overhead: did not finish in ${Math.round(budgetMs / 1000)} s; stopping`);
  await server?.stop();
  rmSync(state, { recursive: true, force: true });
  process.exit(1);
}, budgetMs);

console.log('bench:overhead: starting wrangler dev (offline, fresh state)…');
server = await startWranglerDev({
  persistTo: state,
  logLevel: 'warn',
  vars: { ...TOKENS, KEYWARDEN_DEMO: 'off' },
}).catch((err) => {
  console.error(`bench:overhead: wrangler dev did not start\n${err.message}`);
  rmSync(state, { recursive: true, force: true });
  process.exit(1);
});
const http = httpClient(server.url, opts.concurrency + 4);
const run = Date.now().toString(36);
let serial = 0;
let failed = false;
let reloads = 0;

async function must(method, path, body, token, expect = 200) {
  const res = await http.send(method, path, body, token);
  if (res.status !== expect) throw new Error(`${method} ${path} → ${res.status}: ${res.text.slice(0, 300)}`);
  return JSON.parse(res.text);
}

const keysOf = (side) =>
  Array.from(
    { length: opts.keys },
    (_, i) => `${side === 'on' ? 'inst' : 'bare'}:${String(i).padStart(2, '0')}`,
  );

async function benchPattern(pattern) {
  const ns = `bench.${pattern}`;
  const { action, body } = PATTERNS[pattern];
  const path = (key) => `/objects/${pattern}/${encodeURIComponent(key)}/${action}?ns=${ns}`;
  const telemetry = (key) => `/ops/objects/${pattern}/${encodeURIComponent(key)}/telemetry?ns=${ns}`;
  const api = TOKENS.KEYWARDEN_API_TOKEN;
  const operator = TOKENS.KEYWARDEN_OPERATOR_TOKEN;
  const keys = { on: keysOf('on'), off: keysOf('off') };

  if (pattern === 'rate_limit') {
    // Every check allowed: both sides do the same work, no 429s.
    await must(
      'PUT',
      `/ops/objects/rate_limit/config?ns=${ns}`,
      '{"algorithm":"token_bucket","limit":1000000000,"windowMs":60000}',
      operator,
    );
  }
  const switchOff = () =>
    Promise.all(keys.off.map((k) => must('PUT', telemetry(k), '{"enabled":false}', operator)));
  /** What each OFF object has sent so far: an OFF phase must add nothing. */
  const sentSoFar = async () =>
    (await Promise.all(keys.off.map((k) => must('GET', telemetry(k), null, operator)))).map((s) => s.sent);
  // Check: the switch works — an ON object sends its events, an OFF object sends none. A reload
  // in between re-creates the objects (telemetry on): then the check is done again.
  for (let attempt = 1; ; attempt++) {
    const pidsBefore = serverSnapshot(server.child.pid).pids;
    await switchOff();
    for (const k of [keys.on[0], keys.off[0]]) {
      for (let i = 0; i < 3; i++) await must('POST', path(k), body(`${run}-verify-${serial++}`), api);
    }
    let on = await must('GET', telemetry(keys.on[0]), null, operator);
    for (const deadline = Date.now() + 5_000; on.sent === 0 && Date.now() < deadline; ) {
      await sleep(100);
      on = await must('GET', telemetry(keys.on[0]), null, operator);
    }
    const off = await must('GET', telemetry(keys.off[0]), null, operator);
    console.log(
      `\n${pattern} (ns ${ns}): switch check: ${keys.on[0]} enabled=${on.enabled} sent=${on.sent}; ` +
        `${keys.off[0]} enabled=${off.enabled} sent=${off.sent} buffered=${off.buffered}`,
    );
    if (on.enabled && on.sent > 0 && !off.enabled && off.sent === 0 && off.buffered === 0) break;
    if (serverSnapshot(server.child.pid).pids === pidsBefore || attempt === 3) {
      throw new Error('the telemetry switch did not hold: the comparison would be meaningless');
    }
    console.log('  wrangler dev reloaded during the check (a source file changed); checking again');
  }

  /** A closed loop on one side's keys for `ms`: every lane sends its next request when the last answers. */
  async function phase(side, ms) {
    const ks = keys[side];
    const latencies = [];
    let errors = 0;
    let sample = null;
    let next = 0;
    const before = serverSnapshot(server.child.pid);
    const busy0 = machineBusy();
    const self0 = selfCpu();
    const t0 = performance.now();
    const end = t0 + ms;
    await Promise.all(
      Array.from({ length: opts.concurrency }, async () => {
        while (performance.now() < end) {
          const key = ks[next++ % ks.length];
          try {
            const res = await http.send('POST', path(key), body(`${run}-${serial++}`), api);
            if (res.status === 200) latencies.push(res.ms);
            else {
              errors++;
              sample ??= `POST ${path(key)} → ${res.status}: ${res.text.slice(0, 200)}`;
            }
          } catch (err) {
            errors++;
            sample ??= `POST ${path(key)} → ${err.message}`;
          }
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const after = serverSnapshot(server.child.pid);
    // What other processes took meanwhile: on a shared machine, the figures are only as good as this is small.
    const others = machineBusy() - busy0 - (after.cpu - before.cpu) - (selfCpu() - self0);
    return {
      pids: after.pids,
      cpu: after.cpu - before.cpu,
      othersCores: Math.max(0, others) / seconds,
      side,
      rps: latencies.length / seconds,
      seconds,
      latencies,
      errors,
      sample,
      n: latencies.length,
    };
  }

  /** The OFF objects that sent events since `sentBefore`, or are on (a reload re-creates them on). */
  async function offObjectsOn(sentBefore) {
    const stats = await Promise.all(keys.off.map((k) => must('GET', telemetry(k), null, operator)));
    return stats.filter((s, i) => s.enabled || s.sent !== sentBefore[i]);
  }

  const warm = (opts.warmup * 1000) / 2;
  if (warm > 0) {
    await phase('on', warm);
    await phase('off', warm);
  }

  const order = Array.from({ length: opts.phases }, (_, i) => ['on', 'off', 'off', 'on'][i % 4]);
  const results = [];
  let voided = 0;
  for (let i = 0; i < order.length; ) {
    const side = order[i];
    const label = `  phase ${String(i + 1).padStart(2)} ${side === 'on' ? 'ON ' : 'OFF'}`;
    // A reload re-creates the objects with telemetry on: watch for one from before the switch.
    const pidsBefore = serverSnapshot(server.child.pid).pids;
    if (side === 'off') await switchOff(); // idempotent
    await sleep(300); // the previous phase's telemetry flushes (~250 ms) outside this one
    const sentBefore = side === 'off' ? await sentSoFar() : [];
    const r = await phase(side, opts.seconds * 1000);
    r.reloaded = r.pids !== pidsBefore;
    if (!r.reloaded && side === 'off') {
      const on = await offObjectsOn(sentBefore);
      if (on.length > 0 && serverSnapshot(server.child.pid).pids === pidsBefore) {
        throw new Error(
          `${on.length} OFF object(s) had telemetry on after an OFF phase: ${JSON.stringify(on[0])}`,
        );
      }
      r.reloaded = on.length > 0;
    }
    if (r.reloaded) {
      // The process set changed: wrangler dev rebuilt and restarted workerd (a source file changed).
      reloads++;
      console.log(`${label}  void: wrangler dev reloaded during it (a source file changed); doing it again`);
      if (++voided > 2)
        throw new Error('wrangler dev keeps reloading (files change under the run); try later');
      continue;
    }
    results.push(r);
    i++;
    const lat = [...r.latencies].sort((a, b) => a - b);
    console.log(
      `${label} ${r.rps.toFixed(0).padStart(6)} req/s` +
        `  p50 ${quantile(lat, 0.5).toFixed(1).padStart(6)} ms  p99 ${quantile(lat, 0.99).toFixed(1).padStart(6)} ms` +
        `  server CPU ${((r.cpu / Math.max(1, r.n)) * 1e6).toFixed(0).padStart(5)} µs/req` +
        `  others ${r.othersCores.toFixed(2)} cores` +
        (r.errors ? `  errors ${r.errors} (${r.sample})` : ''),
    );
    if (r.errors) failed = true;
  }

  const side = (s) => {
    const rs = results.filter((r) => r.side === s);
    const lat = rs.flatMap((r) => r.latencies).sort((a, b) => a - b);
    const n = rs.reduce((a, r) => a + r.n, 0);
    return {
      rps: median(rs.map((r) => r.rps)),
      p50: quantile(lat, 0.5),
      p99: quantile(lat, 0.99),
      cpuPerReq: rs.reduce((a, r) => a + r.cpu, 0) / Math.max(1, n),
      othersCores: rs.reduce((a, r) => a + r.othersCores, 0) / rs.length,
    };
  };
  const ins = side('on');
  const bare = side('off');
  const ratio = ins.rps / bare.rps;
  // Adjacent phases (1–2, 3–4, …) hold one ON and one OFF: their ratio cancels slow drift.
  const pairs = [];
  for (let i = 0; i + 1 < results.length; i += 2) {
    const [a, b] = [results[i], results[i + 1]];
    pairs.push(a.side === 'on' ? a.rps / b.rps : b.rps / a.rps);
  }
  console.log(
    `  median   ON (instrumented) ${ins.rps.toFixed(0)} req/s   OFF (bare) ${bare.rps.toFixed(0)} req/s\n` +
      `  latency  ON p50 ${ins.p50.toFixed(1)} ms p99 ${ins.p99.toFixed(1)} ms   ` +
      `OFF p50 ${bare.p50.toFixed(1)} ms p99 ${bare.p99.toFixed(1)} ms\n` +
      `  server CPU per request  ON ${(ins.cpuPerReq * 1e6).toFixed(0)} µs   OFF ${(bare.cpuPerReq * 1e6).toFixed(0)} µs` +
      `   (OFF/ON ${(bare.cpuPerReq / ins.cpuPerReq).toFixed(3)})\n` +
      `  adjacent ON/OFF pairs  ${pairs.map((r) => r.toFixed(3)).join(' ')}  (median ${median(pairs).toFixed(3)})\n` +
      `  other processes  ${ins.othersCores.toFixed(2)} cores in ON phases, ${bare.othersCores.toFixed(2)} in OFF phases ` +
      `(of ${availableParallelism()})\n` +
      `  ratio instrumented / bare = ${ratio.toFixed(3)}  (target ≥ ${TARGET}): ${ratio >= TARGET ? 'PASS' : 'MISS'}`,
  );
  const busy = Math.max(ins.othersCores, bare.othersCores);
  if (busy > BUSY_CORES) {
    console.log(
      `  ! other processes took up to ${busy.toFixed(2)} cores during the phases: the figures above measure ` +
        'the machine as much as the telemetry; run again on a quiet machine',
    );
  }
  return { pattern, ratio, busy };
}

const summary = [];
try {
  console.log(
    `bench:overhead: ${server.url}, ${opts.keys} objects per side, ${opts.concurrency} in flight, ` +
      `${opts.phases} phases × ${opts.seconds} s per pattern (ABBA), warmup ${opts.warmup} s`,
  );
  for (const p of opts.patterns) summary.push(await benchPattern(p));
  console.log(
    `\nsummary: ${summary
      .map(
        (s) =>
          `${s.pattern} ${s.ratio.toFixed(3)} ${s.ratio >= TARGET ? 'PASS' : 'MISS'}${s.busy > BUSY_CORES ? ' (busy machine)' : ''}`,
      )
      .join(', ')} (instrumented / bare throughput, target ≥ ${TARGET})`,
  );
  if (reloads > 0) {
    console.log(
      `note: wrangler dev reloaded ${reloads} time(s) during the run (files changed under it); those ` +
        'phases were done again, but phases before and after a reload ran different builds',
    );
  }
} catch (err) {
  console.error(`bench:overhead: ${err.message}`);
  failed = true;
} finally {
  http.close();
  await server.stop();
  rmSync(state, { recursive: true, force: true });
  clearTimeout(guard);
}
process.exit(failed ? 1 : 0);
