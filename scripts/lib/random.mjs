// Seeded randomness for benchmarks: the same seed gives the same keys, so two runs (or two commits)
// are compared on the same workload, and a failure can be replayed.

/** sfc32: small, fast, and good enough for load shapes (not for anything secret). */
export function rng(seed = 1) {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  // The first outputs of a fresh state are correlated with the seed: discard them.
  for (let i = 0; i < 15; i++) next();
  return next;
}

/**
 * Zipf over ranks 0..n-1 with exponent s: P(rank k) ∝ 1 / (k + 1)^s, so rank 0 is the hottest key.
 * Sampling is a binary search in the precomputed CDF (log2 n steps, no allocation), which keeps a
 * load generator cheap next to the server it shares the cores with.
 * @param {number} n number of keys
 * @param {number} s exponent (1.1 is a common "hot keys" shape; 0 is uniform)
 * @param {() => number} random uniform in [0, 1)
 * @returns {{ next: () => number, p: (k: number) => number }}
 */
export function zipf(n, s, random) {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) {
    sum += 1 / (k + 1) ** s;
    cdf[k] = sum;
  }
  for (let k = 0; k < n; k++) cdf[k] /= sum;
  cdf[n - 1] = 1; // no rounding gap past the last rank
  return {
    next() {
      const u = random();
      let lo = 0;
      let hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cdf[mid] > u) hi = mid;
        else lo = mid + 1;
      }
      return lo;
    },
    /** probability of rank k */
    p: (k) => (k === 0 ? cdf[0] : cdf[k] - cdf[k - 1]),
  };
}

/** Picks from `items` by `weights` (any positive numbers); returns a sampler of items. */
export function weighted(items, weights, random) {
  const total = weights.reduce((a, b) => a + b, 0);
  const cum = [];
  let acc = 0;
  for (const w of weights) {
    acc += w / total;
    cum.push(acc);
  }
  cum[cum.length - 1] = 1;
  return () => {
    const u = random();
    let i = 0;
    while (cum[i] <= u) i++;
    return items[i];
  };
}
