/**
 * Metric definitions over time. A batch run records, in its watermark, the
 * definition of every metric it computed. Answers at watermark N use run N's
 * definitions, whatever the catalog says now:
 *   - a metric redefined since run N keeps answering as run N defined it, until
 *     a run computes the new definition (batch view N holds the old one);
 *   - a metric removed since keeps answering until a run without it publishes;
 *   - a metric added since has no batch view yet and is refused until a run
 *     computes it over the whole master dataset;
 *   - after a rollback to run N, answers use run N's definitions again.
 * The speed layer therefore computes the union: the watermark's definitions
 * (for the answers now) and the catalog's (for the runs to come).
 */
import { metricFingerprint, type Catalog, type MetricDef } from "./catalog.js";
import { InvalidQueryError, PreconditionError } from "./errors.js";
import type { Watermark } from "./watermark.js";

/** One metric definition and its fingerprint (core/catalog metricFingerprint, recorded when first computed). */
export interface Definition {
  readonly fingerprint: string;
  readonly metric: MetricDef;
}

/** What a watermark records of the catalog a run computed. */
export function recordedDefinitions(catalog: Catalog): Pick<Watermark, "metrics" | "definitions"> {
  const metrics = [...catalog.metrics.values()];
  return {
    metrics: Object.fromEntries(metrics.map((m) => [m.name, metricFingerprint(m)])),
    definitions: Object.fromEntries(metrics.map((m) => [m.name, m])),
  };
}

/** Where a metric stands between the watermark and the catalog. */
export interface MetricStanding {
  readonly name: string;
  /** The definition answers use now; null until a run has computed the metric. */
  readonly inForce: Definition | null;
  /** The definition the next run computes; null when the catalog no longer has the metric. */
  readonly next: Definition | null;
}

function catalogDefinition(catalog: Catalog, name: string): Definition | null {
  const m = catalog.metrics.get(name);
  return m ? { fingerprint: metricFingerprint(m), metric: m } : null;
}

/** The definition watermark `w` answers `name` with, or null when its run did not compute it (or did not record how). */
function watermarkDefinition(w: Watermark, name: string): Definition | null {
  const fingerprint = w.metrics?.[name];
  const metric = w.definitions?.[name];
  return fingerprint !== undefined && metric ? { fingerprint, metric } : null;
}

/** The standing of metric `name`, or null when neither the watermark nor the catalog knows it. */
export function standingOf(catalog: Catalog, w: Watermark | null, name: string): MetricStanding | null {
  const next = catalogDefinition(catalog, name);
  let inForce: Definition | null;
  if (!w) inForce = next; // before the first run there is only the speed layer, computing the catalog
  else if (!w.metrics) inForce = next; // a watermark from before definitions were recorded: the catalog's
  else {
    inForce = watermarkDefinition(w, name);
    // A run that recorded only fingerprints: its definition is the catalog's when they agree.
    if (!inForce && !w.definitions && next && w.metrics[name] === next.fingerprint) inForce = next;
  }
  if (!inForce && !next) return null;
  return { name, inForce, next };
}

/** Every metric the catalog or the watermark knows: the catalog's in file order, then those only the watermark has. */
export function standings(catalog: Catalog, w: Watermark | null): MetricStanding[] {
  const names = new Set([...catalog.metrics.keys(), ...Object.keys(w?.definitions ?? {})]);
  return [...names].map((n) => standingOf(catalog, w, n)!);
}

/** True when a run of `catalog` would compute other definitions than `w`'s run did (added, redefined or removed metrics). */
export function catalogDiffers(catalog: Catalog, w: Watermark): boolean {
  return standings(catalog, w).some((s) => s.inForce?.fingerprint !== s.next?.fingerprint);
}

/**
 * The definition answers at watermark `w` use for metric `name`.
 * @throws InvalidQueryError for a metric nobody defines; PreconditionError for
 *   one no run has computed as the catalog defines it yet
 */
export function definitionAt(catalog: Catalog, w: Watermark | null, name: string): Definition {
  if (!name) throw new InvalidQueryError("metric", "is required");
  const s = standingOf(catalog, w, name);
  if (!s) throw new InvalidQueryError("metric", `unknown metric ${JSON.stringify(name)}; defined: ${standings(catalog, w).map((x) => x.name).join(", ")}`);
  if (s.inForce) return s.inForce;
  const how = w?.metrics?.[name] === undefined ? "added" : "redefined";
  throw new PreconditionError(
    `metric ${name} was ${how} after batch run ${w!.run}: its batch views exist from the next run on (the coordinator starts one when it sees the new catalog; lambdactl run starts one now)`,
  );
}

/** The definitions the speed layer computes at `w`: the watermark's and the catalog's, once each. */
export function activeDefinitions(catalog: Catalog, w: Watermark | null): Definition[] {
  const byFingerprint = new Map<string, Definition>();
  for (const name of Object.keys(w?.definitions ?? {})) {
    const d = watermarkDefinition(w!, name);
    if (d) byFingerprint.set(d.fingerprint, d);
  }
  for (const name of catalog.metrics.keys()) {
    const d = catalogDefinition(catalog, name)!;
    byFingerprint.set(d.fingerprint, d);
  }
  return [...byFingerprint.values()];
}
