// HTTP routes for the idempotency pattern, mounted at /objects/idempotency.
import { Hono } from 'hono';

export const idempotencyRoutes = new Hono<{ Bindings: Env }>();
