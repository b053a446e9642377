import { SELF } from 'cloudflare:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { event, postIngest } from '../test/events';

type Family = { name: string; type: string; metrics: { labels?: Record<string, string>; value: string }[] };

async function metrics(): Promise<Family[]> {
  const res = await SELF.fetch('http://keywarden.test/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
  return parsePrometheusTextFormat(await res.text()) as Family[];
}

describe('GET /metrics', () => {
  it('parses as Prometheus text, with decisions, hot-key rates, skew and collector health', async () => {
    // A key name full of what label values must escape.
    const nasty = 'order:"quoted"\\back\nslash';
    const events = [
      ...Array.from({ length: 30 }, (_, i) => event({ ns: 'metrics.ns', key: nasty, emitter: 'm', seq: i })),
      ...Array.from({ length: 10 }, (_, i) =>
        event({ ns: 'metrics.ns', key: `cold:${i}`, emitter: 'm', seq: 100 + i }),
      ),
      event({
        ns: 'metrics.ns',
        key: 'k',
        emitter: 'm',
        seq: 500,
        pattern: 'telemetry',
        decision: 'dropped',
        value: 77,
      }),
    ];
    const { url, init } = postIngest({ events });
    expect((await SELF.fetch(url, init)).status).toBe(200);

    const families = await metrics();
    const family = (name: string) => families.find((f) => f.name === name)!;
    // Check decisions by ns/pattern/decision.
    const applied = family('keywarden_decisions_total').metrics.find(
      (m) => m.labels?.ns === 'metrics.ns' && m.labels?.decision === 'applied',
    );
    expect(Number(applied?.value)).toBe(40);
    expect(family('keywarden_decisions_total').type).toBe('COUNTER');
    // Check the hot key came back as itself through the escaping, ranked first, and only top-k keys are labelled.
    const rates = family('keywarden_hot_key_rate').metrics.filter((m) => m.labels?.ns === 'metrics.ns');
    expect(rates[0]!.labels!.key).toBe(nasty);
    expect(rates[0]!.labels!.rank).toBe('1');
    expect(Number(rates[0]!.value)).toBeCloseTo(30 / 60);
    expect(rates.length).toBeLessThanOrEqual(10);
    const share = family('keywarden_key_skew_top1_share').metrics.find((m) => m.labels?.ns === 'metrics.ns');
    expect(Number(share?.value)).toBeCloseTo(30 / 41);
    // Check dropped events reported by emitters, and collector health per shard.
    const dropped = family('keywarden_telemetry_dropped_events_total').metrics.find(
      (m) => m.labels?.ns === 'metrics.ns',
    );
    expect(Number(dropped?.value)).toBe(77);
    expect(family('keywarden_collector_lag_seconds').metrics).toHaveLength(4);
    expect(
      family('keywarden_collector_events_accepted_total').metrics.reduce((n, m) => n + Number(m.value), 0),
    ).toBe(41);
  });
});
