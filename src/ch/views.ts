/**
 * Reads of batch views (the serving layer's side of ClickHouse): rows back to aggregate states.
 *
 * A version with no rows for the keys asked and a version that was never written (or was
 * dropped, or lives in another ClickHouse) must not read alike: the first is a true zero, the
 * second a wrong one. So every version a batch run writes carries one marker row (n = 0; real
 * rows count at least one event), in the version's own partition: dropping the version drops
 * its marker too. A read fetches the marker with the rows in one query, so it sees both or
 * neither.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { AggState, PartState } from "../core/aggregate.js";
import type { AggregateDef, MetricDef } from "../core/catalog.js";
import { BatchViewMissingError } from "../core/errors.js";
import { hllDecode, quantileDecode } from "../core/sketch.js";
import { queryRows } from "./client.js";
import { ident, viewTable, viewTableName } from "./schema.js";
import { stateColumns, stateColumnTypes } from "./view_columns.js";

/** key → window start (epoch ms) → state */
export type BatchStates = Map<string, Map<number, AggState>>;

type Row = Record<string, unknown> & { key: string; w: number | string; n: number | string };

// A ClickHouse server may quote 64-bit integers in JSON; chDB does not.
const nums = (v: unknown): number[] => (Array.isArray(v) ? v.map(Number) : []);

function partOf(a: AggregateDef, row: Row): PartState {
  const [c1, c2] = stateColumns(a).map((c) => row[c]);
  switch (a.kind) {
    case "count":
      return { k: "count" };
    case "sum":
      return { k: "sum", s: Number(c1) };
    case "min":
    case "max":
      return { k: a.kind, v: c1 === null || c1 === undefined ? null : Number(c1) };
    case "avg":
      return { k: "avg", s: Number(c1), c: Number(c2) };
    case "distinct":
      return { k: "distinct", hll: hllDecode({ idx: nums(c1), rank: nums(c2) }) };
    case "quantiles":
      return { k: "quantiles", b: quantileDecode({ bucket: nums(c1), count: nums(c2) }) };
  }
}

/** The marker row of a view version: key "", window 1970-01-01, n = 0 (see the module header). */
const MARKER_ROW = "n = 0 AND key = '' AND window_start = toDateTime64(0, 3, 'UTC')";

/**
 * The marker row of view version {run:UInt64} of `metric` as a SELECT of every column of its view
 * table, in the order `run, key, window_start, n`, then the state columns (stateColumns order),
 * each state column at its type's default. A batch run appends it to the INSERT of the version's
 * rows (one part written instead of two, src/batch/sql.ts); {@link markViewVersion} writes it alone.
 */
export function markerRowSql(metric: MetricDef): string {
  const states = metric.aggregates.flatMap(stateColumnTypes).map((t) => `, defaultValueOfTypeName('${t}')`);
  return `SELECT {run:UInt64}, '', toDateTime64(0, 3, 'UTC'), toUInt64(0)${states.join("")}`;
}

/** The columns {@link markerRowSql} selects, in its order, for the INSERT's column list. */
export const viewColumnsSql = (metric: MetricDef) => `run, key, window_start, n${metric.aggregates.flatMap(stateColumns).map((c) => `, ${ident(c)}`).join("")}`;

/** Marks view version `run` of `metric` as written, alone: a version with no rows (its source has none below the cut). */
export async function markViewVersion(client: ClickHouseClient, db: string, metric: MetricDef, run: number): Promise<void> {
  await client.command({ query: `INSERT INTO ${viewTable(db, metric)} (${viewColumnsSql(metric)}) ${markerRowSql(metric)}`, query_params: { run } });
}

