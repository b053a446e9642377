// Realistic decision-event batches (contract v1, collector/contract.ts) for load generators, written
// straight into bytes. Every constant piece of an event (its id prefix, ns, key, pattern, decision)
// is encoded once per key; an event then costs a few small buffer copies and two integers written
// as digits. Building the same JSON by string concatenation costs several times more CPU (V8 has to
// flatten a rope of thousands of pieces when the body is encoded), and the generator shares the
// machine with the server it measures.
import { rng, weighted, zipf } from '../../scripts/lib/random.mjs';

/**
 * Namespaces with the pattern their objects run; decisions as in collector/contract.ts DECISIONS,
 * weighted like a healthy system (mostly the happy path). `value`: the pattern reports a measure.
 */
export const NAMESPACES = [
  {
    ns: 'payments.idempotency',
    pattern: 'idempotency',
    prefix: 'order',
    decisions: { applied: 80, duplicate: 15, in_flight: 4, conflict: 1 },
  },
  {
    ns: 'api.rate_limit',
    pattern: 'rate_limit',
    prefix: 'tenant',
    decisions: { allowed: 90, limited: 10 },
    value: true,
  },
  {
    ns: 'orders.queue',
    pattern: 'queue',
    prefix: 'queue',
    decisions: { enqueued: 35, delivered: 30, acked: 30, retried: 4, dead_lettered: 1 },
    value: true,
  },
  {
    ns: 'inventory.lock',
    pattern: 'lock',
    prefix: 'sku',
    decisions: { acquired: 40, waited: 10, released: 40, expired: 5, fenced: 5 },
    value: true,
  },
  { ns: 'users.counter', pattern: 'counter', prefix: 'user', decisions: { incremented: 95, duplicate: 5 } },
];

/** Key rank k lives in namespace k mod NAMESPACES.length, so the hottest keys spread over them. */
export function keyName(k) {
  const n = NAMESPACES[k % NAMESPACES.length];
  return { ns: n.ns, key: `${n.prefix}:${k}` };
}

const ascii = (s) => Buffer.from(s, 'latin1');
const MAX_BODY = 1024 * 1024; // the collector's limit on one request

/**
 * A seeded source of event batches over `keys` Zipf(s)-distributed keys. Each key is its own
 * emitter (`k<rank>`, like one Durable Object per key) with seq counting up from 0, so ids never
 * repeat and the collector's per-emitter seq ranges stay one interval.
 * @param {{ keys: number, zipf: number, rid: number, seed: number }} o rid: share of events with a requestId
 */
export function eventSource(o) {
  const random = rng(o.seed);
  const keyOf = zipf(o.keys, o.zipf, random);
  // 256-entry tables make a weighted pick one array read.
  const pickTables = NAMESPACES.map((n) => {
    const pick = weighted(
      Object.keys(n.decisions).map((_, i) => i),
      Object.values(n.decisions),
      rng(o.seed + 1),
    );
    return Uint8Array.from({ length: 256 }, () => pick());
  });
  const heads = [];
  const tails = [];
  for (let k = 0; k < o.keys; k++) {
    const n = NAMESPACES[k % NAMESPACES.length];
    heads.push(ascii(`{"v":1,"id":"k${k}:`));
    tails.push(
      Object.keys(n.decisions).map((d) =>
        ascii(
          `,"ns":"${n.ns}","key":"${n.prefix}:${k}","pattern":"${n.pattern}","decision":"${d}","count":1`,
        ),
      ),
    );
  }
  // Small pools of numeric fields: realistic sizes and rollup work, no number formatting per event.
  const durations = Array.from({ length: 64 }, () => ascii(`,"durationMs":${(random() * 4).toFixed(3)}`));
  const values = Array.from({ length: 64 }, () => ascii(`,"value":${Math.floor(random() * 100)}`));
  const TS = ascii('","ts":');
  const RID = ascii(',"requestId":"r');
  const OPEN = ascii('{"events":[');
  const seq = new Float64Array(o.keys);
  const buf = Buffer.allocUnsafe(MAX_BODY);
  let off = 0;
  const put = (b) => {
    buf.set(b, off);
    off += b.length;
  };
  // A non-negative integer as decimal digits, without making a string.
  const uint = (n) => {
    let len = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) len++;
    off += len;
    for (let p = off - 1, x = n; p >= off - len; p--) {
      const q = Math.floor(x / 10);
      buf[p] = 48 + x - q * 10;
      x = q;
    }
  };

  /**
   * One request body of `size` events (a copy: safe to keep while the next is built), and the key
   * rank of each event. `ts` is every event's timestamp; `close` ends the body (`]}` normally).
   * @returns {{ body: Buffer, keys: Int32Array }}
   */
  function batch(size, ts = Date.now(), close = ']}') {
    const keys = new Int32Array(size);
    const tsBytes = ascii(String(ts));
    off = 0;
    put(OPEN);
    for (let i = 0; i < size; i++) {
      if (off > MAX_BODY - 1024) throw new RangeError('batch body over 1 MiB: use fewer events');
      const k = keyOf.next();
      keys[i] = k;
      const s = seq[k]++;
      const nsIndex = k % NAMESPACES.length;
      const r = random();
      if (i > 0) buf[off++] = 44; // ,
      put(heads[k]);
      uint(s);
      put(TS);
      put(tsBytes);
      // Independent bits of one draw: decision, duration, value.
      put(tails[k][pickTables[nsIndex][(r * 256) | 0]]);
      put(durations[(r * 16384) & 63]);
      if (NAMESPACES[nsIndex].value) put(values[(r * 1048576) & 63]);
      if (random() < o.rid) {
        put(RID);
        uint(k);
        buf[off++] = 45; // -
        uint(s);
        buf[off++] = 34; // "
      }
      buf[off++] = 125; // }
    }
    for (let i = 0; i < close.length; i++) buf[off++] = close.charCodeAt(i);
    return { body: Buffer.from(buf.subarray(0, off)), keys };
  }
  return { batch };
}
