/**
 * Which catalog changes a running cluster can take. Metrics may change freely:
 * each definition is versioned (core/definitions). Sources may not, except by
 * growing: the master dataset already holds their events, partitioned by the
 * partition key, deduplicated by the id, in columns of the declared types.
 *   - a new source: fine (new master table);
 *   - a new optional field: fine (a Nullable column; older events read null,
 *     which is what optional means);
 *   - anything else about an existing source (a new required field, a removed
 *     field, a changed type or optionality, another id, time or partition-key
 *     field, a removed source) would misread or misroute what is stored.
 */
import { metricFingerprint, type Catalog, type SourceDef } from "./catalog_types.js";

/** One reason `next` cannot replace `current`, naming the entry like a CatalogError path. */
export interface Incompatibility {
  readonly path: string;
  readonly reason: string;
}

const typeText = (f: { type: string; optional: boolean }) => `${f.type}${f.optional ? "?" : ""}`;

function sourceChanges(current: SourceDef, next: SourceDef): Incompatibility[] {
  const out: Incompatibility[] = [];
  const at = (rest: string) => `sources.${current.name}.${rest}`;
  for (const key of ["idField", "timeField", "partitionKey"] as const) {
    if (current[key] !== next[key]) {
      out.push({ path: at(key), reason: `was ${JSON.stringify(current[key])}, now ${JSON.stringify(next[key])}: stored events were ${key === "partitionKey" ? "partitioned" : key === "idField" ? "deduplicated" : "windowed"} by the old one` });
    }
  }
  for (const [name, was] of Object.entries(current.fields)) {
    const now = next.fields[name];
    if (!now) out.push({ path: at(`fields.${name}`), reason: "removed: stored events have it; keep it in the schema as it is" });
    else if (now.type !== was.type || now.optional !== was.optional) out.push({ path: at(`fields.${name}`), reason: `was ${typeText(was)}, now ${typeText(now)}: stored events hold the old type` });
  }
  for (const [name, now] of Object.entries(next.fields)) {
    if (!current.fields[name] && !now.optional) out.push({ path: at(`fields.${name}`), reason: `new and required: stored events lack it; declare it optional ("${now.type}?")` });
  }
  return out;
}

/** Why a cluster running `current` cannot take `next`; empty when it can. */
export function incompatibilities(current: Catalog, next: Catalog): Incompatibility[] {
  const out: Incompatibility[] = [];
  for (const [name, source] of current.sources) {
    const now = next.sources.get(name);
    if (!now) out.push({ path: `sources.${name}`, reason: "removed: the master dataset holds its events; keep the source (metrics over it may go)" });
    else out.push(...sourceChanges(source, now));
  }
  return out;
}

/** What a new catalog changes, by name: what `lambdactl catalog apply` reports. */
export interface CatalogChanges {
  readonly sourcesAdded: readonly string[];
  /** "source.field" */
  readonly fieldsAdded: readonly string[];
  readonly metricsAdded: readonly string[];
  readonly metricsRedefined: readonly string[];
  readonly metricsRemoved: readonly string[];
}

/** The changes from `current` (null: none yet) to `next`. */
export function catalogChanges(current: Catalog | null, next: Catalog): CatalogChanges {
  const sources = current?.sources ?? new Map<string, SourceDef>();
  const metrics = current?.metrics ?? new Map();
  return {
    sourcesAdded: [...next.sources.keys()].filter((s) => !sources.has(s)),
    fieldsAdded: [...next.sources.values()].flatMap((s) => {
      const was = sources.get(s.name);
      return was ? Object.keys(s.fields).filter((f) => !was.fields[f]).map((f) => `${s.name}.${f}`) : [];
    }),
    metricsAdded: [...next.metrics.keys()].filter((m) => !metrics.has(m)),
    metricsRedefined: [...next.metrics.values()].filter((m) => metrics.has(m.name) && metricFingerprint(metrics.get(m.name)!) !== metricFingerprint(m)).map((m) => m.name),
    metricsRemoved: [...metrics.keys()].filter((m) => !next.metrics.has(m)),
  };
}
