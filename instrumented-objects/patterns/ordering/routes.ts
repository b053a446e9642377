// HTTP routes for the ordering pattern, mounted at /objects/ordering.
import { Hono } from 'hono';

export const orderingRoutes = new Hono<{ Bindings: Env }>();
