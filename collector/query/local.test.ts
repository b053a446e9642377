// The shared backend suite against the local rollup store: the collector shards in workerd.
import { env } from 'cloudflare:test';
import { Collector } from '../client';
import { knownStream, runBackendSuite } from './backend.case';

runBackendSuite('local rollup store (collector shards)', async () => {
  const now = Date.now();
  const collector = new Collector(env);
  const events = knownStream(now);
  for (let i = 0; i < events.length; i += 1000) {
    const r = await collector.ingest(events.slice(i, i + 1000), now);
    if (r.rejected.length > 0) throw new Error(`stream rejected: ${JSON.stringify(r.rejected.slice(0, 3))}`);
  }
  return { backend: collector, now };
});
