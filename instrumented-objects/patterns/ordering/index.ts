export { OrderingObject } from './object';
export { orderingRoutes } from './routes';
