/**
 * `lambdactl watermark timeline --out FILE.svg [--limit N]`: writes a picture
 * of the last runs (see ../timeline_svg.ts): per partition, each run's cut,
 * the stream head, the speed actor's applied position and the archiver's, so
 * a person sees at a glance where batch ends and how far speed runs ahead.
 * It reads GetStatus and ListRuns; the SVG is self-contained and opens in a browser.
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { booleanFlag, COMMON_FLAGS, ADMIN_GRPC_FLAGS, positiveIntFlag, stringFlag, timeoutMs, UsageError, grpcTarget } from "../args.js";
import { createAdminClient } from "../admin_grpc.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ExitCode, type ParsedCommand } from "../command.js";
import { buildTimelineSvg, type TimelineData } from "../timeline_svg.js";
import type { GetStatusResponse, RunInfo } from "../../gen/lambda/v1/admin.js";

/** How many runs the timeline shows unless `--limit` says otherwise. */
export const DEFAULT_TIMELINE_LIMIT = 10;

const spec: CommandSpec = {
  name: "watermark timeline",
  summary: "write an SVG picture: per partition the runs' cuts, stream head, speed and archiver positions",
  args: [],
  flags: {
    out: { type: "string", value: "<file.svg>", description: "the file to write (required; replaced if it exists)" },
    limit: { type: "string", value: "<n>", description: `show the cuts of at most this many runs, the newest (default ${DEFAULT_TIMELINE_LIMIT})` },
    ...ADMIN_GRPC_FLAGS,
    ...COMMON_FLAGS,
  },
  notes: [
    "The picture is one self-contained SVG file (no scripts, fonts or links): open it in a browser.",
    "Each partition is a lane on one scale of stream sequences: a labelled mark per run's cut (the",
    "current watermark's in red), the batch region up to the current cut, the speed region up to",
    "the speed actor's applied position, the stream head (triangle), applied (circle) and the",
    "archiver's flushed position (square).",
    "",
    "example:",
    "  lambdactl watermark timeline --out timeline.svg --limit 5",
  ].join("\n"),
};

/** The stable JSON shape of `watermark timeline --json` (the SVG itself goes to the file). */
export interface TimelineJson {
  /** Absolute path of the file written. */
  readonly out: string;
  readonly partitions: number;
  /** The runs drawn, oldest first. */
  readonly runs: readonly number[];
  /** The current watermark's run; 0 when none. */
  readonly currentRun: number;
}

/** What the picture shows, from the two replies. */
export function timelineData(status: GetStatusResponse, runs: readonly RunInfo[], title: string, generatedAt: Date): TimelineData {
  return {
    lanes: status.partitions.map((p) => ({ partition: p.partition, node: p.node, streamHead: p.streamHead, appliedSeq: p.appliedSeq, archivedSeq: p.archivedSeq })),
    runs: runs.map((r) => ({ run: r.run, outcome: r.outcome, cuts: r.cuts.map((c) => ({ partition: c.partition, seq: c.seq })) })),
    currentRun: status.watermarkRun,
    title,
    generatedAt,
  };
}

async function run(parsed: ParsedCommand, ctx: CliContext): Promise<ExitCode> {
  const outFlag = stringFlag(parsed, "out");
  if (outFlag === undefined || outFlag.trim() === "") throw new UsageError(spec.name, "missing flag --out <file.svg> (where to write the picture)");
  const limit = positiveIntFlag(spec.name, parsed, "limit", DEFAULT_TIMELINE_LIMIT);
  const timeout = timeoutMs(spec.name, parsed);
  const target = grpcTarget(parsed, ctx, "admin");
  using client = createAdminClient(target, { timeoutMs: timeout });
  const [status, { runs }] = await Promise.all([client.getStatus(), client.listRuns(limit)]);
  const data = timelineData(status, runs, target.address.value, new Date(ctx.now()));
  const out = resolve(ctx.cwd, outFlag);
  writeFileSync(out, buildTimelineSvg(data));
  const drawn = [...data.runs].map((r) => r.run).sort((a, b) => a - b);
  const summary: TimelineJson = { out, partitions: data.lanes.length, runs: drawn, currentRun: data.currentRun };
  ctx.stdout.write(
    booleanFlag(parsed, "json")
      ? JSON.stringify(summary, null, 2) + "\n"
      : `wrote ${out}: ${summary.partitions} partitions, ${drawn.length} runs (${drawn.join(", ") || "none"}), current run ${summary.currentRun || "none"}\n`,
  );
  return ExitCodes.ok;
}

/** `lambdactl watermark timeline`. */
export const watermarkTimelineCommand: Command = { spec, run };
