// The objects' face: pattern objects, their routes, and the instrumentation kit (DESIGN §1, §4).

export { PAY_NS, payDemoRoutes } from './demo';
export * from './kit';
export { type AuthoritativeAnswer, authoritativeLookup, MAX_LOOKUP_OBJECTS, type TrailRef } from './lookup';
export * from './patterns';
export { objectRoutes } from './routes';
