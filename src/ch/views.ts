/** Reads of batch views (the serving layer's side of ClickHouse): rows back to aggregate states. */
import type { ClickHouseClient } from "@clickhouse/client";
import type { AggState, PartState } from "../core/aggregate.js";
import type { AggregateDef, MetricDef } from "../core/catalog.js";
import { hllDecode, quantileDecode } from "../core/sketch.js";
import { queryRows } from "./client.js";
import { ident, viewTable } from "./schema.js";
import { stateColumns } from "./view_columns.js";

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

/**
 * The states of `metric` in view version `run`, for `keys` (null: every key),
 * over the windows starting in [fromMs, toMs).
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
  const rows = await queryRows<Row>(
    client,
    `SELECT key, toUnixTimestamp64Milli(window_start) AS w, n${cols.map((c) => `, ${ident(c)}`).join("")} FROM ${viewTable(db, metric)} ` +
      "WHERE run = {run:UInt64} " +
      (keys ? "AND key IN {keys:Array(String)} " : "") +
      "AND window_start >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND window_start < fromUnixTimestamp64Milli({to:Int64}, 'UTC')",
    { run, keys: keys ? [...keys] : [], from: fromMs, to: toMs },
  );
  const out: BatchStates = new Map();
  for (const row of rows) {
    let byWindow = out.get(row.key);
    if (!byWindow) out.set(row.key, (byWindow = new Map()));
    byWindow.set(Number(row.w), { n: Number(row.n), parts: metric.aggregates.map((a) => partOf(a, row)) });
  }
  return out;
}
