// Mounts every pattern's HTTP routes under /objects/<pattern>/…; application-facing, so they need
// the API token (KEYWARDEN_API_TOKEN). Operator routes over any object live under /ops/objects.
import { type Context, Hono } from 'hono';
import { ApiError, LIMITS, requireToken, textParam } from '../collector';
import { type InstrumentedObject, objectFor } from './kit';
import { PATTERN_OBJECTS, type PatternObjectName } from './patterns';

export const objectRoutes = new Hono<{ Bindings: Env }>();

objectRoutes.use('/objects/*', requireToken('KEYWARDEN_API_TOKEN'));
for (const [pattern, { routes }] of Object.entries(PATTERN_OBJECTS)) {
  objectRoutes.route(`/objects/${pattern}`, routes);
}

objectRoutes.use('/ops/objects/*', requireToken('KEYWARDEN_OPERATOR_TOKEN'));

function target(c: Context<{ Bindings: Env }>) {
  const pattern = c.req.param('pattern') ?? '';
  if (!(pattern in PATTERN_OBJECTS)) {
    throw new ApiError(
      404,
      'unknown_pattern',
      `pattern must be one of ${Object.keys(PATTERN_OBJECTS).join(', ')}`,
    );
  }
  const key = c.req.param('key') ?? '';
  if (key === '' || new TextEncoder().encode(key).byteLength > LIMITS.keyBytes) {
    throw new ApiError(400, 'invalid_key', `key must be 1 to ${LIMITS.keyBytes} bytes`);
  }
  const name = pattern as PatternObjectName;
  const ns = textParam(c, 'ns', { maxBytes: LIMITS.nsBytes }) ?? `demo.${name}`;
  const binding = PATTERN_OBJECTS[name].binding;
  return objectFor(c.env[binding] as unknown as DurableObjectNamespace<InstrumentedObject>, ns, key);
}

/** One object's telemetry: what it buffered, sent, parked in its outbox, and dropped. */
objectRoutes.get('/ops/objects/:pattern/:key/telemetry', async (c) =>
  c.json(await target(c).telemetryStats()),
);

/**
 * Turns one object's telemetry on or off (its answers never change). The overhead benchmark
 * compares the same build with the emitter on and off this way.
 */
objectRoutes.put('/ops/objects/:pattern/:key/telemetry', async (c) => {
  const body = (await c.req.json().catch(() => null)) as { enabled?: unknown } | null;
  if (body === null || typeof body.enabled !== 'boolean') {
    throw new ApiError(400, 'invalid_body', 'send {"enabled": true|false}');
  }
  const stub = target(c);
  await stub.setTelemetry(body.enabled);
  return c.json(await stub.telemetryStats());
});
