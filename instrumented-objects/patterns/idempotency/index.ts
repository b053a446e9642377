export { IdempotencyObject } from './object';
export { idempotencyRoutes } from './routes';
