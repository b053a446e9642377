import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ApiError, errorBody, LIMITS } from '../../collector';
import { boundedText, jsonBody, requestTarget, traceContext } from './http';

// A route the way every pattern writes one, rendered as the Worker renders a 4xx.
const app = new Hono();
app.onError((err, c) => {
  if (err instanceof ApiError) return c.json(errorBody(err.code, err.message), err.status);
  throw err;
});
const body = z.strictObject({ requestId: boundedText(8).optional(), n: z.number().int().optional() });
app.post('/strict/:key', async (c) =>
  c.json({ ...requestTarget(c, 'counter'), body: await jsonBody(c, body, { maxBytes: 64 }) }),
);
app.post('/lenient/:key', async (c) =>
  c.json({
    ...requestTarget(c, 'rate_limit', { code: 'invalid_key' }),
    body: await jsonBody(c, body, { maxBytes: 64, emptyIsObject: true }),
    trace: traceContext(c) ?? null,
  }),
);
app.post('/custom', async (c) =>
  c.json(
    await jsonBody(c, z.strictObject({ amount: z.number() }), {
      maxBytes: 64,
      expected: '{"amount": <n>}',
      invalid: { code: 'invalid_amount', message: 'send an amount' },
    }),
  ),
);

const post = (path: string, text: string, headers: Record<string, string> = {}) =>
  app.request(`http://x${path}`, { method: 'POST', body: text, headers });

async function refusal(res: Response) {
  return { status: res.status, ...((await res.json()) as ReturnType<typeof errorBody>).error };
}

describe('the route helpers', () => {
  it('name the object: the path key and ?ns=, which defaults to demo.<pattern>', async () => {
    expect(await (await post('/strict/order:1', '{}')).json()).toEqual({
      ns: 'demo.counter',
      key: 'order:1',
      body: {},
    });
    expect(await (await post('/strict/order:1?ns=shop.orders', '{"n":2}')).json()).toMatchObject({
      ns: 'shop.orders',
      body: { n: 2 },
    });
    // Check: the limits are bytes, so a key of 2-byte characters is over at half the length.
    const long = await post(`/strict/${encodeURIComponent('é'.repeat(LIMITS.keyBytes / 2 + 1))}`, '{}');
    expect(await refusal(long)).toEqual({
      status: 400,
      code: 'invalid_parameter',
      message: `key must be 1 to ${LIMITS.keyBytes} bytes`,
    });
    const longOps = await post(`/lenient/${'k'.repeat(LIMITS.keyBytes + 1)}`, '');
    expect((await refusal(longOps)).code).toBe('invalid_key');
    const ns = await post(`/strict/k?ns=${'n'.repeat(LIMITS.nsBytes + 1)}`, '{}');
    expect(await refusal(ns)).toMatchObject({ status: 400, code: 'invalid_parameter' });
  });

  it('read a bounded JSON body and say what to fix when it is not one', async () => {
    expect(await refusal(await post('/strict/k', '{oops'))).toEqual({
      status: 400,
      code: 'invalid_json',
      message: 'the body must be JSON',
    });
    // An empty body is JSON only where every field is optional and the route says so.
    expect((await refusal(await post('/strict/k', ''))).code).toBe('invalid_json');
    expect(await (await post('/lenient/k', '')).json()).toMatchObject({ body: {} });
    expect(await refusal(await post('/strict/k', '{"requestId":"ééééé"}'))).toEqual({
      status: 400,
      code: 'invalid_body',
      message: 'requestId: must be at most 8 UTF-8 bytes',
    });
    expect((await refusal(await post('/strict/k', '[1]'))).message).toMatch(/^body: /);
    expect((await refusal(await post('/strict/k', '{"extra":1}'))).code).toBe('invalid_body');
    expect(await refusal(await post('/strict/k', JSON.stringify({ requestId: 'x'.repeat(80) })))).toEqual({
      status: 413,
      code: 'payload_too_large',
      message: 'the body is over 64 bytes',
    });
    expect(await refusal(await post('/custom', 'nope'))).toEqual({
      status: 400,
      code: 'invalid_json',
      message: 'the body must be JSON: {"amount": <n>}',
    });
    expect(await refusal(await post('/custom', '{"amount":"1"}'))).toEqual({
      status: 400,
      code: 'invalid_amount',
      message: 'send an amount',
    });
  });

  it('carry the W3C trace context of the request, and ignore a malformed one', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect(await (await post('/lenient/k', '', { traceparent })).json()).toMatchObject({
      trace: { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' },
    });
    for (const bad of ['00-XYZ-00f067aa0ba902b7-01', `${traceparent}-extra`, '']) {
      expect(await (await post('/lenient/k', '', { traceparent: bad })).json()).toMatchObject({
        trace: null,
      });
    }
  });
});
