/**
 * Validation of a catalog document. Every error names the file, the entry
 * (e.g. metrics.revenue.filter.and[1].value) and what was wrong and allowed.
 */
import { AGGREGATE_FIELD_TYPES, FieldTypes, type AggregateDef, type AggregateKind, type Catalog, type FieldDef, type FieldType, type MetricDef, type SourceDef } from "./catalog_types.js";
import { CatalogError } from "./errors.js";
import { normalizeValue, type FieldValue } from "./events.js";
import { CompareOps, type CompareOp, type Filter } from "./filter.js";

const WINDOW_UNITS_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** Longest catalog name: a name ends up in table and column names, hence in file names on ClickHouse's disk. */
export const MAX_NAME_LENGTH = 64;
/**
 * Every catalog name (source, field, metric, aggregate) reaches DDL and SQL text as an
 * identifier, so it is held to this before anything else sees it: ASCII lower_snake_case
 * only, which no quote, backtick, space, semicolon or look-alike letter (Cyrillic 'а') passes.
 */
export const NAME_PATTERN = new RegExp(`^[a-z][a-z0-9_]{0,${MAX_NAME_LENGTH - 1}}$`);
/** Ordering comparisons only where both layers order values the same way. */
const ORDERED_TYPES: readonly FieldType[] = ["int", "float", "timestamp"];
/** Group-by values become strings identically in TypeScript and ClickHouse only for these. */
const GROUP_TYPES: readonly FieldType[] = ["string", "int", "bool"];

