// SQL text for Workers Analytics Engine that ClickHouse 18.16 also runs. Nothing a caller passes is
// spliced into a query except through `stringEquals` (text) or `sqlInt` (numbers).
//
// AE's SQL reference documents string literals only as `'…'` and says nothing about escape
// sequences, so we never rely on one: text made only of plain characters is written as is, anything
// else is compared through `hex(column) = '<UTF-8 bytes in hex>'` (`hex` is documented; its output is
// [0-9A-F], which no lexer can misread). No input can end a literal early or start a comment.
import type { AE_COLUMNS } from '../analytics';
import { DECISIONS, LIMITS, PATTERNS, type Pattern, utf8Bytes } from '../contract';

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
  timeBuckets: 3600,
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

export function checkInt(name: string, n: unknown, min: number, max: number): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    invalid(`${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

export function checkText(name: string, s: unknown, maxBytes: number): string {
  if (typeof s !== 'string' || s.length === 0 || utf8Bytes(s) > maxBytes) {
    invalid(`${name} must be a non-empty string of at most ${maxBytes} UTF-8 bytes`);
  }
  return s;
}

export const checkNs = (ns: unknown) => checkText('ns', ns, LIMITS.nsBytes);
export const checkKey = (key: unknown) => checkText('key', key, LIMITS.keyBytes);
export const checkRequestId = (id: unknown) => checkText('requestId', id, LIMITS.requestIdBytes);

export function checkPattern(p: unknown): Pattern | undefined {
  if (p === undefined) return undefined;
  if (typeof p !== 'string' || !(PATTERNS as string[]).includes(p)) invalid(`unknown pattern: ${String(p)}`);
  return p as Pattern;
}

export function checkDecision(d: unknown, pattern: Pattern | undefined): string | undefined {
  if (d === undefined) return undefined;
  const allowed: readonly string[] = pattern ? DECISIONS[pattern] : Object.values(DECISIONS).flat();
  if (typeof d !== 'string' || !allowed.includes(d)) invalid(`unknown decision: ${String(d)}`);
  return d;
}

/** The query's time range in whole seconds: (from, to], to = now rounded down. */
export function checkWindow(now: unknown, windowSec: unknown): { from: number; to: number } {
  const w = checkInt('windowSec', windowSec, 1, QUERY_LIMITS.windowSec);
  if (typeof now !== 'number' || !Number.isFinite(now) || now < w * 1000 || now > 8.64e15) {
    invalid('now must be ms since epoch, later than the window start');
  }
  const to = Math.floor(now / 1000);
  return { from: to - w, to };
}

export function checkStep(stepSec: unknown, windowSec: number): number {
  const step = checkInt('stepSec', stepSec, 1, windowSec);
  if (Math.ceil(windowSec / step) + 1 > QUERY_LIMITS.timeBuckets) {
    invalid(`windowSec / stepSec must be at most ${QUERY_LIMITS.timeBuckets - 1} buckets`);
  }
  return step;
}

/** AE datasets are tables; the name goes into FROM, so only plain identifiers. */
export function checkDataset(dataset: unknown): string {
  if (typeof dataset !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(dataset)) {
    invalid('dataset must be an identifier: letters, digits and _, not starting with a digit');
  }
  return dataset;
}
