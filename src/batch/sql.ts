/**
 * Catalog → ClickHouse SQL for the batch layer. Pure: each function returns a
 * query text. Values from the catalog (filter values) and the run number travel
 * as server-side parameters, never spliced in. The cut is rendered as integer
 * literals, validated here: numbers the coordinator produced, never user text
 * (ClickHouse evaluates literals 1.4–1.9x faster than an array parameter).
 *
 * A batch run N counts, per source, the first copy (lowest sequence) of every
 * event id among the rows below the cut. Nearly every id has one row there, so
 * rows are not deduplicated one by one: the ids with several rows below the cut
 * (later copies of an event, or a row the archiver wrote twice) are found
 * first, and their first copies go to `repeated_<source>` (partition N, one row
 * per id). Every metric of the source then reads the rows of the ids seen once
 * straight from the master table, plus the rows of `repeated_<source>`
 * ({@link firstCopiesSql}). The window arithmetic, the key encoding, the filter
 * semantics and the sketch states are the ones the speed layer uses
 * (core/catalog windowStart, core/aggregate keyOfValues, core/filter,
 * core/sketch), so both layers compute the same state.
 */
import type { AggregateDef, MetricDef, SourceDef } from "../core/catalog.js";
import type { FieldValue } from "../core/events.js";
import { filterFields, type Filter } from "../core/filter.js";
import { hllSqlState, quantileSqlState } from "../core/sketch.js";
import { globalIn, SINGLE_LAYOUT, type ChLayout } from "../ch/layout.js";
import { ident, masterTable, repeatedTable, viewTable } from "../ch/schema.js";
import { markerRowSql, viewColumnsSql } from "../ch/views.js";

/** The parameter every recompute query takes: {run:UInt64}, the batch run (and view version). */
export interface RecomputeParams {
  run: number;
}

/**
 * Checks that every cut can be written as an integer literal.
 * @throws RangeError when a cut is not an integer in 0..2^53-1
 */
export function checkCuts(cuts: readonly number[]): void {
  for (const [p, c] of cuts.entries()) {
    if (!Number.isSafeInteger(c) || c < 0) throw new RangeError(`cut of partition ${p}: ${c}; allowed: integers in 0..2^53-1`);
  }
}

/**
 * Master rows below the cut: `_seq < cuts[_partition]`. A partition past the
 * end of `cuts` has nothing below it.
 * @param cuts - cuts[p]: barrier sequence of partition p
 * @throws RangeError when a cut is not an integer in 0..2^53-1
 */
export function belowCutSql(cuts: readonly number[]): string {
  checkCuts(cuts);
  if (cuts.length === 0) return "0";
  return `_seq < transform(_partition, [${cuts.map((_, p) => p).join(", ")}], [${cuts.join(", ")}], 0)`;
}

/**
 * Per source, in one query: its master rows below `cuts` (copies included) as `rows`, and their
 * event-time range (epoch ms) as `from_ms`, `to_ms`; one row per source, `source` its index in
 * `sources`. When no id has two rows below the cut (`repeated_<source>` empty), these are the
 * run's coverage of the source, and no {@link coverageSql} is needed.
 * @throws RangeError for a cut that is not an integer (see {@link belowCutSql})
 */
export function belowCutStatsSql(db: string, sources: readonly SourceDef[], cuts: readonly number[]): string {
  const below = belowCutSql(cuts);
  return sources
    .map((s, i) => {
      const t = ident(s.timeField);
      return `SELECT ${i} AS source, count() AS rows, toUnixTimestamp64Milli(min(${t})) AS from_ms, toUnixTimestamp64Milli(max(${t})) AS to_ms FROM ${masterTable(db, s.name)} WHERE ${below}`;
    })
    .join(" UNION ALL ");
}

/** The ids of run {run} in repeated_<source> ({@link repeatedFirstCopiesSql}), as `ids`. */
export function repeatedIdsSql(db: string, source: SourceDef): string {
  return `SELECT count() AS ids FROM ${repeatedTable(db, source.name)} WHERE _run = {run:UInt64}`;
}

