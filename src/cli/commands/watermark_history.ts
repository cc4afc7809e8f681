/**
 * `lambdactl watermark history [--limit N]`: every batch run, newest first:
 * its outcome (published, failed and why, rolled back), its cut on each
 * partition, the batch view version, the events and event-time range it
 * covers, when it started and how long it and each phase took, and which
 * coordinator ran it.
 */
import { booleanFlag, COMMON_FLAGS, ADMIN_GRPC_FLAGS, positiveIntFlag, timeoutMs, grpcTarget } from "../args.js";
import { createAdminClient } from "../admin_grpc.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ExitCode, type ParsedCommand } from "../command.js";
import { renderRunsTable, runJson, type RunJson } from "../run_view.js";

/** How many runs `watermark history` shows unless `--limit` says otherwise. */
export const DEFAULT_HISTORY_LIMIT = 20;

const spec: CommandSpec = {
  name: "watermark history",
  summary: "every batch run, newest first: outcome, cuts, coverage, phase durations, coordinator",
  args: [],
  flags: {
    limit: { type: "string", value: "<n>", description: `show at most this many runs, the newest (default ${DEFAULT_HISTORY_LIMIT})` },
    ...ADMIN_GRPC_FLAGS,
    ...COMMON_FLAGS,
  },
  notes: [
    "outcomes: running, published, failed (detail says why), rolled_back (published, then the",
    "watermark was rolled back before it; detail says by which rollback).",
    "Up to 8 partitions, each has its own cut column (p0, p1, ...); beyond that the cuts are one",
    "column of partition:cut pairs.",
    "",
    "examples:",
    "  lambdactl watermark history",
    "  lambdactl watermark history --limit 5 --json",
  ].join("\n"),
};

/** The stable JSON shape of `watermark history --json`. */
export interface HistoryJson {
  /** Newest first. */
  readonly runs: readonly RunJson[];
}

async function run(parsed: ParsedCommand, ctx: CliContext): Promise<ExitCode> {
  const limit = positiveIntFlag(spec.name, parsed, "limit", DEFAULT_HISTORY_LIMIT);
  const timeout = timeoutMs(spec.name, parsed);
  const target = grpcTarget(parsed, ctx, "admin");
  using client = createAdminClient(target, { timeoutMs: timeout });
  const { runs } = await client.listRuns(limit);
  const out: HistoryJson = { runs: runs.map(runJson) };
  ctx.stdout.write(booleanFlag(parsed, "json") ? JSON.stringify(out, null, 2) + "\n" : renderRunsTable(runs));
  return ExitCodes.ok;
}

/** `lambdactl watermark history`. */
export const watermarkHistoryCommand: Command = { spec, run };
