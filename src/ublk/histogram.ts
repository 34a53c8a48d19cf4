// Log-linear latency buckets in microseconds: exact below 8 us, then 8 linear steps per power of two.

/** Linear sub-buckets per power of two (relative bucket width at most 1/8). */
const SUB_BITS = 3;
const SUB = 1 << SUB_BITS;
/** Buckets: 0..7 us one each, then 8 per power of two from 2^3 to 2^30 (the last ends at 2^31 us, ~36 min). */
export const HIST_BUCKETS = SUB + (30 - SUB_BITS + 1) * SUB;

/** The bucket of a latency of `us` microseconds (fractions and negatives round down to 0). */
export function bucketOf(us: number): number {
  const v = us >= 0x7fffffff ? 0x7fffffff : us | 0;
  if (v < SUB) return v < 0 ? 0 : v;
  const k = 31 - Math.clz32(v);
  return ((k - SUB_BITS + 1) << SUB_BITS) + ((v >>> (k - SUB_BITS)) & (SUB - 1));
}

/** The lowest latency in bucket `b`, in microseconds. */
export function bucketLow(b: number): number {
  if (b < SUB) return b;
  const k = (b >>> SUB_BITS) + SUB_BITS - 1;
  return (SUB + (b & (SUB - 1))) * 2 ** (k - SUB_BITS);
}

/** The first latency past bucket `b`, in microseconds. */
export function bucketHigh(b: number): number {
  return b < SUB ? b + 1 : bucketLow(b) + 2 ** ((b >>> SUB_BITS) - 1);
}

/**
 * The q-quantile (0 < q <= 1) of the counts in `h[at .. at + HIST_BUCKETS)`, as the upper edge of
 * the bucket it falls in, never above `max`; 0 when the histogram is empty.
 */
export function quantile(h: ArrayLike<number>, at: number, q: number, max: number): number {
  let total = 0;
  for (let b = 0; b < HIST_BUCKETS; b++) total += h[at + b];
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let b = 0; b < HIST_BUCKETS; b++) {
    seen += h[at + b];
    if (seen >= rank) return Math.min(bucketHigh(b), max);
  }
  return max;
}
