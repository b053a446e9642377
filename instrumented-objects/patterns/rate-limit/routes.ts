// HTTP routes for the rate_limit pattern, mounted at /objects/rate_limit.
import { Hono } from 'hono';

export const rateLimitRoutes = new Hono<{ Bindings: Env }>();
