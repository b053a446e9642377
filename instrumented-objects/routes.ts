// Mounts every pattern's HTTP routes under /objects/<pattern>/…; application-facing, so they need
// the API token (KEYWARDEN_API_TOKEN).
import { Hono } from 'hono';
import { requireToken } from '../collector';
import { PATTERN_OBJECTS } from './patterns';

export const objectRoutes = new Hono<{ Bindings: Env }>();

objectRoutes.use('/objects/*', requireToken('KEYWARDEN_API_TOKEN'));
for (const [pattern, { routes }] of Object.entries(PATTERN_OBJECTS)) {
  objectRoutes.route(`/objects/${pattern}`, routes);
}
