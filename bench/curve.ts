/**
 * Curves: how a measurement grows with a size (rows, keys, partitions, load).
 * A curve holds one or more series (the product, a raw baseline), each a
 * point per size with the median and range over the repetitions; the fits
 * below read a curve's shape. Pure functions over plain numbers.
 */
import { median } from "./stats.js";

/** Which line a series is in a chart: the product or a raw baseline. */
export const SeriesRole = { product: "product", baseline: "baseline" } as const;
export type SeriesRole = (typeof SeriesRole)[keyof typeof SeriesRole];

/** One size of a series: the median of the repetitions, and their range. */
export interface CurvePoint {
  readonly x: number;
  /** Median over the repetitions. */
  readonly y: number;
  readonly min: number;
  readonly max: number;
  /** Every repetition, in the order measured. */
  readonly samples: readonly number[];
}

/** One line of a chart. */
export interface CurveSeries {
  readonly label: string;
  readonly role: SeriesRole;
  readonly points: readonly CurvePoint[];
}

/** A chart panel: a measurement against a size. */
export interface Curve {
  readonly figure: string;
  readonly title: string;
  /** What x counts, e.g. "master rows". */
  readonly xLabel: string;
  /** Unit of y, e.g. "s", "ms", "B", "events/s". */
  readonly yUnit: string;
  readonly series: readonly CurveSeries[];
}

/** A point from the repetitions measured at size `x`. @throws on no samples. */
export function curvePoint(x: number, samples: readonly number[]): CurvePoint {
  return { x, y: median(samples), min: Math.min(...samples), max: Math.max(...samples), samples: [...samples] };
}

/** y = intercept + slope·x. */
export interface Line {
  readonly slope: number;
  readonly intercept: number;
}

/**
 * Least-squares line through the points.
 * @throws Error with fewer than two distinct x values (no slope is defined).
 */
export function fitLine(points: readonly { readonly x: number; readonly y: number }[]): Line {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  if (n < 2 || sxx === 0) throw new Error(`a line needs two distinct x values, got ${n} point(s) at x = [${points.map((p) => p.x).join(", ")}]`);
  const slope = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0) / sxx;
  return { slope, intercept: my - slope * mx };
}

/**
 * The exponent k of y ∝ x^k: the slope of the least-squares line through
 * (log x, log y). 1 is linear growth, 0 flat, 2 quadratic.
 * @throws Error when an x or y is not positive, or as fitLine does.
 */
export function growthExponent(points: readonly { readonly x: number; readonly y: number }[]): number {
  const bad = points.find((p) => !(p.x > 0 && p.y > 0));
  if (bad) throw new Error(`a growth exponent needs positive x and y, got (${bad.x}, ${bad.y})`);
  return fitLine(points.map((p) => ({ x: Math.log(p.x), y: Math.log(p.y) }))).slope;
}

/**
 * Per repetition r, the slope of y against x through the r-th sample of every
 * point: one slope per repetition, so a slope has a median and a spread.
 * @throws Error when the points do not all have the same number of samples.
 */
export function slopesPerRepetition(points: readonly CurvePoint[]): number[] {
  const reps = points[0]?.samples.length ?? 0;
  if (points.some((p) => p.samples.length !== reps)) throw new Error(`points have different repetition counts: [${points.map((p) => p.samples.length).join(", ")}]`);
  return Array.from({ length: reps }, (_, r) => fitLine(points.map((p) => ({ x: p.x, y: p.samples[r]! }))).slope);
}
