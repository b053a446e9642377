// One wrangler dev per test file, on a free port, with fresh state in a temp folder.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error: a plain ESM script shared with npm start and the benchmarks
import { startWranglerDev } from '../scripts/wrangler-dev.mjs';

export const TOKENS = {
  KEYWARDEN_INGEST_TOKEN: 'e2e-ingest-token',
  KEYWARDEN_API_TOKEN: 'e2e-api-token',
  KEYWARDEN_OPERATOR_TOKEN: 'e2e-operator-token',
} as const;

export type DevServer = { url: string; stop: () => Promise<void> };

export async function startServer(vars: Record<string, string> = {}): Promise<DevServer> {
  const state = mkdtempSync(join(tmpdir(), 'keywarden-e2e-'));
  const server = await startWranglerDev({
    persistTo: state,
    vars: { ...TOKENS, KEYWARDEN_DEMO: 'off', ...vars },
    testScheduled: true,
  });
  return {
    url: server.url,
    stop: async () => {
      await server.stop();
      rmSync(state, { recursive: true, force: true });
    },
  };
}
