/**
 * Catalog → ClickHouse SQL for the batch layer. Pure: each function returns a
 * query text whose values travel as server-side parameters.
 *
 * A batch run N covers, per partition p, the events with stream sequence below
 * cut[p], each id once at its first position (the lowest sequence). The window
 * arithmetic is the same integer division the speed layer uses
 * (core/catalog.ts windowStart), so both layers put an event in the same window.
 */
import type { MetricDef, SourceDef } from "../core/catalog.js";
import { ident, masterTable, viewTable } from "../ch/schema.js";

/** Parameters every recompute query takes: {run:UInt64}, {cuts:Array(UInt64)} (index = partition + 1). */
export interface RecomputeParams {
  run: number;
  cuts: number[];
}

/** The deduplicated events of `source` below the cut, with the given fields taken from each id's first copy. */
function firstCopiesBelowCut(db: string, source: SourceDef, fields: readonly string[]): string {
  const cols = fields.map((f) => `argMin(${ident(f)}, _seq) AS ${ident(f)}`).join(", ");
  return `SELECT ${cols} FROM ${masterTable(db, source.name)} WHERE _seq < {cuts:Array(UInt64)}[_partition + 1] GROUP BY _id`;
}

/** INSERT of batch view version {run} of `metric`. */
export function recomputeMetricSql(db: string, metric: MetricDef, source: SourceDef): string {
  const key = metric.groupBy[0]!;
  const t = source.timeField;
  return (
    `INSERT INTO ${viewTable(db, metric.name)} (run, key, window_start, value) ` +
    `SELECT {run:UInt64}, toString(${ident(key)}) AS k, ` +
    `fromUnixTimestamp64Milli(intDiv(toUnixTimestamp64Milli(${ident(t)}), ${metric.windowMs}) * ${metric.windowMs}, 'UTC') AS w, count() ` +
    `FROM (${firstCopiesBelowCut(db, source, [key, t])}) GROUP BY k, w`
  );
}

/** Distinct events of `source` below the cut and their event-time range (epoch ms). */
export function coverageSql(db: string, source: SourceDef): string {
  const t = ident(source.timeField);
  return (
    `SELECT count() AS events, toUnixTimestamp64Milli(min(${t})) AS from_ms, toUnixTimestamp64Milli(max(${t})) AS to_ms ` +
    `FROM (${firstCopiesBelowCut(db, source, [source.timeField])})`
  );
}

/** Highest archived sequence per partition of a source's master table. */
export function archivedHeadsSql(db: string, source: SourceDef): string {
  return `SELECT _partition AS partition, max(_seq) AS seq FROM ${masterTable(db, source.name)} GROUP BY _partition`;
}
