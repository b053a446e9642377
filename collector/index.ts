export { CollectorShard } from './shard';
