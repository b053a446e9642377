// Checks every query backend runs before it answers: a window, step, limit or name out of range is
// the caller's mistake (a 400 `invalid_query`), whichever store would have answered.
import { DECISIONS, LIMITS, PATTERNS, type Pattern, utf8Bytes } from '../contract';
import { ApiError } from '../http';

/** At most this many time buckets in one answer: one screenful. */
export const MAX_TIME_BUCKETS = 3600;

function invalid(message: string): never {
  throw new ApiError(400, 'invalid_query', message);
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
export function checkWindow(
  now: unknown,
  windowSec: unknown,
  maxWindowSec: number,
): { from: number; to: number } {
  const w = checkInt('windowSec', windowSec, 1, maxWindowSec);
  if (typeof now !== 'number' || !Number.isFinite(now) || now < w * 1000 || now > 8.64e15) {
    invalid('now must be ms since epoch, later than the window start');
  }
  const to = Math.floor(now / 1000);
  return { from: to - w, to };
}

export function checkStep(stepSec: unknown, windowSec: number): number {
  const step = checkInt('stepSec', stepSec, 1, windowSec);
  if (Math.ceil(windowSec / step) + 1 > MAX_TIME_BUCKETS) {
    invalid(`windowSec / stepSec must be at most ${MAX_TIME_BUCKETS - 1} buckets`);
  }
  return step;
}
