/**
 * Metric filters: a typed tree (comparisons, `in`, and/or/not) parsed from the
 * catalog and evaluated by the speed layer here; the batch layer compiles the
 * same tree to SQL with every value passed as a query parameter, never spliced
 * into the query text (src/batch/sql.ts).
 *
 * Semantics both layers share: a comparison or `in` on a missing (null)
 * optional value is false, and `not` negates that boolean (SQL wraps every
 * leaf in ifNull(…, 0) so NULL never propagates through NOT).
 */
import type { FieldValue } from "./events.js";

export const CompareOps = { eq: "eq", ne: "ne", lt: "lt", le: "le", gt: "gt", ge: "ge" } as const;
export type CompareOp = (typeof CompareOps)[keyof typeof CompareOps];

export type Filter =
  | { readonly kind: "cmp"; readonly field: string; readonly op: CompareOp; readonly value: FieldValue }
  | { readonly kind: "in"; readonly field: string; readonly values: readonly FieldValue[] }
  | { readonly kind: "and"; readonly filters: readonly Filter[] }
  | { readonly kind: "or"; readonly filters: readonly Filter[] }
  | { readonly kind: "not"; readonly filter: Filter };

function compare(a: FieldValue, op: CompareOp, b: FieldValue): boolean {
  if (a === null || b === null) return false;
  switch (op) {
    case "eq":
      return a === b;
    case "ne":
      return a !== b;
    case "lt":
      return a < b;
    case "le":
      return a <= b;
    case "gt":
      return a > b;
    case "ge":
      return a >= b;
  }
}

/** Evaluates `f` on an event's normalised fields. */
export function matches(f: Filter, fields: Readonly<Record<string, FieldValue>>): boolean {
  switch (f.kind) {
    case "cmp":
      return compare(fields[f.field] ?? null, f.op, f.value);
    case "in": {
      const v = fields[f.field] ?? null;
      return v !== null && f.values.includes(v);
    }
    case "and":
      return f.filters.every((x) => matches(x, fields));
    case "or":
      return f.filters.some((x) => matches(x, fields));
    case "not":
      return !matches(f.filter, fields);
  }
}

/** Every field a filter reads. */
export function filterFields(f: Filter | null, out = new Set<string>()): Set<string> {
  if (!f) return out;
  switch (f.kind) {
    case "cmp":
    case "in":
      out.add(f.field);
      break;
    case "and":
    case "or":
      for (const x of f.filters) filterFields(x, out);
      break;
    case "not":
      filterFields(f.filter, out);
      break;
  }
  return out;
}

/** A parsed filter back in the catalog's JSON form (docs/catalog.md). */
export function filterToJson(f: Filter): unknown {
  switch (f.kind) {
    case "cmp":
      return { field: f.field, op: f.op, value: f.value };
    case "in":
      return { field: f.field, op: "in", values: f.values };
    case "and":
    case "or":
      return { [f.kind]: f.filters.map(filterToJson) };
    case "not":
      return { not: filterToJson(f.filter) };
  }
}
