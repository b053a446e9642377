// The router: (ns, key) → the one Durable Object that coordinates that key (DESIGN §4).
//
// Every caller that reaches a pattern object — its HTTP routes, the demo, the lookup — names it
// through here, so "the object for order:123" is the same object wherever it is asked from.
//
// Shards (DESIGN §8): once a hot key is split, its requests go to one of `shards` objects, chosen
// by the caller from the shard map (`{shards, epoch, state}` per key, held by a ShardMap object
// that is a later issue). Shard i of a key is its own object, named apart from the unsplit key.
// The epoch is not part of the name: an object outlives epochs, and it is the object that refuses
// a request made under an older epoch ("moved"), so the router can refresh its cached map.

/** Where a request for a key goes once the key is split; both absent for an unsplit key. */
export type Placement = { shard?: number; epoch?: number };

/** A shard index is a small non-negative integer (it is also the event's `shard` field, ≤ 65535). */
export const MAX_SHARD = 65_535;

/**
 * The Durable Object name of (ns, key[, shard]). Unambiguous for any strings: the ns is
 * length-prefixed, so `a:b` + `c` and `a` + `b:c` differ; a sharded name starts with `s`, an
 * unsharded one with a digit, so no key can impersonate a shard.
 */
export function objectName(ns: string, key: string, placement: Placement = {}): string {
  const base = `${ns.length}:${ns}:${key}`;
  const { shard } = placement;
  if (shard === undefined) return base;
  if (!Number.isInteger(shard) || shard < 0 || shard > MAX_SHARD) {
    throw new RangeError(`shard must be an integer from 0 to ${MAX_SHARD}, got ${shard}`);
  }
  return `s${shard}/${base}`;
}

/** The inverse of `objectName`, for tools that list objects; null for a name it did not make. */
export function parseObjectName(name: string): { ns: string; key: string; shard?: number } | null {
  const m = /^(?:s(0|[1-9]\d{0,4})\/)?(0|[1-9]\d*):/s.exec(name);
  if (!m) return null;
  const nsLength = Number(m[2]);
  const rest = name.slice(m[0].length);
  if (rest.length < nsLength || rest[nsLength] !== ':') return null;
  const parsed: { ns: string; key: string; shard?: number } = {
    ns: rest.slice(0, nsLength),
    key: rest.slice(nsLength + 1),
  };
  if (m[1] !== undefined) {
    const shard = Number(m[1]);
    if (shard > MAX_SHARD) return null;
    parsed.shard = shard;
  }
  return parsed;
}

/** The stub of the object that coordinates (ns, key) — or shard `placement.shard` of it. */
export function objectFor<T extends Rpc.DurableObjectBranded | undefined>(
  namespace: DurableObjectNamespace<T>,
  ns: string,
  key: string,
  placement: Placement = {},
): DurableObjectStub<T> {
  return namespace.get(namespace.idFromName(objectName(ns, key, placement)));
}