/** Parses "30s", "1m", "5m", "1h", "1d" to milliseconds. */
export function parseWindow(text: string): number | undefined {
  const m = /^([1-9][0-9]*)([smhd])$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * WINDOW_UNITS_MS[m[2]!]!;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

class Ctx {
  constructor(readonly file: string) {}
  fail(path: string, reason: string): never {
    throw new CatalogError(this.file, path, reason);
  }
  keys(path: string, obj: Record<string, unknown>, allowed: readonly string[]) {
    for (const k of Object.keys(obj)) if (!allowed.includes(k)) this.fail(`${path}.${k}`, `unknown key; allowed: ${allowed.join(", ")}`);
  }
}

/** Fails at `path` unless `name` (a `what` name) matches {@link NAME_PATTERN}; the reason shows the name quoted. */
function checkName(ctx: Ctx, path: string, what: string, name: string): void {
  if (NAME_PATTERN.test(name)) return;
  const tooLong = name.length > MAX_NAME_LENGTH ? ` (${name.length} characters)` : "";
  ctx.fail(path, `${what} name ${JSON.stringify(name)}${tooLong} does not match ${NAME_PATTERN.source}: ${what} names are lower_snake_case, ASCII, 1 to ${MAX_NAME_LENGTH} characters`);
}

function parseFieldType(ctx: Ctx, path: string, t: unknown): FieldDef {
  if (typeof t !== "string") ctx.fail(path, `expected a type name, got ${JSON.stringify(t)}`);
  const optional = t.endsWith("?");
  const base = optional ? t.slice(0, -1) : t;
  if (!Object.hasOwn(FieldTypes, base)) ctx.fail(path, `unknown type ${JSON.stringify(t)}; allowed: ${Object.keys(FieldTypes).join(", ")} (add "?" for optional)`);
  return { type: base as FieldType, optional };
}

function parseSource(ctx: Ctx, name: string, raw: unknown): SourceDef {
  const path = `sources.${name}`;
  checkName(ctx, path, "source", name);
  if (!isRecord(raw)) ctx.fail(path, "expected an object");
  ctx.keys(path, raw, ["fields", "idField", "timeField", "partitionKey", "description"]);
  if (!isRecord(raw.fields) || Object.keys(raw.fields).length === 0) ctx.fail(`${path}.fields`, "expected an object of field name → type");
  const fields: Record<string, FieldDef> = {};
  for (const [f, t] of Object.entries(raw.fields)) {
    checkName(ctx, `${path}.fields.${f}`, "field", f);
    fields[f] = parseFieldType(ctx, `${path}.fields.${f}`, t);
  }
  const role = (key: "idField" | "timeField" | "partitionKey", types: FieldType[]): string => {
    const v = raw[key];
    if (typeof v !== "string") ctx.fail(`${path}.${key}`, "expected a field name");
    const def = Object.hasOwn(fields, v) ? fields[v] : undefined;
    if (!def) ctx.fail(`${path}.${key}`, `unknown field ${JSON.stringify(v)}`);
    if (!types.includes(def.type)) ctx.fail(`${path}.${key}`, `field ${JSON.stringify(v)} is ${def.type}; expected ${types.join(" or ")}`);
    if (def.optional) ctx.fail(`${path}.${key}`, `field ${JSON.stringify(v)} is optional; it must be required`);
    return v;
  };
  return {
    name,
    fields,
    idField: role("idField", ["string", "int"]),
    timeField: role("timeField", ["timestamp"]),
    partitionKey: role("partitionKey", ["string", "int", "bool"]),
  };
}

function fieldOf(ctx: Ctx, path: string, source: SourceDef, f: unknown): FieldDef & { name: string } {
  if (typeof f !== "string" || !Object.hasOwn(source.fields, f)) {
    ctx.fail(path, `unknown field ${JSON.stringify(f)} of source ${source.name}; fields: ${Object.keys(source.fields).join(", ")}`);
  }
  return { ...source.fields[f]!, name: f };
}

function filterValue(ctx: Ctx, path: string, field: FieldDef & { name: string }, v: unknown): FieldValue {
  try {
    return normalizeValue(field.type, v);
  } catch (err) {
    ctx.fail(path, `${(err as Error).message} (field ${field.name} is ${field.type})`);
  }
}

function parseFilter(ctx: Ctx, path: string, source: SourceDef, raw: unknown): Filter {
  if (!isRecord(raw)) ctx.fail(path, "expected a filter object: {field, op, value}, {field, op: \"in\", values}, {and: [...]}, {or: [...]} or {not: ...}");
  if ("and" in raw || "or" in raw) {
    const kind = "and" in raw ? "and" : "or";
    ctx.keys(path, raw, [kind]);
    const list = raw[kind];
    if (!Array.isArray(list) || list.length === 0) ctx.fail(`${path}.${kind}`, "expected a non-empty list of filters");
    return { kind, filters: list.map((x, i) => parseFilter(ctx, `${path}.${kind}[${i}]`, source, x)) };
  }
  if ("not" in raw) {
    ctx.keys(path, raw, ["not"]);
    return { kind: "not", filter: parseFilter(ctx, `${path}.not`, source, raw.not) };
  }
  const field = fieldOf(ctx, `${path}.field`, source, raw.field);
  if (raw.op === "in") {
    ctx.keys(path, raw, ["field", "op", "values"]);
    if (!Array.isArray(raw.values) || raw.values.length === 0) ctx.fail(`${path}.values`, "expected a non-empty list");
    return { kind: "in", field: field.name, values: raw.values.map((v, i) => filterValue(ctx, `${path}.values[${i}]`, field, v)) };
  }
  ctx.keys(path, raw, ["field", "op", "value"]);
  if (typeof raw.op !== "string" || !Object.hasOwn(CompareOps, raw.op)) {
    ctx.fail(`${path}.op`, `unknown operator ${JSON.stringify(raw.op)}; allowed: ${Object.keys(CompareOps).join(", ")}, in`);
  }
  const op = raw.op as CompareOp;
  if (op !== "eq" && op !== "ne" && !ORDERED_TYPES.includes(field.type)) {
    ctx.fail(`${path}.op`, `${op} needs an ordered field (${ORDERED_TYPES.join(", ")}); ${field.name} is ${field.type}`);
  }
  return { kind: "cmp", field: field.name, op, value: filterValue(ctx, `${path}.value`, field, raw.value) };
}

function parseAggregate(ctx: Ctx, path: string, source: SourceDef, name: string, raw: unknown): AggregateDef {
  checkName(ctx, path, "aggregate", name);
  if (raw === "count") return { name, kind: "count", field: null, fieldType: null };
  const kinds = Object.keys(AGGREGATE_FIELD_TYPES);
  if (!isRecord(raw) || Object.keys(raw).length !== 1) {
    ctx.fail(path, `expected "count" or one of {${kinds.map((k) => `"${k}": field`).join(", ")}}`);
  }
  const [kind, f] = Object.entries(raw)[0]!;
  if (kind === "count") ctx.fail(path, 'count takes no field: write "count"');
  if (!Object.hasOwn(AGGREGATE_FIELD_TYPES, kind)) ctx.fail(path, `unknown aggregate ${JSON.stringify(kind)}; allowed: count, ${kinds.join(", ")}`);
  const field = fieldOf(ctx, `${path}.${kind}`, source, f);
  const allowed = AGGREGATE_FIELD_TYPES[kind as Exclude<AggregateKind, "count">];
  if (!allowed.includes(field.type)) ctx.fail(`${path}.${kind}`, `${kind} needs a field of type ${allowed.join(" or ")}; ${field.name} is ${field.type}`);
  return { name, kind: kind as AggregateKind, field: field.name, fieldType: field.type };
}

function parseMetric(ctx: Ctx, name: string, raw: unknown, sources: Map<string, SourceDef>): MetricDef {
  const path = `metrics.${name}`;
  checkName(ctx, path, "metric", name);
  if (!isRecord(raw)) ctx.fail(path, "expected an object");
  ctx.keys(path, raw, ["source", "groupBy", "window", "filter", "aggregates", "description"]);
  const source = typeof raw.source === "string" ? sources.get(raw.source) : undefined;
  if (!source) ctx.fail(`${path}.source`, `unknown source ${JSON.stringify(raw.source)}; defined: ${[...sources.keys()].join(", ")}`);
  const groupByRaw = raw.groupBy ?? [];
  if (!Array.isArray(groupByRaw)) ctx.fail(`${path}.groupBy`, "expected a list of field names (empty for a global metric)");
  const groupBy = groupByRaw.map((g, i) => {
    const f = fieldOf(ctx, `${path}.groupBy[${i}]`, source, g);
    if (!GROUP_TYPES.includes(f.type)) ctx.fail(`${path}.groupBy[${i}]`, `cannot group by ${f.name} (${f.type}); group-by fields are ${GROUP_TYPES.join(", ")}`);
    if (f.optional) ctx.fail(`${path}.groupBy[${i}]`, `cannot group by optional field ${f.name}`);
    return f.name;
  });
  if (new Set(groupBy).size !== groupBy.length) ctx.fail(`${path}.groupBy`, "a field appears twice");
  const windowMs = typeof raw.window === "string" ? parseWindow(raw.window) : undefined;
  if (windowMs === undefined) ctx.fail(`${path}.window`, `bad window ${JSON.stringify(raw.window)}; expected e.g. 30s, 1m, 5m, 1h, 1d`);
  if (!isRecord(raw.aggregates) || Object.keys(raw.aggregates).length === 0) {
    ctx.fail(`${path}.aggregates`, 'expected an object of name → aggregate, e.g. {"views": "count", "revenue": {"sum": "amount"}}');
  }
  const aggregates = Object.entries(raw.aggregates).map(([n, a]) => parseAggregate(ctx, `${path}.aggregates.${n}`, source, n, a));
  if (raw.description !== undefined && typeof raw.description !== "string") ctx.fail(`${path}.description`, "expected a string");
  return {
    name,
    source: source.name,
    groupBy,
    windowMs,
    window: raw.window as string,
    filter: raw.filter === undefined ? null : parseFilter(ctx, `${path}.filter`, source, raw.filter),
    aggregates,
    description: (raw.description as string | undefined) ?? "",
  };
}

/**
 * Validates a parsed catalog document.
 * @param file used in error messages only.
 * @throws CatalogError naming the file, the entry and the field.
 */
export function parseCatalog(doc: unknown, file: string): Catalog {
  const ctx: Ctx = new Ctx(file);
  if (!isRecord(doc)) ctx.fail("(root)", "expected an object with sources and metrics");
  ctx.keys("(root)", doc, ["sources", "metrics"]);
  if (!isRecord(doc.sources) || Object.keys(doc.sources).length === 0) ctx.fail("sources", "expected an object of source name → source");
  if (!isRecord(doc.metrics)) ctx.fail("metrics", "expected an object of metric name → metric");
  const sources = new Map<string, SourceDef>();
  for (const [n, s] of Object.entries(doc.sources)) sources.set(n, parseSource(ctx, n, s));
  const metrics = new Map<string, MetricDef>();
  for (const [n, m] of Object.entries(doc.metrics)) metrics.set(n, parseMetric(ctx, n, m, sources));
  return { sources, metrics };
}
