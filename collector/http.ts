// HTTP plumbing every part shares: the error body, bearer tokens, bounded bodies, query parameters.
import type { Context, MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

export type ApiErrorBody = { error: { code: string; message: string } };

/** A 4xx the caller can act on; thrown anywhere below a route and rendered by `onError`. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function errorBody(code: string, message: string): ApiErrorBody {
  return { error: { code, message } };
}

export function apiError(c: Context, status: ContentfulStatusCode, code: string, message: string): Response {
  return c.json(errorBody(code, message), status);
}

const encoder = new TextEncoder();

/** Constant-time comparison, so a token cannot be guessed a byte at a time from response times. */
export function sameSecret(given: string, expected: string): boolean {
  const a = encoder.encode(given);
  const b = encoder.encode(expected);
  if (a.byteLength !== b.byteLength) return false;
  return crypto.subtle.timingSafeEqual(a, b);
}

function bearer(c: Context): string | null {
  const h = c.req.header('authorization');
  if (!h) return null;
  const m = /^Bearer\s+(.+)$/i.exec(h.trim());
  return m ? m[1]!.trim() : null;
}

/**
 * Requires `Authorization: Bearer <env[tokenVar]>`. With `optional`, an unset token leaves the
 * route open (read-only dashboard data locally); otherwise an unset token closes it.
 */
export function requireToken(
  tokenVar:
    | 'KEYWARDEN_INGEST_TOKEN'
    | 'KEYWARDEN_OPERATOR_TOKEN'
    | 'KEYWARDEN_API_TOKEN'
    | 'KEYWARDEN_READ_TOKEN',
  opts: { optional?: boolean } = {},
): MiddlewareHandler<{ Bindings: Env }> {
  return async (c, next) => {
    const expected = c.env[tokenVar];
    if (!expected) {
      if (opts.optional) return next();
      return apiError(
        c,
        401,
        'unauthorized',
        `${tokenVar} is not configured on this Worker, so this route is closed`,
      );
    }
    const given = bearer(c);
    if (given === null) return apiError(c, 401, 'unauthorized', 'send Authorization: Bearer <token>');
    if (!sameSecret(given, expected))
      return apiError(c, 401, 'unauthorized', 'the bearer token is not valid here');
    return next();
  };
}

/** Reads at most `limit` bytes of body, refusing more without reading it all. */
export async function readBoundedText(req: Request, limit: number): Promise<string> {
  const header = req.headers.get('content-length');
  const declared = header === null || !/^\d+$/.test(header) ? null : Number(header);
  if (declared !== null && declared > limit) {
    throw new ApiError(413, 'payload_too_large', `the body is over ${limit} bytes`);
  }
  if (!req.body) return '';
  // A declared length within the limit: one read, no chunk bookkeeping (the runtime holds the body
  // to its declared length).
  if (declared !== null) return decodeUtf8(new Uint8Array(await req.arrayBuffer()), limit);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new ApiError(413, 'payload_too_large', `the body is over ${limit} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return decodeUtf8(all, limit);
}

function decodeUtf8(bytes: Uint8Array, limit: number): string {
  if (bytes.byteLength > limit)
    throw new ApiError(413, 'payload_too_large', `the body is over ${limit} bytes`);
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError(400, 'invalid_encoding', 'the body must be UTF-8');
  }
}

/** An integer query parameter within bounds, or its default when absent. */
export function intParam(c: Context, name: string, def: number, min: number, max: number): number {
  const raw = c.req.query(name);
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ApiError(400, 'invalid_parameter', `${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

export function textParam(c: Context, name: string, opts: { required: true; maxBytes?: number }): string;
export function textParam(
  c: Context,
  name: string,
  opts?: { required?: false; maxBytes?: number },
): string | undefined;
export function textParam(
  c: Context,
  name: string,
  opts: { required?: boolean; maxBytes?: number } = {},
): string | undefined {
  const raw = c.req.query(name);
  if (raw === undefined || raw === '') {
    if (opts.required) throw new ApiError(400, 'missing_parameter', `${name} is required`);
    return undefined;
  }
  const max = opts.maxBytes ?? 512;
  if (encoder.encode(raw).byteLength > max) {
    throw new ApiError(400, 'invalid_parameter', `${name} must be at most ${max} bytes`);
  }
  return raw;
}
