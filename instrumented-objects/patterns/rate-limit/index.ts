export { RateLimitObject } from './object';
export { rateLimitRoutes } from './routes';
