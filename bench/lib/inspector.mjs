// CPU profiles of the Worker under load, through wrangler dev's inspector proxy (the V8 inspector of
// workerd: the Worker and its Durable Objects). Uses the `ws` package that wrangler already installs.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { join } from 'node:path';

/**
 * @param {number} inspectorPort wrangler dev's --inspector-port
 * @returns {Promise<{ start: (intervalUs?: number) => Promise<void>, stop: () => Promise<object>, close: () => void }>}
 */
export async function connectProfiler(inspectorPort) {
  const { default: WebSocket } = await import('ws');
  const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
  if (!targets[0]?.webSocketDebuggerUrl) throw new Error('no inspector target on wrangler dev');
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((ok, fail) => {
    ws.once('open', ok);
    ws.once('error', fail);
  });
  let nextId = 1;
  const waiting = new Map();
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data));
    const w = msg.id === undefined ? undefined : waiting.get(msg.id);
    if (!w) return; // console and debugger events: not ours
    waiting.delete(msg.id);
    if (msg.error) w.fail(new Error(`${w.method}: ${msg.error.message}`));
    else w.ok(msg.result);
  });
  const call = (method, params = {}) =>
    new Promise((ok, fail) => {
      const id = nextId++;
      waiting.set(id, { ok, fail, method });
      ws.send(JSON.stringify({ id, method, params }));
    });
  return {
    async start(intervalUs = 500) {
      await call('Profiler.enable');
      await call('Profiler.setSamplingInterval', { interval: intervalUs });
      await call('Profiler.start');
    },
    async stop() {
      const { profile } = await call('Profiler.stop');
      return profile;
    },
    close: () => ws.close(),
  };
}

/** Saves a profile where Chrome DevTools (Performance → Load profile) or speedscope can open it. */
export function saveProfile(profile, path) {
  writeFileSync(path, JSON.stringify(profile));
}

/**
 * The bundle wrangler dev is running, with its source map, so that profile positions read as
 * `collector/shard.ts:123` instead of `worker.js:23625`. Null when not found.
 * @param {string} root the directory wrangler dev runs in
 */
export function findBundle(root) {
  const tmp = join(root, '.wrangler', 'tmp');
  if (!existsSync(tmp)) return null;
  const dirs = readdirSync(tmp)
    .filter((d) => d.startsWith('dev-') && existsSync(join(tmp, d, 'worker.js.map')))
    .map((d) => join(tmp, d))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (dirs.length === 0) return null;
  const payload = JSON.parse(readFileSync(join(dirs[0], 'worker.js.map'), 'utf8'));
  const sources = new Map(payload.sources.map((src, i) => [src, payload.sourcesContent?.[i]?.split('\n')]));
  return {
    map: new SourceMap(payload),
    lines: readFileSync(join(dirs[0], 'worker.js'), 'utf8').split('\n'),
    /** the text of a line of an original source, when the map carries it */
    text: (src, line) => sources.get(src)?.[line]?.trim() ?? '',
  };
}

/**
 * `file:line` in the original sources for a 0-based position in the bundle (or the bundle's own),
 * with the line's text when `withText` (sources change; the text says what was measured).
 */
function where(bundle, url, line, column, withText = false) {
  const file = url ? url.split('/').pop() : '';
  if (!bundle || file !== 'worker.js' || line < 0) return file ? `${file}:${line + 1}` : '';
  // The first non-blank column of the line: esbuild maps statements, not indentation.
  const col = column ?? Math.max(0, (bundle.lines[line] ?? '').search(/\S/));
  const e = bundle.map.findEntry(line, col);
  if (!e?.originalSource) return `worker.js:${line + 1}`;
  const src = e.originalSource.replace(/^(\.\.\/)+/, '').replace(/^.*node_modules\//, '');
  const text = withText ? bundle.text(e.originalSource, e.originalLine).slice(0, 70) : '';
  return `${src}:${e.originalLine + 1}${text ? `  ${text}` : ''}`;
}

/**
 * Self and inclusive time per function, and self time per source line (from V8's position ticks:
 * a native callee such as SQL `exec` is charged to the line that called it, so this names the
 * statement). Times are in ms of samples.
 * @param {object} profile a V8 .cpuprofile
 * @param {ReturnType<typeof findBundle>} bundle
 */
export function summarizeProfile(profile, bundle = null) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const labels = new Map();
  const label = (id) => {
    let l = labels.get(id);
    if (l === undefined) {
      const f = byId.get(id).callFrame;
      const at = where(bundle, f.url, f.lineNumber, f.columnNumber);
      l = `${f.functionName || '(anonymous)'}${at ? ` ${at}` : ''}`;
      labels.set(id, l);
    }
    return l;
  };
  const self = new Map();
  const incl = new Map();
  let totalMs = 0;
  const msPerTick = new Map(); // per node: its self ms spread over its ticks
  for (let i = 0; i < profile.samples.length; i++) {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    totalMs += ms;
    let id = profile.samples[i];
    msPerTick.set(id, (msPerTick.get(id) ?? 0) + ms);
    const leaf = label(id);
    self.set(leaf, (self.get(leaf) ?? 0) + ms);
    // Count a function once per sample even when it recurses.
    const seen = new Set();
    while (id !== undefined) {
      const l = label(id);
      if (!seen.has(l)) {
        seen.add(l);
        incl.set(l, (incl.get(l) ?? 0) + ms);
      }
      id = parent.get(id);
    }
  }
  const lines = new Map();
  for (const n of profile.nodes) {
    const ticks = (n.positionTicks ?? []).reduce((a, t) => a + t.ticks, 0);
    if (ticks === 0) continue;
    const ms = msPerTick.get(n.id) ?? 0;
    const f = n.callFrame;
    // A native callee (url '') reports its caller's line in the caller's script: worker.js.
    const url = f.url || 'worker.js';
    for (const t of n.positionTicks) {
      const at = `${where(bundle, url, t.line - 1, undefined, true)}${f.url ? '' : `  [${f.functionName}]`}`;
      lines.set(at, (lines.get(at) ?? 0) + (ms * t.ticks) / ticks);
    }
  }
  return {
    totalMs,
    rows: [...incl.keys()].map((fn) => ({ fn, selfMs: self.get(fn) ?? 0, totalMs: incl.get(fn) })),
    lines: [...lines].map(([at, ms]) => ({ at, ms })).sort((a, b) => b.ms - a.ms),
  };
}
