// What one object of a namespace can take, so a hot key's rate reads as a fraction of it. The
// default is Cloudflare's documented soft limit of about 1,000 requests/s per Durable Object.
export const DEFAULT_OBJECT_CAPACITY = 1000;

export type CapacityConfig = { default: number; byNamespace: Record<string, number> };

/**
 * `KEYWARDEN_OBJECT_CAPACITY` (requests/s, default 1,000) and `KEYWARDEN_NS_CAPACITY`, a JSON object
 * of per-namespace overrides, e.g. {"payments.idempotency": 400}. A malformed value is reported as
 * a problem and ignored rather than failing every query.
 */
export function capacityConfig(
  env: Pick<Env, 'KEYWARDEN_OBJECT_CAPACITY' | 'KEYWARDEN_NS_CAPACITY'>,
): CapacityConfig & {
  problems: string[];
} {
  const problems: string[] = [];
  let def = DEFAULT_OBJECT_CAPACITY;
  if (env.KEYWARDEN_OBJECT_CAPACITY !== undefined && env.KEYWARDEN_OBJECT_CAPACITY !== '') {
    const n = Number(env.KEYWARDEN_OBJECT_CAPACITY);
    if (Number.isFinite(n) && n > 0) def = n;
    else problems.push('KEYWARDEN_OBJECT_CAPACITY must be a positive number of requests/s');
  }
  const byNamespace: Record<string, number> = {};
  if (env.KEYWARDEN_NS_CAPACITY) {
    try {
      const parsed = JSON.parse(env.KEYWARDEN_NS_CAPACITY) as unknown;
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new Error('not an object');
      for (const [ns, v] of Object.entries(parsed)) {
        if (typeof v === 'number' && Number.isFinite(v) && v > 0) byNamespace[ns] = v;
        else problems.push(`KEYWARDEN_NS_CAPACITY["${ns}"] must be a positive number`);
      }
    } catch {
      problems.push('KEYWARDEN_NS_CAPACITY must be a JSON object of namespace → requests/s');
    }
  }
  return { default: def, byNamespace, problems };
}

export function capacityOf(config: CapacityConfig, ns: string): number {
  return config.byNamespace[ns] ?? config.default;
}
