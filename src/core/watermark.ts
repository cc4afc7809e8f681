/**
 * The batch watermark: what the latest published batch run covers. Written by
 * the coordinator (compare-and-set, so it only moves forward), read by speed
 * actors (to drop segments) and serving nodes (to merge at it).
 */
import type { MetricDef } from "./catalog.js";

export interface PhaseTimings {
  /** Writing the barriers. */
  readonly barrierMs: number;
  /** Waiting for the archiver to flush through the barriers. */
  readonly archiverFlushMs: number;
  /** Recomputing the batch views. */
  readonly recomputeMs: number;
}

export interface Watermark {
  readonly run: number;
  /** cuts[p] = stream sequence of barrier `run` on partition p; events below it are batch. */
  readonly cuts: readonly number[];
  /** Version of the batch views to read (= run). */
  readonly viewVersion: number;
  /** Event-time range (epoch ms) of the covered events; null when none. */
  readonly coveredFromMs: number | null;
  readonly coveredToMs: number | null;
  /** Distinct events the batch views cover. */
  readonly eventsCovered: number;
  readonly startedAtMs: number;
  readonly publishedAtMs: number;
  /** Member id of the coordinator that ran it. */
  readonly coordinator: string;
  readonly timings: PhaseTimings;
  /** Metric name → definition fingerprint (core/catalog metricFingerprint) the batch views were computed with. */
  readonly metrics?: Readonly<Record<string, string>>;
  /** Metric name → the definition itself, so answers at this run use it even after the catalog changed (core/definitions). */
  readonly definitions?: Readonly<Record<string, MetricDef>>;
  /** Set when an operator rolled the watermark back to this run: the run it was at before. */
  readonly rolledBackFrom?: number;
  /** Leader epoch of the coordinator that wrote it (nats/leadership.ts); a lower one cannot overwrite it. */
  readonly epoch?: number;
}

/** Checks a decoded KV value; throws naming what is wrong (a corrupt watermark must not be half-read). */
export function parseWatermark(v: unknown): Watermark {
  const w = v as Partial<Watermark> | null;
  if (!w || typeof w.run !== "number" || !Array.isArray(w.cuts) || typeof w.viewVersion !== "number") {
    throw new TypeError(`watermark value is malformed: ${JSON.stringify(v)?.slice(0, 200)}`);
  }
  return w as Watermark;
}
