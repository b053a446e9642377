import { describe, expect, it } from 'vitest';
import { fnv1a32, fnv1a64Hex, shardOf } from './hash';

/** Computed once from fnv1a32('payments.idempotency:order:123'): routing must never change. */
const PINNED = { mod4: 1, mod256: 45 };

describe('stable hashes', () => {
  it('match the published FNV-1a test vectors', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
    expect(fnv1a64Hex('')).toBe('cbf29ce484222325');
    expect(fnv1a64Hex('a')).toBe('af63dc4c8601ec8c');
    expect(fnv1a64Hex('foobar')).toBe('85944171f73967e8');
  });

  it('spreads keys over shards and never moves one', () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 10_000; i++) counts[shardOf('app.kind', `order:${i}`, 4)]!++;
    for (const c of counts) expect(c).toBeGreaterThan(2_200);
    // Check: routing is fnv1a32 of `ns:key`, as it always was (a change would move every key).
    for (let i = 0; i < 1_000; i++) {
      const ns = i % 2 ? 'app.kind' : 'é.ns';
      expect(shardOf(ns, `k:${i}`, 7)).toBe(fnv1a32(`${ns}:k:${i}`) % 7);
    }
    expect(shardOf('payments.idempotency', 'order:123', 4)).toBe(PINNED.mod4);
    expect(shardOf('payments.idempotency', 'order:123', 256)).toBe(PINNED.mod256);
  });
});
