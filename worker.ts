// The one Worker: mounts every part's routes and exports every Durable Object class.
import { Hono } from 'hono';
import { ApiError, CollectorShard, createCollectorRoutes, errorBody } from './collector';
import {
  authoritativeLookup,
  CounterObject,
  IdempotencyObject,
  LockObject,
  OrderingObject,
  objectRoutes,
  payDemoRoutes,
  QueueObject,
  RateLimitObject,
  SingleFlightObject,
} from './instrumented-objects';

export {
  CollectorShard,
  CounterObject,
  IdempotencyObject,
  LockObject,
  OrderingObject,
  QueueObject,
  RateLimitObject,
  SingleFlightObject,
};

const app = new Hono<{ Bindings: Env }>();

app.route('/', createCollectorRoutes({ authoritativeLookup }));
app.route('/', objectRoutes);
app.route('/', payDemoRoutes);

app.notFound((c) =>
  c.json(errorBody('not_found', `no route for ${c.req.method} ${new URL(c.req.url).pathname}`), 404),
);

app.onError((err, c) => {
  if (err instanceof ApiError) return c.json(errorBody(err.code, err.message), err.status);
  // A 5xx is our bug: log it with the request's trace context so it can be found.
  const traceparent = c.req.header('traceparent') ?? c.req.header('cf-ray') ?? 'none';
  console.error(`keywarden: unhandled error on ${c.req.method} ${c.req.path} trace=${traceparent}`, err);
  return c.json(errorBody('internal', 'an internal error occurred; it has been logged'), 500);
});

export default {
  fetch: app.fetch,
  async scheduled(_controller, _env, _ctx) {},
} satisfies ExportedHandler<Env>;
