export { RateLimitObject } from './object';
export { rateLimitOpsRoutes, rateLimitRoutes } from './routes';
