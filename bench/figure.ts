/**
 * What a figure produces: rows that set a product measurement next to a raw
 * baseline measured in the same run, and the ratio between them. A ratio is
 * always oriented so that higher is better for the product: product/baseline
 * for throughputs, baseline/product for latencies and durations. 1.0 means the
 * product matches the raw parts; 0.5 means it takes twice as long.
 */
import type { BenchContext } from "./context.js";
import type { Curve } from "./curve.js";
import { summarize, type Summary } from "./stats.js";

/** Which direction of a measurement is better. */
export const Better = { higher: "higher", lower: "lower" } as const;
export type Better = (typeof Better)[keyof typeof Better];

/** A target from the issue, checked and shown, never asserted. */
export type Goal =
  | { readonly kind: "ratio_at_least"; readonly value: number }
  | { readonly kind: "product_at_most"; readonly value: number }
  /** Met when every one of `goals` is (an issue's goal with a bound and a ratio). */
  | { readonly kind: "all_of"; readonly goals: readonly Goal[] };

/** One line of the results table. */
export interface Row {
  /** Figure name (ingest, freshness, ...). */
  readonly figure: string;
  /** What was measured, e.g. "end to end vs protocol ceiling". */
  readonly label: string;
  readonly unit: string;
  readonly better: Better;
  readonly product: Summary;
  readonly baseline: { readonly label: string; readonly summary: Summary } | null;
  /** Oriented ratio of the medians (higher is better); null without a baseline. */
  readonly ratio: number | null;
  readonly goal: (Goal & { readonly met: boolean; readonly text: string }) | null;
}

/** What a figure returns. */
export interface FigureResult {
  readonly name: string;
  readonly rows: Row[];
  /** Everything else worth keeping: per-phase timings, sub-measurements, sizes. */
  readonly details: Record<string, unknown>;
  /** How the figure was measured, in words (printed under the table). */
  readonly notes: string[];
  /** How measurements grow with a size, charted next to the JSON; absent: none. */
  readonly curves?: readonly Curve[];
  /** Parts of the figure that failed while the rest was measured (a failed figure throws instead). */
  readonly failures?: readonly string[];
}

/** A figure: one thing the bench measures, with its baselines. */
export interface Figure {
  readonly name: string;
  /** One line for --help. */
  readonly summary: string;
  run(ctx: BenchContext): Promise<FigureResult>;
}

/** The raw repetitions a row is built from. */
export interface RowInput {
  figure: string;
  label: string;
  unit: string;
  better: Better;
  product: readonly number[];
  baseline?: { label: string; samples: readonly number[] };
  goal?: Goal;
}

function goalText(g: Goal, unit: string): string {
  switch (g.kind) {
    case "ratio_at_least":
      return `ratio >= ${Number(g.value.toFixed(2))}`;
    case "product_at_most":
      return `<= ${g.value} ${unit}`;
    case "all_of":
      return g.goals.map((x) => goalText(x, unit)).join(" and ");
  }
}

function goalMet(g: Goal, product: Summary, ratio: number | null): boolean {
  switch (g.kind) {
    case "ratio_at_least":
      return ratio !== null && ratio >= g.value;
    case "product_at_most":
      return product.median <= g.value;
    case "all_of":
      return g.goals.every((x) => goalMet(x, product, ratio));
  }
}

/** Builds a row from raw repetitions: summaries, the oriented ratio and the goal check. */
export function row(input: RowInput): Row {
  const product = summarize(input.product);
  const baseline = input.baseline ? { label: input.baseline.label, summary: summarize(input.baseline.samples) } : null;
  let ratio: number | null = null;
  if (baseline && baseline.summary.median !== 0 && product.median !== 0) {
    ratio = input.better === Better.higher ? product.median / baseline.summary.median : baseline.summary.median / product.median;
  }
  let goal: Row["goal"] = null;
  if (input.goal) {
    const g = input.goal;
    goal = { ...g, met: goalMet(g, product, ratio), text: goalText(g, input.unit) };
  }
  return { figure: input.figure, label: input.label, unit: input.unit, better: input.better, product, baseline, ratio, goal };
}
