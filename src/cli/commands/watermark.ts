/**
 * `lambdactl watermark [--watch]`: the batch watermark the serving node answers
 * at: which run, when it was published and by whom, what the batch views cover,
 * how long the run's phases took, and the cut (barrier stream sequence) of each
 * partition.
 *
 * `--watch` prints it, then again at every change, as the serving node's
 * WatchWatermark stream reports them (a KV watch on its side; nothing polls).
 * In a terminal each change clears the screen and redraws; into a pipe or file
 * each change is appended as a block (with `--json`: one JSON object per line).
 * Ctrl-C ends the watch with exit 0.
 *
 * The subcommands (history, diff, verify, rollback, timeline) live in their own
 * files and hang off this command.
 */
import { booleanFlag, COMMON_FLAGS, ADMIN_GRPC_FLAGS, timeoutMs, grpcTarget } from "../args.js";
import { createAdminClient } from "../admin_grpc.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ExitCode, type ParsedCommand } from "../command.js";
import { CommandFailedError, FailureCodes } from "../failure.js";
import { createServingClient } from "../grpc.js";
import { renderWatchFrame, renderWatermarkReply, watermarkJson } from "../watermark_view.js";
import { watermarkDiffCommand } from "./watermark_diff.js";
import { watermarkHistoryCommand } from "./watermark_history.js";
import { watermarkRollbackCommand } from "./watermark_rollback.js";
import { watermarkTimelineCommand } from "./watermark_timeline.js";
import { watermarkVerifyCommand } from "./watermark_verify.js";

export type { WatermarkJson } from "../watermark_view.js";

const spec: CommandSpec = {
  name: "watermark",
  summary: "the batch watermark answers are merged at: run, age, coverage, timings, cut per partition",
  args: [],
  flags: {
    watch: { type: "boolean", short: "w", description: "keep running: redraw at every change of the watermark (Ctrl-C stops)" },
    ...ADMIN_GRPC_FLAGS,
    ...COMMON_FLAGS,
  },
  notes: [
    "Before the first batch run there is no watermark; that is not an error (exit 0).",
    "",
    "--watch: in a terminal each change redraws the screen; into a pipe or a file each change is",
    "appended as a block, or with --json as one JSON object per line. Changes come from the serving",
    "node's watch of the watermark, not from polling. --timeout bounds only the wait to connect.",
    "",
    "examples:",
    "  lambdactl watermark",
    "  lambdactl watermark --watch",
    "  lambdactl watermark --watch --json | jq -c '.watermark.run'",
  ].join("\n"),
};

async function watch(parsed: ParsedCommand, ctx: CliContext): Promise<ExitCode> {
  const target = grpcTarget(parsed, ctx, "admin");
  const json = booleanFlag(parsed, "json");
  const tty = ctx.stdout.isTTY === true && !json;
  using client = createAdminClient(target, { timeoutMs: timeoutMs(spec.name, parsed) });
  const stop = ctx.interrupted();
  for await (const change of client.watchWatermark(stop)) {
    const now = ctx.now();
    ctx.stdout.write(json ? JSON.stringify(watermarkJson(change, now)) + "\n" : renderWatchFrame(change, now, tty));
  }
  if (stop.aborted) return ExitCodes.ok;
  throw new CommandFailedError(FailureCodes.streamEnded, `the serving node at ${target.address.value} ended the watch (is it shutting down?)`, { target: target.address.value });
}

async function run(parsed: ParsedCommand, ctx: CliContext): Promise<ExitCode> {
  if (booleanFlag(parsed, "watch")) return watch(parsed, ctx);
  const timeout = timeoutMs(spec.name, parsed);
  const target = grpcTarget(parsed, ctx, "query");
  using client = createServingClient(target, { timeoutMs: timeout });
  const r = await client.getWatermark();
  const now = ctx.now();
  ctx.stdout.write(booleanFlag(parsed, "json") ? JSON.stringify(watermarkJson(r, now), null, 2) + "\n" : renderWatermarkReply(r, now));
  return ExitCodes.ok;
}

/** `lambdactl watermark` and its subcommands. */
export const watermarkCommand: Command = {
  spec,
  run,
  subcommands: [watermarkHistoryCommand, watermarkDiffCommand, watermarkVerifyCommand, watermarkRollbackCommand, watermarkTimelineCommand],
};
