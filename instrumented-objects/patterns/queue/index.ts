export { QueueObject } from './object';
export { queueOpsRoutes, queueRoutes } from './routes';
