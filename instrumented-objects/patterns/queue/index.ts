export { QueueObject } from './object';
export { queueRoutes } from './routes';
