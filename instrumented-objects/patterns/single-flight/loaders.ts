// The refreshes a SingleFlightObject can run, by name. A Durable Object cannot be sent a function
// over RPC, so the work is registered here, in code, and callers name it.

/** What a loader returns: a flat record, so it crosses RPC and JSON as is. */
export type LoadedValue = Record<string, string | number | boolean | null>;

export type LoaderParams = {
  /** wait this long before computing (the slow backend a refresh usually calls), 0–10 000 ms */
  delayMs?: number;
  /** fail with this message instead of returning, after the delay */
  fail?: string;
  /** SHA-256 rounds to compute, 1–100 000 */
  rounds?: number;
};

export type LoaderInput = {
  ns: string;
  key: string;
  /** the flight's id: increases with every refresh of this key, across restarts */
  generation: number;
  params: LoaderParams;
};

export type Loader = (input: LoaderInput) => Promise<LoadedValue>;

export const LOADER_LIMITS = { maxDelayMs: 10_000, maxRounds: 100_000, maxFailBytes: 200 } as const;

const hex = (buf: ArrayBuffer) =>
  [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');

/**
 * `demo.digest`: an iterated SHA-256 of `ns:key:generation` after an optional delay — real work whose
 * answer differs per refresh, so callers that shared a flight can be told from callers that did not.
 */
const digest: Loader = async ({ ns, key, generation, params }) => {
  const startedAt = Date.now();
  const delayMs = params.delayMs ?? 0;
  if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  if (params.fail !== undefined) throw new Error(params.fail);
  const rounds = params.rounds ?? 1_000;
  let data: ArrayBuffer = new TextEncoder().encode(`${ns}:${key}:${generation}`).buffer as ArrayBuffer;
  for (let i = 0; i < rounds; i++) data = await crypto.subtle.digest('SHA-256', data);
  return { digest: hex(data), rounds, generation, tookMs: Date.now() - startedAt };
};

export const LOADERS: Record<string, Loader> = {
  'demo.digest': digest,
};