/** Whether this ClickHouse holds view version `run` of `metric`: "present", or what is missing. */
export async function viewVersionState(client: ClickHouseClient, db: string, metric: MetricDef, run: number): Promise<"present" | BatchViewMissingError["missing"]> {
  const tables = await queryRows<{ name: string }>(client, "SELECT name FROM system.tables WHERE database = {db:String} AND name = {name:String}", { db, name: viewTableName(metric) });
  if (tables.length === 0) return "table";
  // Any row of the version, marker or not: versions written before markers existed have rows only.
  const rows = await queryRows<{ one: number }>(client, `SELECT 1 AS one FROM ${viewTable(db, metric)} WHERE run = {run:UInt64} LIMIT 1`, { run });
  return rows.length > 0 ? "present" : "version";
}

/**
 * The states of `metric` in view version `run`, for `keys` (null: every key),
 * over the windows starting in [fromMs, toMs).
 * @throws BatchViewMissingError when this ClickHouse does not hold version `run` of the view
 */
export async function readBatchStates(
  client: ClickHouseClient,
  db: string,
  metric: MetricDef,
  run: number,
  keys: readonly string[] | null,
  fromMs: number,
  toMs: number,
): Promise<BatchStates> {
  const cols = metric.aggregates.flatMap(stateColumns);
  const missing = (what: BatchViewMissingError["missing"]) => new BatchViewMissingError(metric.name, run, viewTable(db, metric), what);
  let rows: Row[];
  try {
    rows = await queryRows<Row>(
      client,
      `SELECT key, toUnixTimestamp64Milli(window_start) AS w, n${cols.map((c) => `, ${ident(c)}`).join("")} FROM ${viewTable(db, metric)} ` +
        "WHERE run = {run:UInt64} AND ((n > 0 " +
        (keys ? "AND key IN {keys:Array(String)} " : "") +
        `AND window_start >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND window_start < fromUnixTimestamp64Milli({to:Int64}, 'UTC')) OR (${MARKER_ROW}))`,
      { run, keys: keys ? [...keys] : [], from: fromMs, to: toMs },
    );
  } catch (err) {
    // The table of the watermark's definition may not exist here at all; any other failure is the read's own.
    if ((await viewVersionState(client, db, metric, run).catch(() => "present")) === "table") throw missing("table");
    throw err;
  }
  let marked = false;
  const out: BatchStates = new Map();
  for (const row of rows) {
    if (Number(row.n) === 0) {
      marked = true;
      continue;
    }
    let byWindow = out.get(row.key);
    if (!byWindow) out.set(row.key, (byWindow = new Map()));
    byWindow.set(Number(row.w), { n: Number(row.n), parts: metric.aggregates.map((a) => partOf(a, row)) });
  }
  if (!marked) {
    const state = await viewVersionState(client, db, metric, run);
    if (state !== "present") throw missing(state);
  }
  return out;
}

/** The keys of a view version, or that it holds more than the limit asked. */
export type BatchKeys = { readonly kind: "keys"; readonly keys: ReadonlySet<string> } | { readonly kind: "too_many"; readonly limit: number };

/**
 * The keys with at least one row in view version `run` of `metric` (over every window), when
 * there are at most `limit` of them.
 * @throws BatchViewMissingError when this ClickHouse does not hold version `run` of the view
 */
export async function readBatchKeys(client: ClickHouseClient, db: string, metric: MetricDef, run: number, limit: number): Promise<BatchKeys> {
  const rows = await queryRows<{ key: string }>(client, `SELECT DISTINCT key FROM ${viewTable(db, metric)} WHERE run = {run:UInt64} AND n > 0 LIMIT {limit:UInt64}`, { run, limit: limit + 1 });
  if (rows.length > limit) return { kind: "too_many", limit };
  // No rows at all is an empty version only when the version exists (its marker, or any row).
  if (rows.length === 0) {
    const state = await viewVersionState(client, db, metric, run);
    if (state !== "present") throw new BatchViewMissingError(metric.name, run, viewTable(db, metric), state);
  }
  return { kind: "keys", keys: new Set(rows.map((r) => r.key)) };
}
