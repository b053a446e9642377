export { LockObject } from './object';
export { lockRoutes } from './routes';