/**
 * INSERT into repeated_<source>, for run {run}, of the first copy of every id
 * with more than one row below the cut: its row with the lowest `_seq` (then
 * `_partition`), and in `_rows` the (partition, sequence) of each of its rows
 * below the cut. A row archived twice is one row here.
 *
 * The ids are found by a 64-bit hash of the id that occurs more than once:
 * grouping by a UInt64 costs 20–25% less CPU than by the String. Every
 * repeated id is among them; an id seen once whose hash collides with another
 * id's is taken in too and gets its own row as its first copy, so the result
 * is exact either way.
 * @throws RangeError for a cut that is not an integer (see {@link belowCutSql})
 */
export function repeatedFirstCopiesSql(db: string, source: SourceDef, cuts: readonly number[], layout: ChLayout = SINGLE_LAYOUT): string {
  const fields = Object.keys(source.fields).map(ident).join(", ");
  const n = Object.keys(source.fields).length;
  const master = masterTable(db, source.name);
  const below = belowCutSql(cuts);
  return (
    `INSERT INTO ${repeatedTable(db, source.name)} (_run, _id, _rows, ${fields}) ` +
    `SELECT {run:UInt64}, _id, _rows, ${Array.from({ length: n }, (_, i) => `tupleElement(t, ${i + 1})`).join(", ")} ` +
    `FROM (SELECT _id, groupArray((_partition, _seq)) AS _rows, argMin(tuple(${fields}), (_seq, _partition)) AS t FROM ${master} ` +
    `WHERE ${below} AND cityHash64(_id) ${globalIn(layout)}IN (SELECT cityHash64(_id) AS h FROM ${master} WHERE ${below} GROUP BY h HAVING count() > 1) GROUP BY _id)`
  );
}

/**
 * The first copy of every event id below the cut, as a subquery for FROM with
 * the given source fields as columns: the master rows below the cut but those
 * of repeated ids, and the rows of repeated_<source> for run {run} (written by
 * {@link repeatedFirstCopiesSql} first). Repeated ids' rows are left out by
 * (partition, sequence), the master table's key, which is read for the cut
 * anyway: cheaper than looking up every row's id.
 */
