// SQL text for Workers Analytics Engine that ClickHouse 18.16 also runs. Nothing a caller passes is
// spliced into a query except through `stringEquals` (text) or `sqlInt` (numbers).
//
// AE's SQL reference documents string literals only as `'…'` and says nothing about escape
// sequences, so we never rely on one: text made only of plain characters is written as is, anything
// else is compared through `hex(column) = '<UTF-8 bytes in hex>'` (`hex` is documented; its output is
// [0-9A-F], which no lexer can misread). No input can end a literal early or start a comment.
import type { AE_COLUMNS } from '../analytics';
import { checkWindow as checkWindowWithin, MAX_TIME_BUCKETS } from '../query/checks';

/** One error class for the backend; `status` says whose fault it is (4xx: the caller's). */
export class AnalyticsEngineError extends Error {
  override readonly name = 'AnalyticsEngineError';
  constructor(
    readonly status: number,
    readonly code: 'invalid_query' | 'engine_error' | 'bad_response' | 'unreachable',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export type AeColumn = (typeof AE_COLUMNS)[keyof typeof AE_COLUMNS];

// Letters, digits and punctuation that no SQL dialect gives a meaning inside quotes.
const PLAIN_TEXT = /^[A-Za-z0-9 _.:/@+=#,~!?$%&*()[\]{}^|<>-]*$/;

/** True when `s` can sit between single quotes with no escaping in any dialect. */
export function isPlainText(s: string): boolean {
  return PLAIN_TEXT.test(s) && !s.includes('--') && !s.includes('/*') && !s.includes('*/');
}

const encoder = new TextEncoder();

/** The UTF-8 bytes of `s` as upper-case hex, as ClickHouse's `hex(String)` prints them. */
export function utf8Hex(s: string): string {
  let out = '';
  for (const b of encoder.encode(s)) out += b.toString(16).toUpperCase().padStart(2, '0');
  return out;
}

/** `column = 'text'`, or the hex form for text that would need escaping. */
export function stringEquals(column: AeColumn, value: string): string {
  return isPlainText(value) ? `${column} = '${value}'` : `hex(${column}) = '${utf8Hex(value)}'`;
}

/** A number spliced into SQL: only safe integers, whatever the caller validated before. */
export function sqlInt(n: number): string {
  if (!Number.isSafeInteger(n)) throw new AnalyticsEngineError(500, 'invalid_query', `not an integer: ${n}`);
  return String(n);
}

// AE keeps 3 months of data; buckets and rows are capped so one query stays one screenful.
export const QUERY_LIMITS = {
  windowSec: 90 * 24 * 3600,
  timeBuckets: MAX_TIME_BUCKETS,
  hotKeys: 1000,
  heatmapKeyBuckets: 256,
  heatmapRows: 10_000,
  seriesRows: 50_000,
  totalsRows: 10_000,
  trailEvents: 1000,
} as const;

function invalid(message: string): never {
  throw new AnalyticsEngineError(400, 'invalid_query', message);
}

/** AE datasets are tables; the name goes into FROM, so only plain identifiers. */
export function checkDataset(dataset: unknown): string {
  if (typeof dataset !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(dataset)) {
    invalid('dataset must be an identifier: letters, digits and _, not starting with a digit');
  }
  return dataset;
}

export {
  checkDecision,
  checkInt,
  checkKey,
  checkNs,
  checkPattern,
  checkRequestId,
  checkStep,
  checkText,
} from '../query/checks';

/** The query's time range in whole seconds, up to AE's 90 days. */
export function checkWindow(now: unknown, windowSec: unknown): { from: number; to: number } {
  return checkWindowWithin(now, windowSec, QUERY_LIMITS.windowSec);
}
