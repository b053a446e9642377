// Test entry: the real Worker plus a probe object used to exercise the instrumentation kit.
export * from '../worker';
export { default } from '../worker';

import { DurableObject } from 'cloudflare:workers';
export class KitProbe extends DurableObject<Env> {}
