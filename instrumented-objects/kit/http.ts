// Route plumbing every pattern's HTTP routes share: which object a request names (the `:key` in
// its path and `?ns=`), its JSON body (bounded, parsed by a schema at the edge), and the caller's
// trace context. The error body, bounded reads and query parameters are the collector's.
import type { Context } from 'hono';
import { z } from 'zod';
import { ApiError, LIMITS, type Pattern, readBoundedText, textParam, utf8Bytes } from '../../collector';

/** A non-empty string of at most `maxBytes` UTF-8 bytes (the contract's limits are in bytes). */
export function boundedText(maxBytes: number) {
  return z
    .string()
    .min(1)
    .refine((s) => utf8Bytes(s) <= maxBytes, { message: `must be at most ${maxBytes} UTF-8 bytes` });
}

/** The namespace a request names with `?ns=`; without one, the pattern's demo namespace `demo.<pattern>`. */
export function requestNamespace(c: Context, pattern: Pattern): string {
  return textParam(c, 'ns', { maxBytes: LIMITS.nsBytes }) ?? `demo.${pattern}`;
}

/**
 * The (ns, key) a request is about: the `:key` path parameter (1 to 512 bytes, else a 400 with
 * `code`) and its namespace.
 */
export function requestTarget(
  c: Context,
  pattern: Pattern,
  opts: { code?: string } = {},
): { ns: string; key: string } {
  const key = c.req.param('key') ?? '';
  if (key === '' || utf8Bytes(key) > LIMITS.keyBytes) {
    throw new ApiError(400, opts.code ?? 'invalid_parameter', `key must be 1 to ${LIMITS.keyBytes} bytes`);
  }
  return { ns: requestNamespace(c, pattern), key };
}

export type JsonBodyOptions = {
  /** a longer body is a 413, refused before it is all read */
  maxBytes: number;
  /** an empty body reads as `{}` (for bodies whose every field is optional); otherwise it is not JSON */
  emptyIsObject?: boolean;
  /** what the body should look like, appended to the `invalid_json` message */
  expected?: string;
  /** the 400 for JSON the schema refuses; default `invalid_body`, naming the first problem */
  invalid?: { code: string; message: string };
};

/** The request's body: at most `maxBytes`, JSON, and what `schema` accepts — or a 4xx saying what to fix. */
export async function jsonBody<T>(
  c: Context,
  schema: z.ZodType<T, unknown>,
  opts: JsonBodyOptions,
): Promise<T> {
  const text = await readBoundedText(c.req.raw, opts.maxBytes);
  let raw: unknown;
  try {
    raw = text === '' && opts.emptyIsObject ? {} : JSON.parse(text);
  } catch {
    const expected = opts.expected === undefined ? '' : `: ${opts.expected}`;
    throw new ApiError(400, 'invalid_json', `the body must be JSON${expected}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    if (opts.invalid) throw new ApiError(400, opts.invalid.code, opts.invalid.message);
    const issue = parsed.error.issues[0]!;
    throw new ApiError(400, 'invalid_body', `${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  return parsed.data;
}

const TRACEPARENT = /^[\da-f]{2}-([\da-f]{32})-([\da-f]{16})-[\da-f]{2}$/;

/** The W3C trace context of the request (`traceparent`), if it sent one, to stamp on the decision's event. */
export function traceContext(c: Context): { traceId: string; spanId: string } | undefined {
  const m = TRACEPARENT.exec(c.req.header('traceparent') ?? '');
  return m ? { traceId: m[1]!, spanId: m[2]! } : undefined;
}