export function firstCopiesSql(db: string, source: SourceDef, cuts: readonly number[], fields: readonly string[], layout: ChLayout = SINGLE_LAYOUT): string {
  const cols = fields.map(ident).join(", ");
  const repeated = repeatedTable(db, source.name);
  return (
    `(SELECT ${cols} FROM ${masterTable(db, source.name)} WHERE ${belowCutSql(cuts)} ` +
    `AND (_partition, _seq) ${globalIn(layout)}NOT IN (SELECT r.1, r.2 FROM ${repeated} ARRAY JOIN _rows AS r WHERE _run = {run:UInt64}) ` +
    `UNION ALL SELECT ${cols} FROM ${repeated} WHERE _run = {run:UInt64})`
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

/**
 * An aggregate's state as SQL in two levels: `inner` aggregates over the rows
 * of a (key, window), each `expr AS name`; `outer` reads those names into the
 * state columns, in stateColumns order. Names start with "_", which no field
 * name can (core/catalog_parse), so an alias never hides a field.
 */
interface StateSql {
  readonly inner: string[];
  readonly outer: string[];
}

function stateSql(a: AggregateDef, source: SourceDef, name: string): StateSql {
  const plain = (...exprs: string[]): StateSql => ({ inner: exprs.map((e, i) => `${e} AS ${name}_${i}`), outer: exprs.map((_, i) => `${name}_${i}`) });
  if (a.field === null) return plain();
  const f = ident(a.field);
  const v = source.fields[a.field]!.type === "timestamp" ? `toUnixTimestamp64Milli(${f})` : f;
  const zero = a.fieldType === "float" ? "toFloat64(0)" : "toInt64(0)";
  switch (a.kind) {
    case "count":
      return plain();
    case "sum":
      return plain(`ifNull(sum(${v}), ${zero})`);
    case "min":
      return plain(`min(${v})`);
    case "max":
      return plain(`max(${v})`);
    case "avg":
      return plain(`ifNull(sum(${v}), ${zero})`, `count(${v})`);
    case "distinct":
    case "quantiles": {
      // A required field is never null: no condition to test per row.
      const optional = source.fields[a.field]!.optional;
      const sketch = (a.kind === "distinct" ? hllSqlState : quantileSqlState)(optional ? `assumeNotNull(${v})` : v, optional ? `isNotNull(${v})` : null);
      return { inner: [`${sketch.aggregate} AS ${name}`], outer: sketch.columns(name) };
    }
  }
}

/** The source fields a metric reads: group-by fields, the time field, the filter's and the aggregates' fields. */
function metricFields(metric: MetricDef, source: SourceDef): string[] {
  const used = filterFields(metric.filter, new Set([...metric.groupBy, source.timeField]));
  for (const a of metric.aggregates) if (a.field !== null) used.add(a.field);
  return Object.keys(source.fields).filter((f) => used.has(f));
}

/**
 * INSERT of batch view version {run} of `metric`, from the first copies below
 * `cuts` ({@link firstCopiesSql}); `params` receives the filter's values.
 *
 * The version's marker row (ch/views.ts) comes with its rows, in the same INSERT: a
 * separate INSERT would write a part of its own, ~5–15 ms each on chDB.
 *
 * The rows are grouped by one String, `_kw`: the window start as 8 raw bytes
 * (Int64, fixed width), then the key. It tells (key, window) pairs apart as
 * the pair does, and ClickHouse hashes a single String key 35–45% cheaper
 * (CPU) than a (String, Int64) pair (docs/performance.md). The outer query
 * splits it back.
 * @throws RangeError for a cut that is not an integer (see {@link belowCutSql})
 */
export function recomputeMetricSql(db: string, metric: MetricDef, source: SourceDef, cuts: readonly number[], params: Record<string, unknown>, layout: ChLayout = SINGLE_LAYOUT): string {
  const t = ident(source.timeField);
  const states = metric.aggregates.map((a, i) => stateSql(a, source, `_a${i}`));
  const where = metric.filter ? ` WHERE ${filterSql(metric.filter, source, params)}` : "";
  const window = `reinterpretAsFixedString(toInt64(intDiv(toUnixTimestamp64Milli(${t}), ${metric.windowMs}) * ${metric.windowMs}))`;
  // With no group-by field the key is '': the window's 8 bytes alone are the group.
  const perWindow =
    `SELECT ${metric.groupBy.length === 0 ? window : `concat(${window}, ${keySql(metric)})`} AS _kw, count() AS _n` +
    states.flatMap((s) => s.inner.map((e) => `, ${e}`)).join("") +
    ` FROM ${firstCopiesSql(db, source, cuts, metricFields(metric, source), layout)}${where} GROUP BY _kw`;
  return (
    `INSERT INTO ${viewTable(db, metric)} (${viewColumnsSql(metric)}) ` +
    `SELECT {run:UInt64}, substring(_kw, 9), fromUnixTimestamp64Milli(reinterpretAsInt64(substring(_kw, 1, 8)), 'UTC'), _n` +
    states.flatMap((s) => s.outer.map((e) => `, ${e}`)).join("") +
    ` FROM (${perWindow}) UNION ALL ${markerRowSql(metric)}`
  );
}

/** Distinct events of `source` below `cuts` (run {run}) and their event-time range (epoch ms). */
export function coverageSql(db: string, source: SourceDef, cuts: readonly number[], layout: ChLayout = SINGLE_LAYOUT): string {
  const t = ident(source.timeField);
  return (
    `SELECT count() AS events, toUnixTimestamp64Milli(min(${t})) AS from_ms, toUnixTimestamp64Milli(max(${t})) AS to_ms ` +
    `FROM ${firstCopiesSql(db, source, cuts, [source.timeField], layout)}`
  );
}

/** Highest archived sequence per partition of a source's master table. */
export function archivedHeadsSql(db: string, source: SourceDef): string {
  return `SELECT _partition AS partition, max(_seq) AS seq FROM ${masterTable(db, source.name)} GROUP BY _partition`;
}
