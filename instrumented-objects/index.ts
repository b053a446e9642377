// The objects' face: pattern objects and the instrumentation kit (DESIGN §1, §4).
export * from './kit';
