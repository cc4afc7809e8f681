/**
 * Catalog → ClickHouse SQL for the batch layer. Pure: each function returns a
 * query text; values travel as server-side parameters, never spliced in.
 *
 * A batch run N first copies, per source, the first copy (lowest sequence) of
 * every event id below the cut into `first_<source>` (partition N). Every
 * metric of the source then aggregates from that table: one deduplication per
 * source, however many metrics read it. The window arithmetic, the key
 * encoding, the filter semantics and the sketch states are the ones the speed
 * layer uses (core/catalog windowStart, core/aggregate keyOfValues,
 * core/filter, core/sketch), so both layers compute the same state.
 */
import type { AggregateDef, MetricDef, SourceDef } from "../core/catalog.js";
import type { FieldValue } from "../core/events.js";
import type { Filter } from "../core/filter.js";
import { hllSqlArgs, quantileSqlArgs } from "../core/sketch.js";
import { firstCopiesTable, ident, masterTable, viewTable } from "../ch/schema.js";
import { stateColumns } from "../ch/view_columns.js";

/** Parameters every recompute query takes: {run:UInt64}, {cuts:Array(UInt64)} (index = partition + 1). */
export interface RecomputeParams {
  run: number;
  cuts: number[];
}

/** INSERT of the first copies below the cut of run {run} into first_<source>. */
export function firstCopiesSql(db: string, source: SourceDef): string {
  const fields = Object.keys(source.fields);
  const tuple = `tuple(${fields.map(ident).join(", ")})`;
  const cols = fields.map((f, i) => `tupleElement(t, ${i + 1})`).join(", ");
  return (
    `INSERT INTO ${firstCopiesTable(db, source.name)} (_run, ${fields.map(ident).join(", ")}) ` +
    `SELECT {run:UInt64}, ${cols} FROM (SELECT argMin(${tuple}, _seq) AS t FROM ${masterTable(db, source.name)} ` +
    `WHERE _seq < {cuts:Array(UInt64)}[_partition + 1] GROUP BY _id)`
  );
}

/** The key column: the value for one group field, length-prefixed parts for several, '' for none (core/aggregate keyOfValues). */
export function keySql(metric: MetricDef): string {
  if (metric.groupBy.length === 0) return "''";
  if (metric.groupBy.length === 1) return `toString(${ident(metric.groupBy[0]!)})`;
  const parts = metric.groupBy.map((g) => {
    const v = `toString(${ident(g)})`;
    return `toString(length(${v})), ':', ${v}`;
  });
  return `concat(${parts.join(", ")})`;
}

const SQL_TYPE: Record<string, string> = { string: "String", int: "Int64", float: "Float64", bool: "Bool", timestamp: "Int64" };

/** A filter as SQL, its values added to `params` as {fN:Type}. */
export function filterSql(f: Filter, source: SourceDef, params: Record<string, unknown>): string {
  const column = (field: string) => (source.fields[field]!.type === "timestamp" ? `toUnixTimestamp64Milli(${ident(field)})` : ident(field));
  const param = (field: string, v: FieldValue | readonly FieldValue[], array: boolean) => {
    const name = `f${Object.keys(params).length}`;
    params[name] = v;
    const t = SQL_TYPE[source.fields[field]!.type]!;
    return `{${name}:${array ? `Array(${t})` : t}}`;
  };
  const OPS = { eq: "=", ne: "!=", lt: "<", le: "<=", gt: ">", ge: ">=" } as const;
  switch (f.kind) {
    case "cmp":
      // ifNull: a comparison with a missing value is false, also under NOT (core/filter.ts).
      return `ifNull(${column(f.field)} ${OPS[f.op]} ${param(f.field, f.value, false)}, 0)`;
    case "in":
      return `ifNull(${column(f.field)} IN ${param(f.field, f.values, true)}, 0)`;
    case "and":
    case "or":
      return `(${f.filters.map((x) => filterSql(x, source, params)).join(f.kind === "and" ? " AND " : " OR ")})`;
    case "not":
      return `NOT (${filterSql(f.filter, source, params)})`;
  }
}

function stateExprs(a: AggregateDef, source: SourceDef): string[] {
  if (a.field === null) return [];
  const f = ident(a.field);
  const v = source.fields[a.field]!.type === "timestamp" ? `toUnixTimestamp64Milli(${f})` : f;
  const zero = a.fieldType === "float" ? "toFloat64(0)" : "toInt64(0)";
  switch (a.kind) {
    case "count":
      return [];
    case "sum":
      return [`ifNull(sum(${v}), ${zero})`];
    case "min":
      return [`min(${v})`];
    case "max":
      return [`max(${v})`];
    case "avg":
      return [`ifNull(sum(${v}), ${zero})`, `count(${v})`];
    case "distinct": {
      const m = `maxMapIf(${hllSqlArgs(`assumeNotNull(${v})`)}, isNotNull(${v}))`;
      return [`tupleElement(${m}, 1)`, `tupleElement(${m}, 2)`];
    }
    case "quantiles": {
      const m = `sumMapIf(${quantileSqlArgs(`assumeNotNull(${v})`)}, isNotNull(${v}))`;
      return [`tupleElement(${m}, 1)`, `tupleElement(${m}, 2)`];
    }
  }
}

/** INSERT of batch view version {run} of `metric`, from first_<source>; `params` receives the filter's values. */
export function recomputeMetricSql(db: string, metric: MetricDef, source: SourceDef, params: Record<string, unknown>): string {
  const t = ident(source.timeField);
  const cols = metric.aggregates.flatMap(stateColumns);
  const exprs = metric.aggregates.flatMap((a) => stateExprs(a, source));
  const where = metric.filter ? ` AND ${filterSql(metric.filter, source, params)}` : "";
  return (
    `INSERT INTO ${viewTable(db, metric)} (run, key, window_start, n${cols.map((c) => `, ${ident(c)}`).join("")}) ` +
    `SELECT {run:UInt64}, ${keySql(metric)} AS k, ` +
    `fromUnixTimestamp64Milli(intDiv(toUnixTimestamp64Milli(${t}), ${metric.windowMs}) * ${metric.windowMs}, 'UTC') AS w, count()` +
    exprs.map((e) => `, ${e}`).join("") +
    ` FROM ${firstCopiesTable(db, source.name)} WHERE _run = {run:UInt64}${where} GROUP BY k, w`
  );
}

/** Distinct events of `source` below the cut of {run} and their event-time range (epoch ms). */
export function coverageSql(db: string, source: SourceDef): string {
  const t = ident(source.timeField);
  return (
    `SELECT count() AS events, toUnixTimestamp64Milli(min(${t})) AS from_ms, toUnixTimestamp64Milli(max(${t})) AS to_ms ` +
    `FROM ${firstCopiesTable(db, source.name)} WHERE _run = {run:UInt64}`
  );
}

/** Highest archived sequence per partition of a source's master table. */
export function archivedHeadsSql(db: string, source: SourceDef): string {
  return `SELECT _partition AS partition, max(_seq) AS seq FROM ${masterTable(db, source.name)} GROUP BY _partition`;
}
