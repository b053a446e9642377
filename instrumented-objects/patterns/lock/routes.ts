// HTTP routes for the lock pattern, mounted at /objects/lock.
import { Hono } from 'hono';

export const lockRoutes = new Hono<{ Bindings: Env }>();
