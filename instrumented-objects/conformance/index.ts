/**
 * The pattern conformance suite: one harness every pattern object runs through (like Hono's
 * `runTest({ newRouter })`), so "correct under concurrency, retries and restarts" (DESIGN §4, §9)
 * means the same thing for every pattern. Test-only: it imports `cloudflare:test` and vitest, so
 * nothing outside `*.test.ts` files may import it.
 *
 * A pattern describes itself once, as a `ConformanceSpec`:
 * - `object(ns, key)`: a stub of the object for a key (use the kit's `objectFor`); called again
 *   after a restart to get fresh stubs;
 * - `operation(object, call)`: ONE call carrying `call.requestId`, which the harness may repeat
 *   (sequentially, concurrently, and across a restart) — it must be safe to retry;
 * - `check(run)`: the pattern's invariant over every call's result plus the object's `inspect()`
 *   (never applied twice; one lock holder and increasing fencing tokens; the limit never exceeded;
 *   the counter exact; order kept; no message lost or acked twice), with vitest's `expect`;
 * - `callers`: how many callers run at once in a wave.
 *
 * `runConformance(spec)` then declares one `describe` with three scenarios, each on a fresh key:
 * - `concurrent`: `callers` callers at once, one distinct requestId each;
 * - `retries`: the same, and caller i also retries its requestId — i%3 = 0 after its answer,
 *   i%3 = 1 concurrently with its first call — then every requestId is retried once more, all at once;
 * - `restart`: wave 1 as in `retries` (without its final round); then the object is restarted (its telemetry flushed,
 *   `abortAllDurableObjects()`, fresh stubs); wave 2 runs `callers` new requestIds together with a
 *   retry of every wave-1 requestId, all at once.
 * After the last wave: `settle` (if given: drain a queue, fire alarms), then the harness checks
 * that no call threw (unless `allowErrors`), that `inspect(requestId)` finds every request that was
 * answered (unless `inspectsRequests: false`), that the decision events for every requestId reached
 * the collector exactly as the results say (unless `telemetry: false`), and runs `check(run)`.
 *
 * Example (the counter; see patterns/counter/object.test.ts):
 *
 *   runConformance({
 *     pattern: 'counter',
 *     callers: 16,
 *     object: (ns, key) => objectFor(env.COUNTER, ns, key),
 *     operation: (counter, call) =>
 *       counter.increment({ ns: call.ns, key: call.key, requestId: call.requestId }),
 *     check: ({ byRequest, inspect }) => {
 *       // exact: one increment per distinct requestId, whatever the retries
 *       expect(inspect).toMatchObject({ counters: [{ value: byRequest.size }] });
 *       for (const [, tries] of byRequest)
 *         expect(answered(tries).filter((c) => c.result.decision === 'incremented')).toHaveLength(1);
 *     },
 *   });
 *
 * Results carrying a string `decision` field get the telemetry check for free: each such call must
 * have produced exactly one event with that decision, its requestId, ns and key. Patterns whose
 * events differ (a call making two decisions, events emitted by `settle`) pass `telemetry.expected`.
 */
