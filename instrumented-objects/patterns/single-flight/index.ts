export { SingleFlightObject } from './object';
export { singleFlightRoutes } from './routes';
