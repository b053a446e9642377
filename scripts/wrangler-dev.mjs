// Starts `wrangler dev` fully offline on 127.0.0.1 and waits until it answers. Used by `npm start`,
// the end-to-end tests and the benchmarks, so they all run Keywarden the same way.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Offline wrangler: no metrics, no error reports, no banner, no network lookups. */
export function offlineEnv(extra = {}) {
  const xdg = join(root, '.xdg');
  mkdirSync(xdg, { recursive: true });
  return {
    ...process.env,
    CI: 'true',
    WRANGLER_SEND_METRICS: 'false',
    WRANGLER_SEND_ERROR_REPORTS: 'false',
    WRANGLER_HIDE_BANNER: 'true',
    CLOUDFLARE_CF_FETCH_ENABLED: 'false',
    XDG_CONFIG_HOME: xdg,
    ...extra,
  };
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/**
 * @param {{ port?: number, persistTo?: string, vars?: Record<string,string>, logLevel?: string,
 *   testScheduled?: boolean, stdio?: 'inherit' | 'pipe', timeoutMs?: number }} opts
 * @returns {Promise<{ url: string, port: number, child: import('node:child_process').ChildProcess, stop: () => Promise<void> }>}
 */
export async function startWranglerDev(opts = {}) {
  const port = opts.port ?? (await freePort());
  const args = [
    'dev',
    '--local',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--log-level',
    opts.logLevel ?? 'warn',
  ];
  // Each inspector needs its own port, or two dev servers collide on 9229.
  args.push('--inspector-port', String(await freePort()));
  if (opts.persistTo) args.push('--persist-to', opts.persistTo);
  if (opts.testScheduled) args.push('--test-scheduled');
  for (const [k, v] of Object.entries(opts.vars ?? {})) args.push('--var', `${k}:${v}`);
  const bin = join(root, 'node_modules', '.bin', 'wrangler');
  const child = spawn(bin, args, {
    cwd: root,
    env: offlineEnv(),
    stdio: opts.stdio === 'inherit' ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
    detached: process.platform !== 'win32',
  });
  let output = '';
  child.stdout?.on('data', (d) => {
    output = (output + d).slice(-20_000);
  });
  child.stderr?.on('data', (d) => {
    output = (output + d).slice(-20_000);
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = () =>
    new Promise((ok) => {
      if (child.exitCode !== null || child.signalCode !== null) return ok();
      child.once('exit', () => ok());
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
      setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {}
      }, 5_000).unref();
    });
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${output}`);
    try {
      const res = await fetch(`${url}/api/health`);
      if (res.ok) break;
    } catch {}
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev did not answer on ${url} in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, port, child, stop, output: () => output };
}
