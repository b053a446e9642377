import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';

// Two kinds of test: most run inside workerd against real SQLite storage; the `node` project holds
// what must drive processes from outside (wrangler dev end to end, Chromium, ClickHouse).
export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest({
            main: './test/worker.ts',
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              bindings: {
                KEYWARDEN_INGEST_TOKEN: 'test-ingest-token',
                KEYWARDEN_OPERATOR_TOKEN: 'test-operator-token',
                KEYWARDEN_API_TOKEN: 'test-api-token',
                KEYWARDEN_DEMO: 'off',
                KEYWARDEN_NS_CAPACITY: '{"capacity.ns": 2}',
              },
              durableObjects: { KIT_PROBE: { className: 'KitProbe', useSQLite: true } },
            },
          }),
        ],
        test: {
          name: 'workers',
          include: ['{collector,instrumented-objects,alerts,runbooks,test}/**/*.test.ts', 'worker.test.ts'],
          exclude: ['**/*.node.test.ts', 'node_modules/**'],
        },
      },
      {
        test: {
          name: 'node',
          environment: 'node',
          include: ['e2e/**/*.test.ts', '**/*.node.test.ts'],
          exclude: ['node_modules/**'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
