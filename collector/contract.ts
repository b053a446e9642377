// The decision event, contract v1 (DESIGN §3). Producers import the types; the collector validates
// every event against `decisionEventSchema` (or the hand-written fast path in validate.ts, which a
// property test keeps in agreement with this schema).
import { z } from 'zod';

export const CONTRACT_VERSION = 1;

export const LIMITS = {
  keyBytes: 512,
  nsBytes: 128,
  idBytes: 256,
  requestIdBytes: 256,
  traceIdBytes: 64,
  batchEvents: 1000,
  batchBytes: 1024 * 1024,
} as const;

/**
 * Every decision each pattern can make. `duplicate` is a retry answered from the object's own
 * record (what dedupe-hit ratios count); `telemetry` is Keywarden's own: dropped events.
 */
export const DECISIONS = {
  idempotency: ['applied', 'duplicate', 'in_flight', 'conflict', 'failed', 'taken_over', 'lease_lost'],
  ordering: ['applied', 'buffered', 'refused', 'gap', 'duplicate'],
  rate_limit: ['allowed', 'limited', 'duplicate'],
  queue: ['enqueued', 'delivered', 'acked', 'retried', 'dead_lettered', 'duplicate', 'refused'],
  lock: ['acquired', 'waited', 'released', 'expired', 'fenced', 'timed_out', 'written', 'duplicate'],
  debounce: ['scheduled', 'coalesced', 'fired'],
  single_flight: ['led', 'joined', 'failed'],
  counter: ['incremented', 'duplicate', 'conflict'],
  leader: ['elected', 'renewed', 'lost', 'refused'],
  saga: ['started', 'step_completed', 'compensated', 'completed', 'failed'],
  backpressure: ['admitted', 'queued', 'shed'],
  webhook: ['accepted', 'duplicate', 'rejected'],
  room: ['joined', 'left', 'broadcast'],
  telemetry: ['dropped'],
} as const satisfies Record<string, readonly string[]>;

export type Pattern = keyof typeof DECISIONS;
export type Decision<P extends Pattern = Pattern> = (typeof DECISIONS)[P][number];
export const PATTERNS = Object.keys(DECISIONS) as Pattern[];

/** `${emitterId}:${seq}`: the emitter id is any non-empty text, seq a non-negative safe integer. */
export const EVENT_ID = /^(.+):(0|[1-9][0-9]{0,15})$/s;

const encoder = new TextEncoder();
export function utf8Bytes(s: string): number {
  // Fast path: every UTF-16 unit is at most 3 UTF-8 bytes.
  return s.length * 3 <= 256 ? utf8Short(s) : encoder.encode(s).length;
}
function utf8Short(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

const boundedText = (max: number) =>
  z
    .string()
    .min(1)
    .refine((s) => utf8Bytes(s) <= max, { message: `must be at most ${max} UTF-8 bytes` });

const finite = z.number().refine(Number.isFinite, { message: 'must be a finite number' });

export const decisionEventSchema = z
  .strictObject({
    v: z.literal(1),
    id: boundedText(LIMITS.idBytes).refine((s) => isSafeSeq(s), {
      message: 'must be "<emitterId>:<seq>" with seq a non-negative integer',
    }),
    ts: z.number().int().nonnegative().max(8.64e15),
    ns: boundedText(LIMITS.nsBytes),
    key: boundedText(LIMITS.keyBytes),
    pattern: z.enum(PATTERNS as [Pattern, ...Pattern[]]),
    decision: z.string(),
    count: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    value: finite.optional(),
    min: finite.optional(),
    max: finite.optional(),
    durationMs: finite.refine((n) => n >= 0, { message: 'must be ≥ 0' }).optional(),
    requestId: boundedText(LIMITS.requestIdBytes).optional(),
    traceId: boundedText(LIMITS.traceIdBytes).optional(),
    spanId: boundedText(LIMITS.traceIdBytes).optional(),
    shard: z.number().int().nonnegative().max(65535).optional(),
    epoch: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
  })
  .superRefine((e, ctx) => {
    const allowed = DECISIONS[e.pattern] as readonly string[];
    if (!allowed.includes(e.decision)) {
      ctx.addIssue({
        code: 'custom',
        path: ['decision'],
        message: `must be one of ${allowed.join(', ')} for pattern ${e.pattern}`,
      });
    }
  });

function isSafeSeq(id: string): boolean {
  const m = EVENT_ID.exec(id);
  return m !== null && Number.isSafeInteger(Number(m[2]));
}

export type DecisionEvent = z.infer<typeof decisionEventSchema> & { pattern: Pattern };

/** What a producer hands the emitter: the emitter stamps v, id, ts and count. */
export type DecisionInput<P extends Pattern = Pattern> = {
  pattern: P;
  decision: Decision<P>;
  ns: string;
  key: string;
  count?: number;
  value?: number;
  durationMs?: number;
  requestId?: string;
  traceId?: string;
  spanId?: string;
  shard?: number;
  epoch?: number;
};

/** Why one event of a batch was refused; `index` is its position in the batch. */
export type Rejection = { index: number; code: string; message: string };

export type IngestResult = { accepted: number; duplicates: number; rejected: Rejection[] };

/** The collector's ingest side as producers see it (the RPC type of DESIGN §4). */
export interface EventSink {
  ingest(events: readonly DecisionEvent[]): Promise<IngestResult>;
}

/**
 * Events with a requestId or traceId are kept whole on their way through the collector: each has
 * its own Analytics Engine point (AE can then show a request's trail) instead of a rollup row's.
 */
export function hasOwnPoint(e: DecisionEvent): boolean {
  return e.requestId !== undefined || e.traceId !== undefined;
}

/**
 * `${emitterId}:${seq}` split at its last colon, as EVENT_ID reads it (the seq has no colon), or
 * null. By hand: this runs once per ingested event.
 */
export function parseEventId(id: string): { emitter: string; seq: number } | null {
  const colon = id.lastIndexOf(':');
  const digits = id.length - colon - 1;
  if (colon < 1 || digits < 1 || digits > 16) return null;
  if (digits > 1 && id.charCodeAt(colon + 1) === 48) return null; // no leading zero
  let seq = 0;
  for (let i = colon + 1; i < id.length; i++) {
    const d = id.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return null;
    seq = seq * 10 + d;
  }
  return Number.isSafeInteger(seq) ? { emitter: id.slice(0, colon), seq } : null;
}
