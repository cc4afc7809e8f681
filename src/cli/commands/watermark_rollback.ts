/**
 * `lambdactl watermark rollback <run>`: serving nodes answer at an older run
 * again and speed actors rebuild what lies above its cut. The coordinator does
 * it with a compare-and-set, so it cannot race a run in progress; it is
 * recorded in the history, and the next batch run moves forward as usual.
 *
 * The serving node refuses (exit 2, its message printed) an unknown run, one
 * not before the current, and one whose events the stream or the master
 * dataset no longer holds.
 */
import { booleanFlag, COMMON_FLAGS, ADMIN_GRPC_FLAGS, requiredRunArg, timeoutFlagSpec, timeoutMs, grpcTarget } from "../args.js";
import { createAdminClient, namingRuns } from "../admin_grpc.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ExitCode, type ParsedCommand } from "../command.js";
import { renderWatermark, watermarkObjectJson, type WatermarkObjectJson } from "../watermark_view.js";
import type { RollbackResponse } from "../../gen/lambda/v1/admin.js";

/** A rollback waits for the coordinator's compare-and-set, after any run in progress. */
export const ROLLBACK_TIMEOUT_MS = 60_000;

const spec: CommandSpec = {
  name: "watermark rollback",
  summary: "answer at an older run again; speed actors rebuild above its cut (recorded in the history)",
  args: [{ name: "run", description: "the run to go back to, e.g. 3 (see `lambdactl watermark history`)" }],
  flags: { ...ADMIN_GRPC_FLAGS, timeout: timeoutFlagSpec(ROLLBACK_TIMEOUT_MS), ...COMMON_FLAGS },
  notes: [
    "The next batch run moves forward from there as usual. Refused (exit 2, with the serving",
    "node's reason) for an unknown run, a run not before the current one, or a run whose events",
    "the stream or the master dataset no longer holds.",
    "",
    "example:",
    "  lambdactl watermark rollback 3",
  ].join("\n"),
};

/** The stable JSON shape of `watermark rollback --json`. */
export interface RollbackJson {
  /** The run the watermark was at before. */
  readonly rolledBackFrom: number;
  /** The run it is at now. */
  readonly run: number;
  /** The watermark now; null only if the server sent none. */
  readonly watermark: WatermarkObjectJson | null;
}

/** The reply as `--json` prints it. */
export function rollbackJson(r: RollbackResponse, nowMs: number): RollbackJson {
  return { rolledBackFrom: r.rolledBackFrom, run: r.watermark?.run ?? 0, watermark: r.watermark ? watermarkObjectJson(r.watermark, nowMs) : null };
}

/** The rollback as text: what it did, then the watermark now. */
export function renderRollback(r: RollbackResponse, nowMs: number): string {
  const head = `rolled back from run ${r.rolledBackFrom} to run ${r.watermark?.run ?? "?"}; the watermark now:\n`;
  return r.watermark ? `${head}\n${renderWatermark(r.watermark, nowMs)}` : head;
}

async function run(parsed: ParsedCommand, ctx: CliContext): Promise<ExitCode> {
  const to = requiredRunArg(spec.name, parsed, "run");
  const timeout = timeoutMs(spec.name, parsed, ROLLBACK_TIMEOUT_MS);
  const target = grpcTarget(parsed, ctx, "admin");
  using client = createAdminClient(target, { timeoutMs: timeout });
  const r = await namingRuns(spec.name, client.rollback(to));
  const now = ctx.now();
  ctx.stdout.write(booleanFlag(parsed, "json") ? JSON.stringify(rollbackJson(r, now), null, 2) + "\n" : renderRollback(r, now));
  return ExitCodes.ok;
}

/** `lambdactl watermark rollback`. */
export const watermarkRollbackCommand: Command = { spec, run };
