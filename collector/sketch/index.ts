// The sketch's face: bounded, mergeable heavy hitters and the skew figures built on them.
export { type Estimate, type HeavyHitter, HeavyHitters } from './sketch';
export { type Skew, skew } from './skew';
