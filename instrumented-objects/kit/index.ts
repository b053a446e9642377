export { Emitter, type EmitterOptions, type EmitterStats } from './emitter';
export {
  boundedText,
  type JsonBodyOptions,
  jsonBody,
  requestNamespace,
  requestTarget,
  traceContext,
} from './http';
export { InstrumentedObject } from './object';
export { MAX_SHARD, objectFor, objectName, type Placement, parseObjectName } from './router';
export { AlarmScheduler, type TimerHandler } from './scheduler';
