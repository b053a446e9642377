// GET /metrics: Prometheus text exposition (format 0.0.4). Label cardinality stays bounded: per-key
// series only for the top keys of each namespace, and at most MAX_NAMESPACES namespaces.
import type { Collector } from './client';
import { skew } from './sketch';

export const METRICS_TOP_KEYS = 10;
export const METRICS_WINDOW_SEC = 60;
const MAX_NAMESPACES = 100;

type Sample = { labels: Record<string, string | number>; value: number };
type Family = { name: string; help: string; type: 'counter' | 'gauge'; samples: Sample[] };

/** Label values escape backslash, double quote and line feed; nothing else is special. */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return '+Inf';
  if (n === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(n);
}

export function render(families: Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
    out.push(`# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels)
        .map(([k, v]) => `${k}="${escapeLabel(String(v))}"`)
        .join(',');
      out.push(`${f.name}${labels ? `{${labels}}` : ''} ${formatValue(s.value)}`);
    }
  }
  return `${out.join('\n')}\n`;
}

export async function collectMetrics(collector: Collector, now = Date.now()): Promise<string> {
  const [perShard, stats] = await Promise.all([
    Promise.all(Array.from({ length: collector.shards }, (_, i) => collector.shard(i).decisionTotals())),
    collector.stats(),
  ]);
  const decisions = new Map<string, Sample>();
  const dropped = new Map<string, number>();
  for (const t of perShard.flat()) {
    const id = `${t.ns}\u0000${t.pattern}\u0000${t.decision}`;
    const s = decisions.get(id);
    if (s) s.value += t.count;
    else
      decisions.set(id, { labels: { ns: t.ns, pattern: t.pattern, decision: t.decision }, value: t.count });
    if (t.pattern === 'telemetry' && t.decision === 'dropped')
      dropped.set(t.ns, (dropped.get(t.ns) ?? 0) + t.valueSum);
  }

  const recent = await collector.totals({ windowSec: METRICS_WINDOW_SEC, now });
  const namespaces = [...new Set(recent.map((t) => t.ns))].slice(0, MAX_NAMESPACES);
  const hot = await Promise.all(
    namespaces.map(async (ns) => ({
      ns,
      r: await collector.hotKeys({ ns, windowSec: METRICS_WINDOW_SEC, limit: METRICS_TOP_KEYS, now }),
    })),
  );

  const families: Family[] = [
    {
      name: 'keywarden_decisions_total',
      help: 'Decisions made by pattern objects, by namespace, pattern and decision.',
      type: 'counter',
      samples: [...decisions.values()],
    },
    {
      name: 'keywarden_telemetry_dropped_events_total',
      help: 'Decision events that emitters reported as dropped (outbox overflow or refused), by namespace.',
      type: 'counter',
      samples: [...dropped].map(([ns, value]) => ({ labels: { ns }, value })),
    },
    {
      name: 'keywarden_hot_key_rate',
      help: `Decisions per second of the ${METRICS_TOP_KEYS} hottest keys of each namespace over the last ${METRICS_WINDOW_SEC} s.`,
      type: 'gauge',
      samples: hot.flatMap(({ ns, r }) =>
        r.keys.map((k, i) => ({
          labels: { ns, key: k.key, rank: i + 1 },
          value: k.count / METRICS_WINDOW_SEC,
        })),
      ),
    },
    {
      name: 'keywarden_namespace_rate',
      help: `Decisions per second of each namespace over the last ${METRICS_WINDOW_SEC} s.`,
      type: 'gauge',
      samples: hot.map(({ ns, r }) => ({ labels: { ns }, value: r.total / METRICS_WINDOW_SEC })),
    },
    ...(
      [
        ['top1_share', 'top1Share', "Share of a namespace's decisions taken by its hottest key"],
        ['max_over_mean', 'maxOverMean', "Hottest key's count over the mean of a namespace's top keys"],
        ['cv', 'cv', "Coefficient of variation of a namespace's top keys' counts"],
      ] as const
    ).map(([suffix, field, help]) => ({
      name: `keywarden_key_skew_${suffix}`,
      help: `${help}, over the last ${METRICS_WINDOW_SEC} s.`,
      type: 'gauge' as const,
      samples: hot.map(({ ns, r }) => ({
        labels: { ns },
        value: skew(
          r.keys.map((k) => k.count),
          r.total,
        )[field],
      })),
    })),
    {
      name: 'keywarden_collector_shards',
      help: 'Collector shards events are routed over.',
      type: 'gauge',
      samples: [{ labels: {}, value: collector.shards }],
    },
    {
      name: 'keywarden_collector_lag_seconds',
      help: "How far behind real time the oldest event of a shard's latest ingest call was.",
      type: 'gauge',
      samples: stats.map((s, shard) => ({ labels: { shard }, value: s.lagMs / 1000 })),
    },
    {
      name: 'keywarden_collector_events_accepted_total',
      help: 'Events a collector shard accepted.',
      type: 'counter',
      samples: stats.map((s, shard) => ({ labels: { shard }, value: s.accepted })),
    },
    {
      name: 'keywarden_collector_events_duplicate_total',
      help: 'Events a collector shard had already counted (replays), and so ignored.',
      type: 'counter',
      samples: stats.map((s, shard) => ({ labels: { shard }, value: s.duplicates })),
    },
    {
      name: 'keywarden_collector_ae_dropped_total',
      help: 'Analytics Engine data points a shard could not write (backlog over its bound).',
      type: 'counter',
      samples: stats.map((s, shard) => ({ labels: { shard }, value: s.aeDropped })),
    },
    {
      name: 'keywarden_collector_ae_pending',
      help: 'Analytics Engine data points waiting for the next invocation (250 writes per invocation).',
      type: 'gauge',
      samples: stats.map((s, shard) => ({ labels: { shard }, value: s.aePending })),
    },
  ];
  return render(families);
}
