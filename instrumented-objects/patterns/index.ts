// Every pattern object, its binding and its routes, in one table.
import type { Hono } from 'hono';
import { CounterObject, counterRoutes } from './counter';
import { IdempotencyObject, idempotencyRoutes } from './idempotency';
import { LockObject, lockRoutes } from './lock';
import { OrderingObject, orderingRoutes } from './ordering';
import { QueueObject, queueRoutes } from './queue';
import { RateLimitObject, rateLimitRoutes } from './rate-limit';
import { SingleFlightObject, singleFlightRoutes } from './single-flight';

export {
  CounterObject,
  IdempotencyObject,
  LockObject,
  OrderingObject,
  QueueObject,
  RateLimitObject,
  SingleFlightObject,
};

export const PATTERN_OBJECTS = {
  idempotency: { binding: 'IDEMPOTENCY', routes: idempotencyRoutes },
  ordering: { binding: 'ORDERING', routes: orderingRoutes },
  rate_limit: { binding: 'RATE_LIMIT', routes: rateLimitRoutes },
  queue: { binding: 'QUEUE', routes: queueRoutes },
  lock: { binding: 'LOCK', routes: lockRoutes },
  single_flight: { binding: 'SINGLE_FLIGHT', routes: singleFlightRoutes },
  counter: { binding: 'COUNTER', routes: counterRoutes },
} as const satisfies Record<string, { binding: keyof Env; routes: Hono<{ Bindings: Env }> }>;

export type PatternObjectName = keyof typeof PATTERN_OBJECTS;
