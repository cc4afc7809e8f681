/**
 * The catalog: sources (typed schemas) and metrics, declared once in a JSON file
 * that every role reads. The same metric definition is compiled to ClickHouse SQL
 * for the batch layer (src/batch/sql.ts) and to incremental aggregators for the
 * speed layer (src/actors), so the two cannot drift apart.
 */
import { readFileSync } from "node:fs";
import { CatalogError } from "./errors.js";

export const FieldTypes = {
  string: "string",
  int: "int",
  float: "float",
  bool: "bool",
  timestamp: "timestamp",
} as const;
export type FieldType = (typeof FieldTypes)[keyof typeof FieldTypes];

export const Aggregates = { count: "count" } as const;
export type Aggregate = (typeof Aggregates)[keyof typeof Aggregates];

export interface SourceDef {
  readonly name: string;
  /** Field name → type; the id, time and partition-key fields are among them. */
  readonly fields: Readonly<Record<string, FieldType>>;
  readonly idField: string;
  readonly timeField: string;
  readonly partitionKey: string;
}

export interface MetricDef {
  readonly name: string;
  readonly source: string;
  /** Fields whose values form the metric key. */
  readonly groupBy: readonly string[];
  /** Tumbling window size in ms. */
  readonly windowMs: number;
  /** The window as written in the catalog, e.g. "1m". */
  readonly window: string;
  readonly aggregate: Aggregate;
  readonly description: string;
}

export interface Catalog {
  readonly sources: ReadonlyMap<string, SourceDef>;
  readonly metrics: ReadonlyMap<string, MetricDef>;
}

const WINDOW_UNITS_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const NAME = /^[a-z][a-z0-9_]*$/;

/** Parses "30s", "1m", "5m", "1h", "1d" to milliseconds. */
export function parseWindow(text: string): number | undefined {
  const m = /^([1-9][0-9]*)([smhd])$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * WINDOW_UNITS_MS[m[2]!]!;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkKeys(file: string, path: string, obj: Record<string, unknown>, allowed: readonly string[]) {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new CatalogError(file, `${path}.${k}`, `unknown key; allowed: ${allowed.join(", ")}`);
  }
}

function parseSource(file: string, name: string, raw: unknown): SourceDef {
  const path = `sources.${name}`;
  if (!NAME.test(name)) throw new CatalogError(file, path, "source names are lower_snake_case");
  if (!isRecord(raw)) throw new CatalogError(file, path, "expected an object");
  checkKeys(file, path, raw, ["fields", "idField", "timeField", "partitionKey", "description"]);
  if (!isRecord(raw.fields) || Object.keys(raw.fields).length === 0) {
    throw new CatalogError(file, `${path}.fields`, "expected an object of field name → type");
  }
  const fields: Record<string, FieldType> = {};
  for (const [f, t] of Object.entries(raw.fields)) {
    if (!NAME.test(f)) throw new CatalogError(file, `${path}.fields.${f}`, "field names are lower_snake_case");
    if (typeof t !== "string" || !Object.hasOwn(FieldTypes, t)) {
      throw new CatalogError(file, `${path}.fields.${f}`, `unknown type ${JSON.stringify(t)}; allowed: ${Object.keys(FieldTypes).join(", ")}`);
    }
    fields[f] = t as FieldType;
  }
  const role = (key: "idField" | "timeField" | "partitionKey", types: FieldType[]): string => {
    const v = raw[key];
    if (typeof v !== "string") throw new CatalogError(file, `${path}.${key}`, "expected a field name");
    const t = fields[v];
    if (t === undefined) throw new CatalogError(file, `${path}.${key}`, `unknown field ${JSON.stringify(v)}`);
    if (!types.includes(t)) throw new CatalogError(file, `${path}.${key}`, `field ${JSON.stringify(v)} is ${t}; expected ${types.join(" or ")}`);
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

function parseMetric(file: string, name: string, raw: unknown, sources: Map<string, SourceDef>): MetricDef {
  const path = `metrics.${name}`;
  if (!NAME.test(name)) throw new CatalogError(file, path, "metric names are lower_snake_case");
  if (!isRecord(raw)) throw new CatalogError(file, path, "expected an object");
  checkKeys(file, path, raw, ["source", "groupBy", "window", "aggregate", "description"]);
  const source = typeof raw.source === "string" ? sources.get(raw.source) : undefined;
  if (!source) throw new CatalogError(file, `${path}.source`, `unknown source ${JSON.stringify(raw.source)}; defined: ${[...sources.keys()].join(", ")}`);
  if (!Array.isArray(raw.groupBy) || raw.groupBy.length !== 1) {
    throw new CatalogError(file, `${path}.groupBy`, "expected a list of exactly one field (several fields come with the full catalog)");
  }
  for (const g of raw.groupBy) {
    if (typeof g !== "string" || !Object.hasOwn(source.fields, g)) {
      throw new CatalogError(file, `${path}.groupBy`, `unknown field ${JSON.stringify(g)} of source ${source.name}`);
    }
  }
  const windowMs = typeof raw.window === "string" ? parseWindow(raw.window) : undefined;
  if (windowMs === undefined) throw new CatalogError(file, `${path}.window`, `bad window ${JSON.stringify(raw.window)}; expected e.g. 30s, 1m, 5m, 1h, 1d`);
  if (typeof raw.aggregate !== "string" || !Object.hasOwn(Aggregates, raw.aggregate)) {
    throw new CatalogError(file, `${path}.aggregate`, `unknown aggregate ${JSON.stringify(raw.aggregate)}; allowed: ${Object.keys(Aggregates).join(", ")}`);
  }
  if (raw.description !== undefined && typeof raw.description !== "string") {
    throw new CatalogError(file, `${path}.description`, "expected a string");
  }
  return {
    name,
    source: source.name,
    groupBy: raw.groupBy as string[],
    windowMs,
    window: raw.window as string,
    aggregate: raw.aggregate as Aggregate,
    description: (raw.description as string | undefined) ?? "",
  };
}

/**
 * Validates a parsed catalog document.
 * @param file used in error messages only.
 * @throws CatalogError naming the file, the entry and the field.
 */
export function parseCatalog(doc: unknown, file: string): Catalog {
  if (!isRecord(doc)) throw new CatalogError(file, "(root)", "expected an object with sources and metrics");
  checkKeys(file, "(root)", doc, ["sources", "metrics"]);
  if (!isRecord(doc.sources)) throw new CatalogError(file, "sources", "expected an object");
  if (!isRecord(doc.metrics)) throw new CatalogError(file, "metrics", "expected an object");
  const sources = new Map<string, SourceDef>();
  for (const [n, s] of Object.entries(doc.sources)) sources.set(n, parseSource(file, n, s));
  const metrics = new Map<string, MetricDef>();
  for (const [n, m] of Object.entries(doc.metrics)) metrics.set(n, parseMetric(file, n, m, sources));
  return { sources, metrics };
}

/** Reads and validates a catalog file. @throws CatalogError */
export function loadCatalog(file: string): Catalog {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new CatalogError(file, "(file)", `cannot read: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new CatalogError(file, "(file)", `not valid JSON: ${(err as Error).message}`);
  }
  return parseCatalog(doc, file);
}

/** The metrics computed from one source. */
export function metricsOf(catalog: Catalog, source: string): MetricDef[] {
  return [...catalog.metrics.values()].filter((m) => m.source === source);
}

/** Start of the tumbling window holding `tsMs`. */
export function windowStart(tsMs: number, windowMs: number): number {
  return Math.floor(tsMs / windowMs) * windowMs;
}
