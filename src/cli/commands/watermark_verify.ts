/**
 * `lambdactl watermark verify [run]`: the serving node's independent check
 * that batch and speed meet exactly at a run's cut. Per partition: the
 * distinct events below the cut (recounted from the master dataset), the speed
 * actor's applied position, the events it should hold above the cut and those
 * it holds, and the gaps (events counted nowhere) and overlaps (counted
 * twice); then the batch run's own event count against the recount.
 *
 * It ends with "exact" (exit 0) or "NOT exact: ..." naming each problem
 * (exit 1). A run the serving node does not know exits 2.
 */
import { booleanFlag, COMMON_FLAGS, ADMIN_GRPC_FLAGS, runArg, timeoutFlagSpec, timeoutMs, grpcTarget } from "../args.js";
import { createAdminClient, namingRuns } from "../admin_grpc.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ExitCode, type ParsedCommand } from "../command.js";
import { failureJson, FailureCodes, type FailureJson } from "../failure.js";
import { keyValues, table } from "../render.js";
import type { VerifyResponse } from "../../gen/lambda/v1/admin.js";

/** The check recounts the master dataset, so it gets longer than other calls by default. */
export const VERIFY_TIMEOUT_MS = 120_000;

const spec: CommandSpec = {
  name: "watermark verify",
  summary: "check that batch and speed meet exactly at a run's cut: gaps and overlaps per partition",
  args: [{ name: "run", optional: true, description: "the run to check (default: the current watermark's run)" }],
  flags: { ...ADMIN_GRPC_FLAGS, timeout: timeoutFlagSpec(VERIFY_TIMEOUT_MS), ...COMMON_FLAGS },
  notes: [
    "columns: below cut: distinct events below the cut, recounted from the master dataset;",
    "applied: the speed actor's applied stream position; above expected: distinct events in",
    "[cut, applied] the actor should hold; above held: what it holds; gaps: events counted",
    "nowhere; overlaps: events counted twice. Exact means every gap and overlap is 0 and the",
    "batch run's event count equals the recount.",
    "",
    "exit status: 0 exact, 1 not exact (or the check failed), 2 a run the serving node does not know.",
    "",
    "examples:",
    "  lambdactl watermark verify",
    "  lambdactl watermark verify 3 --json",
  ].join("\n"),
};

/** The stable JSON shape of `watermark verify --json`. */
export interface VerifyJson {
  /** The run checked. */
  readonly run: number;
  /** True when the server says so and {@link VerifyJson.problems} is empty. */
  readonly exact: boolean;
  /** By partition. */
  readonly partitions: readonly {
    readonly partition: number;
    readonly cut: number;
    readonly belowCut: number;
    readonly appliedSeq: number;
    readonly aboveCutExpected: number;
    readonly aboveCutHeld: number;
    readonly gaps: number;
    readonly overlaps: number;
  }[];
  /** Distinct events the batch run says it covered, and the independent recount. */
  readonly batchEventsReported: number;
  readonly batchEventsRecounted: number;
  /** One sentence per problem, e.g. "partition 2: 3 gaps (events counted nowhere)"; empty when exact. */
  readonly problems: readonly string[];
  /** Present when not exact: code NOT_EXACT and the problems as one message (src/cli/failure.ts). */
  readonly error?: FailureJson["error"];
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** What is wrong with the seam, one sentence per problem; empty when nothing is. */
export function verifyProblems(r: VerifyResponse): string[] {
  const out: string[] = [];
  for (const p of [...r.partitions].sort((a, b) => a.partition - b.partition)) {
    if (p.gaps > 0) out.push(`partition ${p.partition}: ${plural(p.gaps, "gap", "gaps")} (events counted nowhere)`);
    if (p.overlaps > 0) out.push(`partition ${p.partition}: ${plural(p.overlaps, "overlap", "overlaps")} (events counted twice)`);
  }
  if (r.batchEventsReported !== r.batchEventsRecounted) {
    out.push(`batch run ${r.run} reports ${r.batchEventsReported} events, the recount finds ${r.batchEventsRecounted}`);
  }
  if (!r.exact && out.length === 0) out.push("the serving node reports the seam is not exact");
  return out;
}

/** The reply as `--json` prints it. */
export function verifyJson(r: VerifyResponse): VerifyJson {
  const problems = verifyProblems(r);
  return {
    run: r.run,
    exact: r.exact && problems.length === 0,
    partitions: [...r.partitions].sort((a, b) => a.partition - b.partition).map((p) => ({ ...p })),
    batchEventsReported: r.batchEventsReported,
    batchEventsRecounted: r.batchEventsRecounted,
    problems,
  };
}

/** The last line of `verify`: "exact: ..." or "NOT exact: ...". */
export function verdictLine(v: VerifyJson): string {
  return v.exact
    ? `exact: every archived event is counted once, in batch view ${v.run} or by the speed actor of its partition\n`
    : `NOT exact: ${v.problems.join("; ")}\n`;
}

/** The check as text: a heading, the partitions table, the batch counts, the verdict. */
export function renderVerify(v: VerifyJson): string {
  const parts = table(
    ["partition", "cut", "below cut", "applied", "above expected", "above held", "gaps", "overlaps"],
    v.partitions.map((p) => [p.partition, p.cut, p.belowCut, p.appliedSeq, p.aboveCutExpected, p.aboveCutHeld, p.gaps, p.overlaps]),
  );
  const counts = keyValues([
    ["batch events reported", v.batchEventsReported],
    ["batch events recounted", v.batchEventsRecounted],
  ]);
  return [`seam check at the cut of run ${v.run}\n`, parts, counts, verdictLine(v)].join("\n");
}

async function run(parsed: ParsedCommand, ctx: CliContext): Promise<ExitCode> {
  const which = runArg(spec.name, parsed, "run");
  const timeout = timeoutMs(spec.name, parsed, VERIFY_TIMEOUT_MS);
  const target = grpcTarget(parsed, ctx, "admin");
  using client = createAdminClient(target, { timeoutMs: timeout });
  // Only a run named on the command line makes a refusal a bad argument (exit 2).
  const call = client.verify(which);
  const out = verifyJson(await (which === undefined ? call : namingRuns(spec.name, call)));
  const failure = out.exact ? {} : failureJson({ code: FailureCodes.notExact, message: `NOT exact: ${out.problems.join("; ")}`, fields: { run: out.run } });
  ctx.stdout.write(booleanFlag(parsed, "json") ? JSON.stringify({ ...out, ...failure }, null, 2) + "\n" : renderVerify(out));
  return out.exact ? ExitCodes.ok : ExitCodes.failure;
}

/** `lambdactl watermark verify`. */
export const watermarkVerifyCommand: Command = { spec, run };
