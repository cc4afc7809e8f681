/**
 * `lambdactl catalog`:
 *   - `validate <file>` checks a catalog file on this machine with the same
 *     parser every role uses (needs no cluster);
 *   - `apply <file>` makes it the running cluster's catalog, the next version
 *     in its catalog bucket, after the same checks and the check that the
 *     running catalog can take it (sources may only grow); every role picks it
 *     up without a restart and the coordinator runs a batch to adopt it;
 *   - `show` prints the catalog the cluster runs: version, origin, metrics.
 *
 * A catalog that is wrong is a failed check, not a bad command line: it prints
 * `lambdactl: <file>: <path>: <reason>` (the entry, e.g.
 * metrics.revenue.aggregates.total.sum, and what was wrong and allowed) and
 * exits 1. Only a missing or unknown argument exits 2.
 */
import { resolve } from "node:path";
import { booleanFlag, COMMON_FLAGS, connectionFlags, NATS_FLAGS, requiredArg, UsageError } from "../args.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ParsedCommand } from "../command.js";
import { resolveNatsTarget } from "../connection.js";
import { CommandFailedError, failureJson, FailureCodes, type FailureJson } from "../failure.js";
import { catalogJson, renderMetricsTable, type MetricJson, type SourceJson } from "../metric_view.js";
import { openCatalogBucket } from "../nats.js";
import { ABSENT, keyValues } from "../render.js";
import { readCatalogFile, type CatalogFile } from "../../core/catalog.js";
import { catalogChanges, type CatalogChanges } from "../../core/catalog_compat.js";
import { CatalogError } from "../../core/errors.js";
import { applyCatalog, CatalogRefusedError, catalogOf, readStoredCatalog } from "../../nats/catalog_store.js";

const spec: CommandSpec = {
  name: "catalog",
  summary: "validate a catalog file, apply it to the running cluster, or show the cluster's catalog",
  args: [
    {
      name: "action",
      choices: ["validate", "apply", "show"],
      description: "validate <file> locally (no cluster); apply <file> to the running cluster; show the cluster's catalog",
    },
    { name: "file", optional: true, description: "catalog JSON file, e.g. catalog/catalog.json (validate, apply)" },
  ],
  flags: { ...NATS_FLAGS, ...COMMON_FLAGS },
  notes: [
    "exit status: 0 when the catalog is valid (and applied), 1 when it is not or the running catalog",
    "cannot take it (the message names the file, the entry and the reason), 2 for a bad command line.",
    "",
    "apply: metrics may be added, redefined or removed; sources may be added and may gain optional",
    "fields, nothing else (the master dataset holds their events). Every role picks the new version",
    "up at once; the coordinator runs a batch to compute the changed metrics over the whole history.",
    "Until it publishes, redefined and removed metrics answer as the last run computed them and added",
    "ones are refused (see `lambdactl metrics`). A restarted coordinator applies its catalog file",
    "again only when that file has changed.",
    "",
    "examples:",
    "  lambdactl catalog validate catalog/catalog.json",
    "  lambdactl catalog apply next-catalog.json",
    "  lambdactl catalog show --json",
  ].join("\n"),
};

/** The stable JSON shape of `catalog validate --json`: `ok` tells which of the two it is. */
export type CatalogValidateJson =
  | {
      readonly ok: true;
      /** The file as given on the command line. */
      readonly file: string;
      readonly sources: readonly SourceJson[];
      readonly metrics: readonly MetricJson[];
    }
  | ({
      readonly ok: false;
      readonly file: string;
      /** The entry at fault, e.g. "metrics.article_views.window", or "(file)" when it cannot be read or is not JSON. */
      readonly path: string;
      readonly reason: string;
    } & FailureJson);

/** The valid outcome as text: the counts, then the metrics table. */
export function renderValid(sources: number, metrics: readonly MetricJson[]): string {
  const counts = `ok: ${sources} sources, ${metrics.length} metrics\n`;
  return metrics.length === 0 ? counts : `${counts}\n${renderMetricsTable(metrics)}`;
}

/** The stable JSON shape of `catalog apply --json`. */
export interface CatalogApplyJson {
  readonly file: string;
  /** The cluster's catalog version after the call. */
  readonly version: number;
  /** False when the cluster already ran this catalog (nothing was written). */
  readonly changed: boolean;
  /** The version it replaced; null when the cluster had none. */
  readonly previousVersion: number | null;
  readonly changes: CatalogChanges;
}

/** The stable JSON shape of `catalog show --json`. */
export interface CatalogShowJson {
  readonly version: number;
  readonly fingerprint: string;
  readonly origin: string;
  /** ISO 8601. */
  readonly appliedAt: string;
  readonly sources: readonly SourceJson[];
  readonly metrics: readonly MetricJson[];
}

/** The outcome of an apply as text. */
export function renderApply(r: CatalogApplyJson): string {
  if (!r.changed) return `unchanged: the cluster already runs this catalog (version ${r.version})\n`;
  const list = (names: readonly string[]) => (names.length > 0 ? names.join(", ") : ABSENT);
  const c = r.changes;
  const rows = keyValues([
    ["version", `${r.version}${r.previousVersion === null ? "" : ` (was ${r.previousVersion})`}`],
    ["sources added", list(c.sourcesAdded)],
    ["fields added", list(c.fieldsAdded)],
    ["metrics added", list(c.metricsAdded)],
    ["metrics redefined", list(c.metricsRedefined)],
    ["metrics removed", list(c.metricsRemoved)],
  ]);
  const adopts = c.metricsAdded.length + c.metricsRedefined.length + c.metricsRemoved.length > 0;
  return `${rows}${adopts ? "\nThe coordinator runs a batch now to adopt it; `lambdactl metrics` shows where each metric stands.\n" : ""}`;
}

