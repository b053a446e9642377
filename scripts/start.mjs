// `npm start`: Keywarden locally, offline, on 127.0.0.1, with demo traffic so the dashboard is live.
// State persists in .wrangler/state across restarts.
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { root, startWranglerDev } from './wrangler-dev.mjs';

const devVars = join(root, '.dev.vars');
if (!existsSync(devVars)) {
  copyFileSync(join(root, '.dev.vars.example'), devVars);
  console.log('keywarden: created .dev.vars from .dev.vars.example (local tokens; never commit it)');
}

const port = Number(process.env.KEYWARDEN_PORT ?? 8787);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`keywarden: KEYWARDEN_PORT must be a TCP port, got "${process.env.KEYWARDEN_PORT}"`);
  process.exit(2);
}

const server = await startWranglerDev({
  port,
  stdio: 'inherit',
  logLevel: process.env.KEYWARDEN_LOG_LEVEL ?? 'warn',
  testScheduled: true,
  timeoutMs: 120_000,
}).catch((err) => {
  console.error(`keywarden: could not start wrangler dev on 127.0.0.1:${port}\n${err.message}`);
  process.exit(1);
});

let demo = null;
const demoOn = (process.env.KEYWARDEN_DEMO ?? 'on') !== 'off';
if (demoOn) {
  const { startDemoTraffic } = await import('./demo-traffic.mjs');
  demo = startDemoTraffic({ url: server.url });
}

console.log(`
  Keywarden is running (offline, state in .wrangler/state)

    Dashboard   ${server.url}/
    API         ${server.url}/api/health
    Metrics     ${server.url}/metrics

  Demo traffic: ${demoOn ? 'on (KEYWARDEN_DEMO=off to disable)' : 'off'}. Stop with Ctrl-C.
`);

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  await demo?.stop();
  await server.stop();
  process.exit(0);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
server.child.on('exit', (code) => {
  if (!stopping) {
    console.error(`keywarden: wrangler dev exited (${code})`);
    process.exit(code ?? 1);
  }
});
