// Mounts every pattern's HTTP routes under /objects/<pattern>/…; application-facing, so they need
// the API token (KEYWARDEN_API_TOKEN). Operator routes live under /ops/objects and need the operator
// token (KEYWARDEN_OPERATOR_TOKEN): those over any object (telemetry), and the patterns' own that
// change how an object behaves for everyone (rate limits, a queue's retry policy and redrives).
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { ApiError, requireToken } from '../collector';
import { type InstrumentedObject, jsonBody, objectFor, requestTarget } from './kit';
import { PATTERN_OBJECTS, type PatternObjectName } from './patterns';
import { queueOpsRoutes } from './patterns/queue';
import { rateLimitOpsRoutes } from './patterns/rate-limit';

export const objectRoutes = new Hono<{ Bindings: Env }>();

objectRoutes.use('/objects/*', requireToken('KEYWARDEN_API_TOKEN'));
for (const [pattern, { routes }] of Object.entries(PATTERN_OBJECTS)) {
  objectRoutes.route(`/objects/${pattern}`, routes);
}

objectRoutes.use('/ops/objects/*', requireToken('KEYWARDEN_OPERATOR_TOKEN'));
objectRoutes.route('/ops/objects/rate_limit', rateLimitOpsRoutes);
objectRoutes.route('/ops/objects/queue', queueOpsRoutes);

function target(c: Context<{ Bindings: Env }>) {
  const pattern = c.req.param('pattern') ?? '';
  if (!Object.hasOwn(PATTERN_OBJECTS, pattern)) {
    throw new ApiError(
      404,
      'unknown_pattern',
      `pattern must be one of ${Object.keys(PATTERN_OBJECTS).join(', ')}`,
    );
  }
  const name = pattern as PatternObjectName;
  const { ns, key } = requestTarget(c, name, { code: 'invalid_key' });
  const binding = PATTERN_OBJECTS[name].binding;
  return objectFor(c.env[binding] as unknown as DurableObjectNamespace<InstrumentedObject>, ns, key);
}

/** One object's telemetry: what it buffered, sent, parked in its outbox, and dropped. */
objectRoutes.get('/ops/objects/:pattern/:key/telemetry', async (c) =>
  c.json(await target(c).telemetryStats()),
);

const telemetrySwitch = z.object({ enabled: z.boolean() });

/**
 * Turns one object's telemetry on or off (its answers never change). The overhead benchmark
 * compares the same build with the emitter on and off this way.
 */
objectRoutes.put('/ops/objects/:pattern/:key/telemetry', async (c) => {
  const body = await jsonBody(c, telemetrySwitch, {
    maxBytes: 1_024,
    expected: '{"enabled": true|false}',
    invalid: { code: 'invalid_body', message: 'send {"enabled": true|false}' },
  });
  const stub = target(c);
  await stub.setTelemetry(body.enabled);
  return c.json(await stub.telemetryStats());
});
