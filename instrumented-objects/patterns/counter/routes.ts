// HTTP routes for the counter pattern, mounted at /objects/counter.
import { Hono } from 'hono';

export const counterRoutes = new Hono<{ Bindings: Env }>();
