// Skew figures for the query layer (DESIGN §5): how much of the traffic the hottest key takes, and
// how uneven the reported keys are among themselves.

export interface Skew {
  /** Largest count over `total`: the hottest key's share of all traffic, reported or not. */
  top1Share: number;
  /** Largest count over the mean of `counts` (1 when all reported keys are equal). */
  maxOverMean: number;
  /** Population standard deviation of `counts` over their mean (0 when all are equal). */
  cv: number;
}

/**
 * `counts` are the reported keys' counts (e.g. a sketch's top-k) and `total` all traffic in the
 * window. The mean is over the reported keys only, `sum(counts) / counts.length`, not over every key
 * that occurred: a sketch cannot know how many distinct keys its tail holds, and a mean over a
 * million one-off keys would make every window look infinitely skewed. Empty input gives zeros.
 */
export function skew(counts: readonly number[], total: number): Skew {
  if (counts.length === 0) return { top1Share: 0, maxOverMean: 0, cv: 0 };
  let max = 0;
  let sum = 0;
  for (const c of counts) {
    if (c > max) max = c;
    sum += c;
  }
  const mean = sum / counts.length;
  let squares = 0;
  for (const c of counts) squares += (c - mean) * (c - mean);
  const sd = Math.sqrt(squares / counts.length);
  return {
    top1Share: total > 0 ? max / total : 0,
    maxOverMean: mean > 0 ? max / mean : 0,
    cv: mean > 0 ? sd / mean : 0,
  };
}
