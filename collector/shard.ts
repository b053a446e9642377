import { DurableObject } from 'cloudflare:workers';
export class CollectorShard extends DurableObject<Env> {}
