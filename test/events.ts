// Builders for decision events in tests.
import type { DecisionEvent } from '../collector';

let counter = 0;

/** A valid event; `emitter` defaults to a fresh one per call site so ids never collide by accident. */
export function event(over: Partial<DecisionEvent> & { emitter?: string; seq?: number } = {}): DecisionEvent {
  const { emitter = 'test-emitter', seq = counter++, ...rest } = over;
  return {
    v: 1,
    id: `${emitter}:${seq}`,
    ts: Date.now(),
    ns: 'payments.idempotency',
    key: 'order:1',
    pattern: 'idempotency',
    decision: 'applied',
    count: 1,
    ...rest,
  } as DecisionEvent;
}

export const INGEST_TOKEN = 'test-ingest-token';

export function postIngest(body: unknown, token: string | null = INGEST_TOKEN, init: RequestInit = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  return {
    url: 'http://keywarden.test/ingest',
    init: { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body), ...init },
  };
}