/** The cluster's catalog as text. */
export function renderShow(r: CatalogShowJson): string {
  const head = keyValues([
    ["version", r.version],
    ["fingerprint", r.fingerprint],
    ["applied by", r.origin],
    ["applied at", r.appliedAt],
    ["sources", r.sources.map((x) => x.name).join(", ")],
  ]);
  return `${head}\n${renderMetricsTable(r.metrics)}`;
}

/** Parses `file`, or reports its first error as lambdactl does (exit 1). */
function readFile(ctx: CliContext, file: string, json: boolean): CatalogFile | null {
  try {
    return readCatalogFile(resolve(ctx.cwd, file));
  } catch (err) {
    if (!(err instanceof CatalogError)) throw err;
    // Named as the operator wrote it, not as the absolute path it was read from.
    const message = `${file}: ${err.path}: ${err.reason}`;
    if (json) {
      const out: CatalogValidateJson = { ok: false, file, path: err.path, reason: err.reason, ...failureJson({ code: FailureCodes.invalidCatalog, message, fields: { file } }) };
      ctx.stdout.write(JSON.stringify(out, null, 2) + "\n");
    } else ctx.stderr.write(`lambdactl: ${message}\n`);
    return null;
  }
}

async function apply(parsed: ParsedCommand, ctx: CliContext, file: string, json: boolean) {
  const read = readFile(ctx, file, json);
  if (!read) return ExitCodes.failure;
  const target = resolveNatsTarget({ flags: connectionFlags(parsed), env: ctx.env, cwd: ctx.cwd });
  await using conn = await openCatalogBucket(target);
  const before = await readStoredCatalog(conn.kv);
  let applied;
  try {
    applied = await applyCatalog(conn.kv, { ...read, path: file }, { origin: `lambdactl catalog apply ${file}` });
  } catch (err) {
    if (!(err instanceof CatalogRefusedError)) throw err;
    const message = `${file} cannot replace the cluster's catalog version ${err.runningVersion}; nothing was applied`;
    if (json) {
      const fields = { file, runningVersion: err.runningVersion, problems: err.problems.map((p) => ({ path: p.path, reason: p.reason })) };
      ctx.stdout.write(JSON.stringify(failureJson({ code: FailureCodes.invalidCatalog, message, fields }), null, 2) + "\n");
      return ExitCodes.failure;
    }
    for (const p of err.problems) ctx.stderr.write(`lambdactl: ${file}: ${p.path}: ${p.reason}\n`);
    ctx.stderr.write(`lambdactl: ${message}\n`);
    return ExitCodes.failure;
  }
  const previous = before && applied.changed ? before.stored : null;
  // Unchanged: nothing changes. Changed: against the version it replaced (none for the first).
  const base = !applied.changed ? read.catalog : previous ? catalogOf(previous) : null;
  const out: CatalogApplyJson = {
    file,
    version: applied.stored.version,
    changed: applied.changed,
    previousVersion: previous?.version ?? null,
    changes: catalogChanges(base, read.catalog),
  };
  ctx.stdout.write(json ? JSON.stringify(out, null, 2) + "\n" : renderApply(out));
  return ExitCodes.ok;
}

async function show(parsed: ParsedCommand, ctx: CliContext, json: boolean) {
  const target = resolveNatsTarget({ flags: connectionFlags(parsed), env: ctx.env, cwd: ctx.cwd });
  await using conn = await openCatalogBucket(target);
  const current = await readStoredCatalog(conn.kv);
  if (!current) throw new CommandFailedError(FailureCodes.noCatalog, "the cluster has no catalog yet: a coordinator stores its catalog file when it starts");
  const s = current.stored;
  const out: CatalogShowJson = { version: s.version, fingerprint: s.fingerprint, origin: s.origin, appliedAt: new Date(s.appliedAtMs).toISOString(), ...catalogJson(catalogOf(s)) };
  ctx.stdout.write(json ? JSON.stringify(out, null, 2) + "\n" : renderShow(out));
  return ExitCodes.ok;
}

async function run(parsed: ParsedCommand, ctx: CliContext) {
  const action = requiredArg(parsed, "action");
  const json = booleanFlag(parsed, "json");
  if (action === "show") {
    if (parsed.args.file !== undefined) throw new UsageError(spec.name, "show takes no file: it prints the catalog the cluster runs");
    return show(parsed, ctx, json);
  }
  const file = parsed.args.file;
  if (file === undefined) throw new UsageError(spec.name, `${action} needs a catalog file, e.g. lambdactl catalog ${action} catalog/catalog.json`);
  if (action === "apply") return apply(parsed, ctx, file, json);
  const read = readFile(ctx, file, json);
  if (!read) return ExitCodes.failure;
  const out: CatalogValidateJson = { ok: true, file, ...catalogJson(read.catalog) };
  ctx.stdout.write(json ? JSON.stringify(out, null, 2) + "\n" : renderValid(out.sources.length, out.metrics));
  return ExitCodes.ok;
}

/** `lambdactl catalog`. */
export const catalogCommand: Command = { spec, run };
