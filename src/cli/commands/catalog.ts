/**
 * `lambdactl catalog validate <file>`: checks a catalog file on this machine
 * with the same parser every role uses at start (loadCatalog), so a change can
 * be checked before it is deployed. Needs no cluster.
 *
 * A catalog that is wrong is a failed check, not a bad command line: it prints
 * `lambdactl: <file>: <path>: <reason>` (the entry, e.g.
 * metrics.revenue.aggregates.total.sum, and what was wrong and allowed) and
 * exits 1. Only a missing or unknown argument exits 2.
 */
import { resolve } from "node:path";
import { booleanFlag, COMMON_FLAGS, requiredArg } from "../args.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ParsedCommand } from "../command.js";
import { catalogJson, renderMetricsTable, type MetricJson, type SourceJson } from "../metric_view.js";
import { loadCatalog } from "../../core/catalog.js";
import { CatalogError } from "../../core/errors.js";

const spec: CommandSpec = {
  name: "catalog",
  summary: "check a catalog file locally, as every role will read it (no cluster needed)",
  args: [
    { name: "action", choices: ["validate"], description: "parse and validate <file>; print its metrics, or the first error" },
    { name: "file", description: "catalog JSON file, e.g. catalog/catalog.json" },
  ],
  flags: { ...COMMON_FLAGS },
  notes: [
    "exit status: 0 when the catalog is valid, 1 when it is not (the message names the file, the",
    "entry and the reason), 2 for a bad command line.",
    "",
    "example:",
    "  lambdactl catalog validate catalog/catalog.json",
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
  | {
      readonly ok: false;
      readonly file: string;
      /** The entry at fault, e.g. "metrics.article_views.window", or "(file)" when it cannot be read or is not JSON. */
      readonly path: string;
      readonly reason: string;
    };

/** The valid outcome as text: the counts, then the metrics table. */
export function renderValid(sources: number, metrics: readonly MetricJson[]): string {
  const counts = `ok: ${sources} sources, ${metrics.length} metrics\n`;
  return metrics.length === 0 ? counts : `${counts}\n${renderMetricsTable(metrics)}`;
}

async function run(parsed: ParsedCommand, ctx: CliContext) {
  const file = requiredArg(parsed, "file");
  const json = booleanFlag(parsed, "json");
  let out: CatalogValidateJson;
  try {
    out = { ok: true, file, ...catalogJson(loadCatalog(resolve(ctx.cwd, file))) };
  } catch (err) {
    if (!(err instanceof CatalogError)) throw err;
    // Named as the operator wrote it, not as the absolute path it was read from.
    out = { ok: false, file, path: err.path, reason: err.reason };
    if (json) ctx.stdout.write(JSON.stringify(out, null, 2) + "\n");
    ctx.stderr.write(`lambdactl: ${file}: ${err.path}: ${err.reason}\n`);
    return ExitCodes.failure;
  }
  ctx.stdout.write(json ? JSON.stringify(out, null, 2) + "\n" : renderValid(out.sources.length, out.metrics));
  return ExitCodes.ok;
}

/** `lambdactl catalog validate`. */
export const catalogCommand: Command = { spec, run };
