/** The catalog's types: what a parsed, validated catalog holds. */
import { createHash } from "node:crypto";
import type { Filter } from "./filter.js";

export const FieldTypes = {
  string: "string",
  int: "int",
  float: "float",
  bool: "bool",
  timestamp: "timestamp",
} as const;
export type FieldType = (typeof FieldTypes)[keyof typeof FieldTypes];

export interface FieldDef {
  readonly type: FieldType;
  /** Optional fields may be missing or null in an event ("string?" in the catalog). */
  readonly optional: boolean;
}

export interface SourceDef {
  readonly name: string;
  /** Field name → definition; the id, time and partition-key fields are among them. */
  readonly fields: Readonly<Record<string, FieldDef>>;
  readonly idField: string;
  readonly timeField: string;
  readonly partitionKey: string;
}

export const AggregateKinds = {
  count: "count",
  sum: "sum",
  min: "min",
  max: "max",
  avg: "avg",
  distinct: "distinct",
  quantiles: "quantiles",
} as const;
export type AggregateKind = (typeof AggregateKinds)[keyof typeof AggregateKinds];

/** Field types each aggregate accepts. */
export const AGGREGATE_FIELD_TYPES: Readonly<Record<Exclude<AggregateKind, "count">, readonly FieldType[]>> = {
  sum: ["int", "float"],
  avg: ["int", "float"],
  min: ["int", "float", "timestamp"],
  max: ["int", "float", "timestamp"],
  distinct: ["string", "int", "bool"],
  quantiles: ["int", "float"],
};

export interface AggregateDef {
  /** Name within the metric, e.g. "views". */
  readonly name: string;
  readonly kind: AggregateKind;
  /** The field aggregated; null for count. */
  readonly field: string | null;
  /** Its type; null for count. */
  readonly fieldType: FieldType | null;
}

export interface MetricDef {
  readonly name: string;
  readonly source: string;
  /** Fields whose values form the metric key, in order; empty for a global metric. */
  readonly groupBy: readonly string[];
  /** Tumbling window size in ms. */
  readonly windowMs: number;
  /** The window as written in the catalog, e.g. "1m". */
  readonly window: string;
  /** Events that count; null for all. */
  readonly filter: Filter | null;
  /** At least one; the first is the default of queries. */
  readonly aggregates: readonly AggregateDef[];
  readonly description: string;
}

export interface Catalog {
  readonly sources: ReadonlyMap<string, SourceDef>;
  readonly metrics: ReadonlyMap<string, MetricDef>;
}

/** The metrics computed from one source. */
export function metricsOf(catalog: Catalog, source: string): MetricDef[] {
  return [...catalog.metrics.values()].filter((m) => m.source === source);
}

/** Start of the tumbling window holding `tsMs`. */
export function windowStart(tsMs: number, windowMs: number): number {
  return Math.floor(tsMs / windowMs) * windowMs;
}

/** The aggregate `name` of `metric` (the first one when name is empty), or undefined. */
export function aggregateOf(metric: MetricDef, name: string): AggregateDef | undefined {
  return name ? metric.aggregates.find((a) => a.name === name) : metric.aggregates[0];
}

/** A short fingerprint of the metric definitions: equal catalogs, equal fingerprints. */
export function catalogFingerprint(catalog: Catalog): string {
  const canonical = JSON.stringify({
    sources: [...catalog.sources.values()].sort((a, b) => (a.name < b.name ? -1 : 1)),
    metrics: [...catalog.metrics.values()].sort((a, b) => (a.name < b.name ? -1 : 1)),
  });
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}

// Definitions are immutable once parsed; serving checks the fingerprint on every query
// (a SHA-256 of the definition's JSON: a quarter of a 1-key query's CPU before this cache).
const fingerprints = new WeakMap<MetricDef, string>();

/** A short fingerprint of one metric's definition (aggregated field types included). */
export function metricFingerprint(metric: MetricDef): string {
  let fp = fingerprints.get(metric);
  if (fp === undefined) {
    // The description does not change what is computed.
    const { description: _d, ...definition } = metric;
    fp = createHash("sha256").update(JSON.stringify(definition)).digest("hex").slice(0, 12);
    fingerprints.set(metric, fp);
  }
  return fp;
}
