/**
 * One curve family of the scale figure ("how cost grows"): the rows it adds
 * to the table, its curves, what it keeps in the JSON and its notes.
 */
import type { BenchContext } from "../../context.js";
import { curvePoint, type Curve, type CurveSeries, type SeriesRole } from "../../curve.js";
import type { Row } from "../../figure.js";

/** What one part of the scale figure measured. */
export interface ScalePart {
  readonly rows: Row[];
  readonly curves: Curve[];
  readonly details: unknown;
  readonly notes: string[];
  /** What failed while the rest of the part was still measured. */
  readonly failures?: string[];
}

/** A part of the scale figure; `state` carries what a later part reads from an earlier one. */
export type ScalePartRun = (ctx: BenchContext, state: ScaleState) => Promise<ScalePart>;

/** Passed from part to part. */
export interface ScaleState {
  /** Median end-to-end ingest rate at the default partitions and two speed nodes (events/s); null until measured. */
  maxIngestPerS: number | null;
}

/** A series from repetitions measured at each x (`samples[i]` belongs to `xs[i]`). */
export function series(label: string, role: SeriesRole, xs: readonly number[], samples: readonly (readonly number[])[]): CurveSeries {
  return { label, role, points: xs.map((x, i) => curvePoint(x, samples[i]!)) };
}
