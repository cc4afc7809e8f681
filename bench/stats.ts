/**
 * Statistics of repeated measurements: the median (robust on a noisy machine),
 * the spread (max − min as a share of the median) and percentiles of latency
 * samples. Pure functions over plain numbers.
 */

/** A set of repetitions of one measurement, reduced. */
export interface Summary {
  /** Median of the repetitions. */
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** (max − min) / median, in percent; 0 for a single sample. */
  readonly spreadPct: number;
  /** Every repetition, in the order measured. */
  readonly samples: readonly number[];
}

function sorted(xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

/** Median of `xs` (mean of the two middle values for an even count). @throws on an empty list. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error("median of no samples");
  const s = sorted(xs);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentile `p` (0–100) of `xs`. @throws on an empty list. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) throw new Error("percentile of no samples");
  const s = sorted(xs);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))]!;
}

/** Reduces repetitions to their median and spread. @throws on an empty list. */
export function summarize(samples: readonly number[]): Summary {
  const m = median(samples);
  const min = Math.min(...samples);
  const max = Math.max(...samples);
  return { median: m, min, max, spreadPct: m === 0 ? 0 : ((max - min) / Math.abs(m)) * 100, samples: [...samples] };
}

/** Latency percentiles of one repetition, in the samples' unit. */
export interface Percentiles {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly count: number;
}

/** p50, p99 and max of one repetition's samples. @throws on an empty list. */
export function percentiles(xs: readonly number[]): Percentiles {
  return { p50: percentile(xs, 50), p99: percentile(xs, 99), max: Math.max(...xs), count: xs.length };
}
