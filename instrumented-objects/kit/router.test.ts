import { env } from 'cloudflare:test';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { objectFor, objectName, parseObjectName } from './router';

describe('the router', () => {
  it('names (ns, key) unambiguously, whatever the separators inside them', () => {
    expect(objectName('a:b', 'c')).not.toBe(objectName('a', 'b:c'));
    expect(objectName('payments.idempotency', 'order:123')).toBe('20:payments.idempotency:order:123');
    // Check: a key cannot impersonate a shard of another key.
    expect(objectName('ns', 'k', { shard: 1 })).toBe('s1/2:ns:k');
    expect(objectName('s1/2', 'ns:k')).not.toBe(objectName('ns', 'k', { shard: 1 }));
    fc.assert(
      fc.property(
        fc.string(),
        fc.string(),
        fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }),
        fc.string(),
        fc.string(),
        fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }),
        (ns1, key1, shard1, ns2, key2, shard2) => {
          const same = ns1 === ns2 && key1 === key2 && shard1 === shard2;
          const a = objectName(ns1, key1, { shard: shard1 });
          const b = objectName(ns2, key2, { shard: shard2 });
          expect(a === b).toBe(same);
          expect(parseObjectName(a)).toEqual(
            shard1 === undefined ? { ns: ns1, key: key1 } : { ns: ns1, key: key1, shard: shard1 },
          );
        },
      ),
    );
  });

  it('keeps the epoch out of the name: an object outlives epochs and fences them itself', () => {
    expect(objectName('ns', 'k', { shard: 2, epoch: 7 })).toBe(objectName('ns', 'k', { shard: 2 }));
    expect(objectName('ns', 'k', { epoch: 7 })).toBe(objectName('ns', 'k'));
  });

  it('refuses a shard that is not a small non-negative integer', () => {
    for (const shard of [-1, 1.5, 65536, Number.NaN]) {
      expect(() => objectName('ns', 'k', { shard })).toThrow(RangeError);
    }
  });

  it('does not parse names it did not make', () => {
    for (const name of ['', 'x', '3:ab', '2:ab', 's/1:a:', 's99999/1:a:b', '01:a:b']) {
      expect(parseObjectName(name)).toBeNull();
    }
  });

  it('gives the same object for the same (ns, key) and another for a shard of it', async () => {
    const a = objectFor(env.COUNTER, 'router.test', 'k');
    const b = objectFor(env.COUNTER, 'router.test', 'k');
    const shard = objectFor(env.COUNTER, 'router.test', 'k', { shard: 0 });
    expect(a.id.equals(b.id)).toBe(true);
    expect(a.id.equals(shard.id)).toBe(false);
    await a.increment({ ns: 'router.test', key: 'k', requestId: 'r1' });
    expect(await b.read({ ns: 'router.test', key: 'k' })).toMatchObject({ value: 1 });
    expect(await shard.read({ ns: 'router.test', key: 'k' })).toMatchObject({ value: 0 });
  });
});
