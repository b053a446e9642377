export { Emitter, type EmitterOptions, type EmitterStats } from './emitter';
export { InstrumentedObject } from './object';
export { AlarmScheduler, type TimerHandler } from './scheduler';
