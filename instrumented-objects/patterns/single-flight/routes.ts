// HTTP routes for the single_flight pattern, mounted at /objects/single_flight.
import { Hono } from 'hono';

export const singleFlightRoutes = new Hono<{ Bindings: Env }>();
