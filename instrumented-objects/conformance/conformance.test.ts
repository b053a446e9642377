// The harness must fail a pattern that breaks its invariant — otherwise every pattern passes it
// vacuously. These run it against the counter misused in the ways it is meant to catch.
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { objectFor } from '../kit/router';
import { type ConformanceSpec, runScenario } from '.';

type Counter = ReturnType<typeof counterStub>;
const counterStub = (ns: string, key: string) => objectFor(env.COUNTER, ns, key);

const exactOncePerRequest: ConformanceSpec<Counter, { decision: string }>['check'] = ({
  byRequest,
  inspect,
}) => {
  expect(inspect).toMatchObject({ counters: [{ value: byRequest.size }] });
};

const honest: ConformanceSpec<Counter, { decision: string }> = {
  pattern: 'counter',
  callers: 6,
  object: counterStub,
  operation: (c, call) => c.increment({ ns: call.ns, key: call.key, requestId: call.requestId }),
  check: exactOncePerRequest,
};

describe('the conformance harness', () => {
  it('passes an honest pattern in every scenario and reports what it did', async () => {
    const run = await runScenario(honest, 'restart');
    // Check: 6 callers in wave 1 (2 of them retried after, 2 concurrently), 6 new in wave 2, 6 retried across the restart.
    expect(run.restarted).toBe(true);
    expect(run.byRequest.size).toBe(12);
    expect(run.calls).toHaveLength(6 + 2 + 2 + 6 + 6);
    expect(run.calls.filter((c) => c.kind === 'retry_after_restart')).toHaveLength(6);
    expect(run.calls.filter((c) => c.kind === 'concurrent_retry')).toHaveLength(2);
    expect(new Set(run.calls.map((c) => c.seq)).size).toBe(run.calls.length);
    await runScenario(honest, 'retries');
    await runScenario(honest, 'concurrent');
  });

  it('fails a pattern that applies a retried request twice', async () => {
    // A client that mints a new id per attempt: every retry counts again.
    const careless = {
      ...honest,
      operation: honest.operation,
      inspectsRequests: false,
      telemetry: false as const,
    };
    careless.operation = (c, call) =>
      c.increment({ ns: call.ns, key: call.key, requestId: `${call.requestId}#${call.attempt}` });
    await expect(runScenario(careless, 'retries')).rejects.toThrow();
    await expect(runScenario(careless, 'restart')).rejects.toThrow();
  });

  it('fails a pattern whose ledger cannot answer for a request', async () => {
    const forgetful: ConformanceSpec<Counter, { decision: string }> = {
      ...honest,
      operation: (c, call) => c.increment({ ns: call.ns, key: call.key }),
      check: () => {},
      telemetry: false,
    };
    await expect(runScenario(forgetful, 'concurrent')).rejects.toThrow(/inspect\(requestId\)/);
  });

  it('fails a pattern whose events do not match its answers', async () => {
    const silent: ConformanceSpec<Counter, { decision: string }> = {
      ...honest,
      telemetry: {
        expected: (run) =>
          new Map([...run.byRequest.keys()].map((id) => [id, ['incremented', 'incremented']])),
      },
    };
    await expect(runScenario(silent, 'concurrent')).rejects.toThrow(/every decision is one event/);
  });

  it('fails a pattern whose calls throw, unless it allows errors', async () => {
    const throwing: ConformanceSpec<Counter, { decision: string }> = {
      ...honest,
      operation: (c, call) => c.increment({ ns: call.ns, key: call.key, requestId: call.requestId, by: 0.5 }),
      check: () => {},
      telemetry: false,
      inspectsRequests: false,
    };
    await expect(runScenario(throwing, 'concurrent')).rejects.toThrow(/no call may throw/);
    const run = await runScenario({ ...throwing, allowErrors: true }, 'concurrent');
    expect(run.calls.every((c) => !c.ok && /safe integer/.test(c.error))).toBe(true);
  });
});
