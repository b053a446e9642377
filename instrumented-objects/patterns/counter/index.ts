export { CounterObject } from './object';
export { counterRoutes } from './routes';
