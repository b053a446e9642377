// "Did it already happen?" answered by the objects themselves (DESIGN §3: the collector's trail is
// sampled and cannot prove a request happened; the owning object's own ledger can). Given the trail
// events of a requestId, asks every object that decided on it for its `inspect(requestId)`.
import type { TrailEvent } from '../collector';
import { objectFor } from './kit';
import { PATTERN_OBJECTS, type PatternObjectName } from './patterns';

/** One object's own answer about a request; `answer` is its `inspect(requestId)`, `error` if it could not answer. */
export type AuthoritativeAnswer = {
  pattern: PatternObjectName;
  ns: string;
  key: string;
  shard?: number;
  requestId: string;
  answer?: { found: boolean } & Record<string, unknown>;
  error?: string;
};

/** What the lookup needs of a trail event. */
export type TrailRef = Pick<TrailEvent, 'pattern' | 'ns' | 'key' | 'requestId' | 'shard'>;

/** More objects than this for one requestId is not a lookup any more; the rest are left out. */
export const MAX_LOOKUP_OBJECTS = 16;

type Inspectable = Rpc.DurableObjectBranded & { inspect(requestId?: string): { found: boolean } };

function isPatternObject(pattern: string): pattern is PatternObjectName {
  return Object.hasOwn(PATTERN_OBJECTS, pattern);
}

/**
 * The authoritative answers of the objects behind `trail`: one per distinct (pattern, ns, key,
 * shard, requestId), in the order they first appear. Events of other patterns (Keywarden's own
 * telemetry) are skipped. An object that cannot answer gives `error`, never a throw.
 */
export async function authoritativeLookup(
  env: Env,
  trail: readonly TrailRef[],
  opts: { maxObjects?: number } = {},
): Promise<AuthoritativeAnswer[]> {
  const seen = new Set<string>();
  const wanted: Omit<AuthoritativeAnswer, 'answer' | 'error'>[] = [];
  for (const e of trail) {
    if (!isPatternObject(e.pattern)) continue;
    const id = JSON.stringify([e.pattern, e.ns, e.key, e.shard ?? null, e.requestId]);
    if (seen.has(id)) continue;
    seen.add(id);
    wanted.push({
      pattern: e.pattern,
      ns: e.ns,
      key: e.key,
      requestId: e.requestId,
      ...(e.shard === undefined ? {} : { shard: e.shard }),
    });
  }
  return Promise.all(
    wanted.slice(0, opts.maxObjects ?? MAX_LOOKUP_OBJECTS).map(async (w): Promise<AuthoritativeAnswer> => {
      try {
        const namespace = env[
          PATTERN_OBJECTS[w.pattern].binding
        ] as unknown as DurableObjectNamespace<Inspectable>;
        const stub = objectFor(namespace, w.ns, w.key, { shard: w.shard });
        const answer = (await stub.inspect(w.requestId)) as unknown as AuthoritativeAnswer['answer'];
        return { ...w, answer };
      } catch (err) {
        return { ...w, error: err instanceof Error ? err.message : String(err) };
      }
    }),
  );
}
