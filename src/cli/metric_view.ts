/**
 * Metric definitions as lambdactl shows them, pure: one shape for what the
 * serving node describes (`metrics`) and what a local catalog file holds
 * (`catalog validate`), so both print the same table and the same JSON.
 */
import { filterToJson } from "../core/filter.js";
import type { Catalog, MetricDef, SourceDef } from "../core/catalog.js";
import type { MetricInfo } from "../gen/lambda/v1/serving.js";
import { ABSENT, keyValues, table } from "./render.js";

/** One aggregate of a metric. */
export interface AggregateJson {
  readonly name: string;
  /** count, sum, min, max, avg, distinct or quantiles. */
  readonly kind: string;
  /** The field aggregated; null for count. */
  readonly field: string | null;
}

/** A metric as `--json` prints it. */
export interface MetricJson {
  readonly name: string;
  readonly source: string;
  /** Fields whose values form the key, in order; empty for a global metric. */
  readonly groupBy: readonly string[];
  /** Tumbling window as in the catalog, e.g. "1m". */
  readonly window: string;
  /** The first one is what queries answer by default. */
  readonly aggregates: readonly AggregateJson[];
  /** The filter in the catalog's JSON form; null when every event counts. */
  readonly filter: unknown;
  readonly description: string;
  /**
   * From a serving node only (absent for a catalog file): the fingerprint of the definition
   * queries answer with now (null until a run computed the metric), the one the next batch
   * run computes (null when the catalog dropped the metric), and what that means.
   */
  readonly definition?: string | null;
  readonly nextDefinition?: string | null;
  readonly state?: MetricState;
}

/** Where a metric stands between the watermark and the catalog (core/definitions). */
export type MetricState = "current" | "added" | "redefined" | "removed";

const STATE_TEXT: Record<MetricState, string> = {
  current: "current",
  added: "added: answers from the next batch run on",
  redefined: "redefined: answers use the watermark run's definition until the next batch run",
  removed: "removed: answers until the next batch run",
};

function metricState(definition: string, next: string): MetricState {
  if (definition === "") return "added";
  if (next === "") return "removed";
  return definition === next ? "current" : "redefined";
}

/** A source as `catalog validate --json` prints it. */
export interface SourceJson {
  readonly name: string;
  /** Field name → type as in the catalog ("string", "int?", ...). */
  readonly fields: Readonly<Record<string, string>>;
  readonly idField: string;
  readonly timeField: string;
  readonly partitionKey: string;
}

/**
 * The filter text of a MetricInfo as JSON; the text itself when it is not JSON
 * (so a serving node that writes something else still shows what it wrote).
 */
function parseFilterJson(text: string): unknown {
  if (text === "") return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Shown as the server sent it; this is display only, nothing depends on its shape.
    return text;
  }
}

/** A metric as the serving node describes it. */
export function metricFromInfo(m: MetricInfo): MetricJson {
  return {
    name: m.name,
    source: m.source,
    groupBy: [...m.groupBy],
    window: m.window,
    aggregates: m.aggregates.map((a) => ({ name: a.name, kind: a.kind, field: a.field === "" ? null : a.field })),
    filter: parseFilterJson(m.filterJson),
    description: m.description,
    definition: m.definition || null,
    nextDefinition: m.nextDefinition || null,
    state: metricState(m.definition, m.nextDefinition),
  };
}

/** A metric of a parsed catalog. */
export function metricFromDef(m: MetricDef): MetricJson {
  return {
    name: m.name,
    source: m.source,
    groupBy: [...m.groupBy],
    window: m.window,
    aggregates: m.aggregates.map((a) => ({ name: a.name, kind: a.kind, field: a.field })),
    filter: m.filter === null ? null : filterToJson(m.filter),
    description: m.description,
  };
}

/** A source of a parsed catalog. */
export function sourceFromDef(s: SourceDef): SourceJson {
  const fields = Object.fromEntries(Object.entries(s.fields).map(([n, f]) => [n, `${f.type}${f.optional ? "?" : ""}`]));
  return { name: s.name, fields, idField: s.idField, timeField: s.timeField, partitionKey: s.partitionKey };
}

/** Every source and metric of a parsed catalog, in file order. */
export function catalogJson(c: Catalog): { readonly sources: SourceJson[]; readonly metrics: MetricJson[] } {
  return { sources: [...c.sources.values()].map(sourceFromDef), metrics: [...c.metrics.values()].map(metricFromDef) };
}

/** An aggregate as one word: `views:count`, `revenue:sum(amount)`. */
export function aggregateText(a: AggregateJson): string {
  return `${a.name}:${a.kind}${a.field === null ? "" : `(${a.field})`}`;
}

/** A filter on one line: its catalog JSON, or "-" when there is none. */
export function filterText(filter: unknown): string {
  if (filter === null) return ABSENT;
  return typeof filter === "string" ? filter : JSON.stringify(filter);
}

/** Metrics as a table: name, source, group by, window, aggregates, filter, and the state when a serving node said it. */
export function renderMetricsTable(metrics: readonly MetricJson[]): string {
  const withState = metrics.some((m) => m.state !== undefined);
  const rows = metrics.map((m) => [
    m.name,
    m.source,
    m.groupBy.join(",") || "(global)",
    m.window,
    m.aggregates.map(aggregateText).join(" "),
    filterText(m.filter),
    ...(withState ? [m.state ?? ABSENT] : []),
  ]);
  return table(["name", "source", "group by", "window", "aggregates", "filter", ...(withState ? ["state"] : [])], rows);
}

/** The fields a filter (in catalog JSON form) reads. */
export function filterFieldNames(filter: unknown, out: string[] = []): string[] {
  if (Array.isArray(filter)) {
    for (const f of filter) filterFieldNames(f, out);
  } else if (typeof filter === "object" && filter !== null) {
    for (const [k, v] of Object.entries(filter)) {
      if (k === "field" && typeof v === "string") {
        if (!out.includes(v)) out.push(v);
      } else filterFieldNames(v, out);
    }
  }
  return out;
}

/**
 * One metric in detail: its settings, its aggregates, and its source's fields
 * with what the metric uses each one for.
 */
export function renderMetricDetail(m: MetricJson, sourceFields: Readonly<Record<string, string>>): string {
  const settings = keyValues([
    ["metric", m.name],
    ["description", m.description || ABSENT],
    ["source", m.source],
    ["group by", m.groupBy.length > 0 ? m.groupBy.join(", ") : "(none: a global metric)"],
    ["window", m.window],
    ["filter", filterText(m.filter)],
    ...(m.state === undefined
      ? []
      : ([
          ["state", STATE_TEXT[m.state]],
          ["definition", m.definition ?? ABSENT],
          ["next definition", m.nextDefinition ?? ABSENT],
        ] as [string, string][])),
  ]);
  const aggregates = table(
    ["aggregate", "kind", "field"],
    m.aggregates.map((a, i) => [`${a.name}${i === 0 ? " (default)" : ""}`, a.kind, a.field ?? ABSENT]),
  );
  const filtered = filterFieldNames(m.filter);
  const usedBy = (f: string) =>
    [
      ...(m.groupBy.includes(f) ? ["group by"] : []),
      ...m.aggregates.filter((a) => a.field === f).map((a) => `aggregate ${a.name}`),
      ...(filtered.includes(f) ? ["filter"] : []),
    ].join(", ") || ABSENT;
  const fields = table(["source field", "type", "used by"], Object.entries(sourceFields).map(([f, t]) => [f, t, usedBy(f)]));
  return `${settings}\n${aggregates}\n${fields}`;
}