import { abortAllDurableObjects, env, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { Collector, type Pattern, type TrailEvent } from '../../collector';
import type { EmitterStats } from '../kit';

export type ScenarioName = 'concurrent' | 'retries' | 'restart';
export const SCENARIOS: readonly ScenarioName[] = ['concurrent', 'retries', 'restart'];

/** Why a call was made: its first try, or which kind of retry of the same requestId. */
export type CallKind = 'first' | 'retry' | 'concurrent_retry' | 'retry_after_restart';

/** One call the harness makes through `spec.operation`. */
export type Call = {
  ns: string;
  key: string;
  requestId: string;
  /** the logical request: 0, 1, … — one per distinct requestId, in the order they were created */
  index: number;
  /** the concurrent caller that made it (wave 2's new callers continue the numbering) */
  caller: number;
  wave: 1 | 2;
  /** 0 for the first call with this requestId, then 1, 2, … in the order the calls were started */
  attempt: number;
  kind: CallKind;
};

export type CallRecord<R> = Call & {
  /** completion order over the whole run: 0 finished first */
  seq: number;
  startedAt: number;
  endedAt: number;
} & ({ ok: true; result: R } | { ok: false; error: string });

export type ConformanceRun<S, R, I> = {
  scenario: ScenarioName;
  ns: string;
  key: string;
  /** a stub for the object now (after the restart, a fresh one) */
  object: S;
  /** every call, in the order they finished */
  calls: CallRecord<R>[];
  /** the calls of each requestId, in the order they finished */
  byRequest: Map<string, CallRecord<R>[]>;
  /** `inspect()` of the object after the last wave and `settle` */
  inspect: I;
  /** what `settle` returned, if the spec has one */
  settled: unknown;
  restarted: boolean;
};

/** A pattern object stub as the harness needs it: every pattern object has these two. */
export type InspectableStub = {
  inspect(requestId?: string): Promise<unknown>;
  telemetryStats(): Promise<EmitterStats>;
};

export type ConformanceSpec<S extends InspectableStub, R, I = Awaited<ReturnType<S['inspect']>>> = {
  pattern: Pattern;
  /** the namespace used for the run's keys; default `conformance.<pattern>` */
  ns?: string;
  /** a fresh key per scenario; default `<scenario>-<random>` */
  newKey?(scenario: ScenarioName): string;
  /** the stub for (ns, key); called again after a restart */
  object(ns: string, key: string): S;
  /** concurrent callers per wave; default 16 */
  callers?: number;
  /** the requestId of logical request `index`; default `<key>/req-<index>` */
  requestId?(key: string, index: number): string;
  /** scenarios to run; default all three */
  scenarios?: readonly ScenarioName[];
  /** before the first wave (seed a queue, configure a limit) */
  setup?(object: S, ctx: { ns: string; key: string; scenario: ScenarioName }): Promise<void>;
  /** one call with `call.requestId`; may be retried, so it must be idempotent as the pattern defines */
  operation(object: S, call: Call): Promise<R>;
  /** the object's summary; default `object.inspect()` */
  inspect?(object: S): Promise<I>;
  /** after the last wave, before the checks: drain, fire alarms; its result is `run.settled` */
  settle?(run: Omit<ConformanceRun<S, R, I>, 'inspect' | 'settled'>): Promise<unknown>;
  /** the pattern's invariant, with vitest's `expect` */
  check(run: ConformanceRun<S, R, I>): void | Promise<void>;
  /** calls may throw (the throws are recorded as `ok: false`); default false: any throw fails */
  allowErrors?: boolean;
  /** `inspect(requestId)` must answer `found: true` for every request that got an answer; default true */
  inspectsRequests?: boolean;
  /**
   * Events per requestId that must reach the collector. Default: the `decision` field of each
   * successful call's result, one event each. `false` skips the check.
   */
  telemetry?: false | { expected(run: ConformanceRun<S, R, I>): Map<string, string[]> };
  /** per-scenario test timeout; default 30 s */
  timeoutMs?: number;
};

/** The calls that returned (narrowed, so `c.result` is typed). */
export function answered<R>(calls: readonly CallRecord<R>[]): (CallRecord<R> & { ok: true; result: R })[] {
  return calls.filter((c): c is CallRecord<R> & { ok: true; result: R } => c.ok);
}

/** The default telemetry expectation: one event per successful call whose result has a `decision`. */
export function decisionsFromResults<R>(run: {
  byRequest: Map<string, CallRecord<R>[]>;
}): Map<string, string[]> {
  const expected = new Map<string, string[]>();
  for (const [requestId, calls] of run.byRequest) {
    const decisions: string[] = [];
    for (const c of calls) {
      const d = c.ok ? (c.result as { decision?: unknown } | null)?.decision : undefined;
      if (typeof d === 'string') decisions.push(d);
    }
    expected.set(requestId, decisions);
  }
  return expected;
}

/** Declares the conformance suite for one pattern (call it at the top level of a test file). */
export function runConformance<S extends InspectableStub, R, I = Awaited<ReturnType<S['inspect']>>>(
  spec: ConformanceSpec<S, R, I>,
): void {
  const scenarios = spec.scenarios ?? SCENARIOS;
  describe(`${spec.pattern} conformance`, () => {
    for (const scenario of scenarios) {
      it(
        TITLES[scenario],
        async () => {
          await runScenario(spec, scenario);
        },
        spec.timeoutMs ?? 30_000,
      );
    }
  });
}

const TITLES: Record<ScenarioName, string> = {
  concurrent: 'holds its invariant with concurrent callers',
  retries: 'holds its invariant when requests are retried, one after another and concurrently',
  restart: 'holds its invariant across a restart, with retries on both sides of it',
};

/** Runs one scenario and all its checks; returns the run for further assertions. */
export async function runScenario<S extends InspectableStub, R, I = Awaited<ReturnType<S['inspect']>>>(
  spec: ConformanceSpec<S, R, I>,
  scenario: ScenarioName,
): Promise<ConformanceRun<S, R, I>> {
  const ns = spec.ns ?? `conformance.${spec.pattern}`;
  const key = spec.newKey?.(scenario) ?? `${scenario}-${crypto.randomUUID().slice(0, 8)}`;
  const callers = spec.callers ?? 16;
  const requestIdOf = (index: number) => spec.requestId?.(key, index) ?? `${key}/req-${index}`;
  let object = spec.object(ns, key);
  let restarted = false;
  const calls: CallRecord<R>[] = [];
  const attempts = new Map<string, number>();
  let seq = 0;

  const call = async (index: number, caller: number, wave: 1 | 2, kind: CallKind): Promise<void> => {
    const requestId = requestIdOf(index);
    const attempt = attempts.get(requestId) ?? 0;
    attempts.set(requestId, attempt + 1);
    const c: Call = { ns, key, requestId, index, caller, wave, attempt, kind };
    const startedAt = Date.now();
    try {
      const result = await spec.operation(object, c);
      calls.push({ ...c, seq: seq++, startedAt, endedAt: Date.now(), ok: true, result });
    } catch (err) {
      calls.push({ ...c, seq: seq++, startedAt, endedAt: Date.now(), ok: false, error: String(err) });
    }
  };

  /** Callers `from`..`from+n-1`, each with its own request; `retrying` adds the retries of `retries`. */
  const callersOf = (from: number, n: number, wave: 1 | 2, retrying: boolean) =>
    Array.from({ length: n }, async (_, i) => {
      const index = from + i;
      if (!retrying) return call(index, index, wave, 'first');
      if (index % 3 === 1) {
        await Promise.all([call(index, index, wave, 'first'), call(index, index, wave, 'concurrent_retry')]);
        return;
      }
      await call(index, index, wave, 'first');
      if (index % 3 === 0) await call(index, index, wave, 'retry');
    });

  await spec.setup?.(object, { ns, key, scenario });

  // Check: wave 1 — every caller at once.
  await Promise.all(callersOf(0, callers, 1, scenario !== 'concurrent'));

  if (scenario === 'retries') {
    // Check: every request retried once more, all at once, after all of them were answered.
    await Promise.all(Array.from({ length: callers }, (_, i) => call(i, i, 1, 'retry')));
  }

  if (scenario === 'restart') {
    // Events buffered in memory die with the instance: deliver them first, as a graceful
    // shutdown would, so the telemetry check below can demand all of them.
    await flushTelemetry(object);
    await abortAllDurableObjects();
    object = spec.object(ns, key);
    restarted = true;
    // Check: wave 2 — new callers together with a retry of every wave-1 request.
    await Promise.all([
      ...callersOf(callers, callers, 2, false),
      ...Array.from({ length: callers }, (_, i) => call(i, i, 2, 'retry_after_restart')),
    ]);
  }

  calls.sort((a, b) => a.seq - b.seq);
  const byRequest = new Map<string, CallRecord<R>[]>();
  for (const c of calls) {
    const list = byRequest.get(c.requestId);
    if (list) list.push(c);
    else byRequest.set(c.requestId, [c]);
  }

  if (!spec.allowErrors) {
    const failed = calls.filter((c) => !c.ok);
    expect(
      failed.map((c) => `${c.requestId} (${c.kind}): ${c.ok ? '' : c.error}`),
      'no call may throw',
    ).toEqual([]);
  }

  const partial = { scenario, ns, key, object, calls, byRequest, restarted };
  const settled = spec.settle ? await spec.settle(partial) : undefined;
  const inspect = spec.inspect
    ? await spec.inspect(object)
    : ((await object.inspect()) as Awaited<ReturnType<S['inspect']>> as unknown as I);
  const run: ConformanceRun<S, R, I> = { ...partial, inspect, settled };

  if (spec.inspectsRequests ?? true) {
    // Check: the object's own ledger knows every request it answered (the authoritative lookup).
    const missing: string[] = [];
    for (const [requestId, list] of byRequest) {
      if (!list.some((c) => c.ok)) continue;
      const answer = (await object.inspect(requestId)) as { found?: unknown };
      if (answer?.found !== true) missing.push(requestId);
    }
    expect(missing, 'inspect(requestId) must find every answered request').toEqual([]);
  }

  if (spec.telemetry !== false) {
    const expected = spec.telemetry ? spec.telemetry.expected(run) : decisionsFromResults(run);
    await flushTelemetry(object);
    await expectTrail(spec.pattern, ns, key, expected);
  }

  await spec.check(run);
  return run;
}

/**
 * Delivers what the object's emitter holds: flushes its buffer and waits (briefly polling, there
 * is no alarm involved) until no batch is in flight. Fails if events are stuck in the outbox.
 */
export async function flushTelemetry(object: InspectableStub): Promise<void> {
  const stub = object as unknown as DurableObjectStub<never>;
  for (let i = 0; i < 200; i++) {
    await runInDurableObject(stub, (instance: unknown) =>
      (instance as { flushTelemetry(): Promise<void> }).flushTelemetry(),
    );
    const stats = await object.telemetryStats();
    expect(stats.outboxEvents, 'telemetry must reach the collector, not the outbox').toBe(0);
    if (stats.buffered === 0 && stats.inFlight === 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('telemetry did not drain within 2 s');
}

/** Checks that each requestId's events reached the collector: these decisions, once each. */
export async function expectTrail(
  pattern: Pattern,
  ns: string,
  key: string,
  expected: Map<string, string[]>,
): Promise<void> {
  const collector = new Collector(env);
  const wrong: string[] = [];
  await Promise.all(
    [...expected].map(async ([requestId, decisions]) => {
      const trail: TrailEvent[] = (await collector.lookup(requestId)).filter((e) => e.pattern === pattern);
      const got = trail.map((e) => e.decision).sort();
      const want = [...decisions].sort();
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        wrong.push(`${requestId}: events ${JSON.stringify(got)}, results say ${JSON.stringify(want)}`);
      }
      for (const e of trail) {
        if (e.ns !== ns || e.key !== key)
          wrong.push(`${requestId}: event ${e.id} is labelled ${e.ns} ${e.key}`);
        if (typeof e.durationMs !== 'number') wrong.push(`${requestId}: event ${e.id} has no durationMs`);
      }
    }),
  );
  expect(wrong.sort(), 'every decision is one event with its requestId, ns and key').toEqual([]);
}
