/** Order statistics for benchmark samples. */

/**
 * The p-quantile (0 < p ≤ 1) by the nearest-rank method: the smallest sample with at least
 * p of the samples at or below it. Undefined for no samples.
 */
export function percentile(samples: readonly number[], p: number): number | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))];
}

export function median(samples: readonly number[]): number | undefined {
  return percentile(samples, 0.5);
}
