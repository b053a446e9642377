// HTTP routes for the queue pattern, mounted at /objects/queue.
import { Hono } from 'hono';

export const queueRoutes = new Hono<{ Bindings: Env }>();
