/**
 * How an aggregate's state is stored in a batch view table: its column names
 * and types. Shared by the DDL, the recompute SQL (src/batch/sql.ts) and the
 * reads (views.ts).
 */
import type { AggregateDef } from "../core/catalog.js";

/** Column name(s) of an aggregate's state in a view table. */
export function stateColumns(a: AggregateDef): string[] {
  // A prefix per kind of column: aggregate names are unique within a metric, so no two
  // columns can meet (a suffix could: "x" as avg and "x_s" as sum).
  const n = a.name;
  switch (a.kind) {
    case "count":
      return [];
    case "sum":
    case "min":
    case "max":
      return [`a_${n}`];
    case "avg":
      return [`as_${n}`, `ac_${n}`];
    case "distinct":
      return [`hi_${n}`, `hr_${n}`];
    case "quantiles":
      return [`qb_${n}`, `qc_${n}`];
  }
}

/** Column types of an aggregate's state, aligned with stateColumns. */
export function stateColumnTypes(a: AggregateDef): string[] {
  const num = a.fieldType === "float" ? "Float64" : "Int64";
  switch (a.kind) {
    case "count":
      return [];
    case "sum":
      return [num];
    case "min":
    case "max":
      return [`Nullable(${num})`];
    case "avg":
      return [num, "UInt64"];
    case "distinct":
      return ["Array(UInt16)", "Array(UInt8)"];
    case "quantiles":
      return ["Array(UInt32)", "Array(UInt64)"];
  }
}
