// The Worker as a whole: every part mounted, and the answers that need more than one part.
import { env, SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { objectFor, PAY_NS } from './instrumented-objects';

const API = { authorization: 'Bearer test-api-token', 'content-type': 'application/json' };

describe('GET /api/lookup', () => {
  it("answers 'did it already happen?' with the owning object's ledger beside the event trail", async () => {
    const pay = () =>
      SELF.fetch('http://keywarden.test/demo/pay/order-lookup', {
        method: 'POST',
        headers: { ...API, 'idempotency-key': 'req-lookup-1' },
        body: JSON.stringify({ amount: 1200 }),
      });
    const first = (await (await pay()).json()) as { chargeId: string; replayed: boolean };
    const retry = (await (await pay()).json()) as { chargeId: string; replayed: boolean };
    expect(retry).toMatchObject({ chargeId: first.chargeId, replayed: true });
    // Check: push the object's telemetry out now rather than waiting 250 ms.
    await objectFor(env.IDEMPOTENCY, PAY_NS, 'order:order-lookup').flushTelemetry();
    const res = await SELF.fetch('http://keywarden.test/api/lookup?requestId=req-lookup-1');
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      trail: { pattern: string; decision: string; key: string }[];
      authoritative: { pattern: string; key: string; answer?: { found: boolean; state?: string } }[];
    };
    const idem = body.trail.filter((e) => e.pattern === 'idempotency').map((e) => e.decision);
    expect(idem).toEqual(['applied', 'duplicate']);
    const ledger = body.authoritative.find((a) => a.pattern === 'idempotency');
    expect(ledger?.key).toBe('order:order-lookup');
    expect(ledger?.answer).toMatchObject({ found: true, state: 'applied' });
  });

  it('says plainly when nothing is known of a request', async () => {
    const res = await SELF.fetch('http://keywarden.test/api/lookup?requestId=never-seen');
    expect(await res.json()).toEqual({ requestId: 'never-seen', trail: [], authoritative: [] });
  });
});

describe('the Worker', () => {
  it('answers unknown routes with a JSON 404', async () => {
    const res = await SELF.fetch('http://keywarden.test/api/nope');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });

  it('serves the dashboard as a static asset', async () => {
    const res = await env.ASSETS.fetch('http://keywarden.test/index.html');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('Keywarden');
  });
});

describe('operator routes over any object', () => {
  const OPS = { authorization: 'Bearer test-operator-token', 'content-type': 'application/json' };
  it("turns one object's telemetry off and on without changing its answers", async () => {
    const url = 'http://keywarden.test/ops/objects/counter/ops-switch/telemetry?ns=ops.test';
    expect((await SELF.fetch(url, { method: 'PUT', body: '{"enabled":false}' })).status).toBe(401);
    const off = await SELF.fetch(url, { method: 'PUT', headers: OPS, body: '{"enabled":false}' });
    expect(((await off.json()) as { enabled: boolean }).enabled).toBe(false);
    const counter = objectFor(env.COUNTER, 'ops.test', 'ops-switch');
    expect((await counter.increment({ ns: 'ops.test', key: 'ops-switch', requestId: 'r1' })).value).toBe(1);
    await counter.flushTelemetry();
    expect(((await (await SELF.fetch(url, { headers: OPS })).json()) as { sent: number }).sent).toBe(0);
    await SELF.fetch(url, { method: 'PUT', headers: OPS, body: '{"enabled":true}' });
    expect((await counter.increment({ ns: 'ops.test', key: 'ops-switch', requestId: 'r2' })).value).toBe(2);
    await counter.flushTelemetry();
    expect(((await (await SELF.fetch(url, { headers: OPS })).json()) as { sent: number }).sent).toBe(1);
    const bad = await SELF.fetch(url, { method: 'PUT', headers: OPS, body: '{"enabled":"no"}' });
    expect(bad.status).toBe(400);
    const unknown = await SELF.fetch('http://keywarden.test/ops/objects/nope/k/telemetry', { headers: OPS });
    expect(unknown.status).toBe(404);
  });
});
