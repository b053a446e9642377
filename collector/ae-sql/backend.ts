// QueryBackend over Workers Analytics Engine's SQL API: POST the SQL text, read `{ meta, data, rows }`.
import type {
  DecisionTotal,
  HeatmapQuery,
  HeatmapResult,
  HotKeysQuery,
  HotKeysResult,
  QueryBackend,
  SeriesQuery,
  SeriesResult,
  TotalsQuery,
  TrailEvent,
} from '../query/types';
import {
  heatmapResult,
  heatmapSql,
  hotKeysResult,
  hotKeysSql,
  lookupSql,
  type Row,
  seriesResult,
  seriesSql,
  totalsResult,
  totalsSql,
  trailResult,
} from './builder';
import { AnalyticsEngineError, checkDataset } from './sql';

export type AnalyticsEngineOptions = {
  accountId: string;
  apiToken: string;
  /** The AE dataset (a table in SQL), e.g. `keywarden_events`. */
  dataset: string;
  fetch?: typeof fetch;
  /** Defaults to the account's `/analytics_engine/sql` endpoint on api.cloudflare.com. */
  endpoint?: string;
};

export const DEFAULT_AE_DATASET = 'keywarden_events';
const MAX_ERROR_CHARS = 500;

export class AnalyticsEngineBackend implements QueryBackend {
  readonly name = 'analytics-engine';
  readonly dataset: string;
  readonly #endpoint: string;
  readonly #token: string;
  readonly #fetch: typeof fetch;

  constructor(opts: AnalyticsEngineOptions) {
    if (!opts.accountId || !opts.apiToken) {
      throw new AnalyticsEngineError(400, 'invalid_query', 'accountId and apiToken are required');
    }
    this.dataset = checkDataset(opts.dataset);
    this.#token = opts.apiToken;
    this.#endpoint =
      opts.endpoint ??
      `https://api.cloudflare.com/client/v4/accounts/${encodeURIComponent(opts.accountId)}/analytics_engine/sql`;
    // workerd throws "Illegal invocation" when its fetch is called as a method of another object.
    const f = opts.fetch;
    this.#fetch = f ? (input, init) => f(input, init) : (input, init) => fetch(input, init);
  }

  /** Runs one SELECT (without FORMAT) and returns its rows. */
  async query(sql: string): Promise<Row[]> {
    let res: Response;
    try {
      res = await this.#fetch(this.#endpoint, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.#token}`, 'content-type': 'text/plain; charset=utf-8' },
        body: `${sql} FORMAT JSON`,
      });
    } catch (cause) {
      throw new AnalyticsEngineError(502, 'unreachable', `AE SQL API unreachable: ${this.#redact(cause)}`, {
        cause,
      });
    }
    const text = await res.text();
    if (!res.ok) {
      throw new AnalyticsEngineError(
        res.status,
        'engine_error',
        `AE SQL API answered ${res.status}: ${this.#redact(engineMessage(text))}`,
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new AnalyticsEngineError(502, 'bad_response', `AE SQL API answered non-JSON: ${clip(text)}`);
    }
    const data = (body as { data?: unknown } | null)?.data;
    if (!Array.isArray(data) || !data.every((r) => typeof r === 'object' && r !== null)) {
      throw new AnalyticsEngineError(
        502,
        'bad_response',
        `AE SQL API answer has no data rows: ${clip(text)}`,
      );
    }
    return data as Row[];
  }

  async hotKeys(q: HotKeysQuery): Promise<HotKeysResult> {
    const plan = hotKeysSql(this.dataset, q);
    const [keys, total] = await Promise.all([this.query(plan.keys), this.query(plan.total)]);
    return hotKeysResult(keys, total);
  }

  async series(q: SeriesQuery): Promise<SeriesResult> {
    const plan = seriesSql(this.dataset, q);
    return seriesResult(plan, await this.query(plan.sql));
  }

  async heatmap(q: HeatmapQuery): Promise<HeatmapResult> {
    const plan = heatmapSql(this.dataset, q);
    return heatmapResult(plan, await this.query(plan.sql));
  }

  async totals(q: TotalsQuery): Promise<DecisionTotal[]> {
    return totalsResult(await this.query(totalsSql(this.dataset, q)));
  }

  async lookup(requestId: string): Promise<TrailEvent[]> {
    return trailResult(await this.query(lookupSql(this.dataset, requestId)));
  }

  #redact(x: unknown): string {
    const s = x instanceof Error ? x.message : String(x);
    return this.#token ? s.replaceAll(this.#token, '[redacted]') : s;
  }
}

/** The Cloudflare API wraps errors as `{ errors: [{ message }] }`; the engine itself answers text. */
function engineMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { errors?: { message?: unknown }[]; error?: unknown };
    const messages = (body.errors ?? []).map((e) => e?.message).filter((m) => typeof m === 'string');
    if (messages.length > 0) return clip(messages.join('; '));
    if (typeof body.error === 'string') return clip(body.error);
  } catch {
    // not JSON: the text is the message
  }
  return clip(text.trim() || '(empty body)');
}

function clip(s: string): string {
  return s.length > MAX_ERROR_CHARS ? `${s.slice(0, MAX_ERROR_CHARS)}…` : s;
}

export type AnalyticsEngineEnv = {
  KEYWARDEN_AE_ACCOUNT_ID?: string;
  KEYWARDEN_AE_API_TOKEN?: string;
  KEYWARDEN_AE_DATASET?: string;
};

/** The AE backend when an account id and token are configured, else null (local store only). */
export function aeBackendFromEnv(
  env: AnalyticsEngineEnv,
  opts: { fetch?: typeof fetch; endpoint?: string } = {},
): AnalyticsEngineBackend | null {
  const accountId = env.KEYWARDEN_AE_ACCOUNT_ID?.trim();
  const apiToken = env.KEYWARDEN_AE_API_TOKEN?.trim();
  if (!accountId || !apiToken) return null;
  const dataset = env.KEYWARDEN_AE_DATASET?.trim() || DEFAULT_AE_DATASET;
  return new AnalyticsEngineBackend({ accountId, apiToken, dataset, ...opts });
}
