/**
 * `lambdactl watermark diff <from> <to>`: what lies between the cuts of two
 * runs, per partition (stream positions, and the archived events among them),
 * and what changed between their batch views, per metric (keys, and (key,
 * window) cells added, removed or changed).
 *
 * Run numbers are checked here (positive integers, from not after to); whether
 * the runs exist is the serving node's to say, and its refusal exits 2.
 */
import { booleanFlag, COMMON_FLAGS, ADMIN_GRPC_FLAGS, requiredRunArg, timeoutMs, UsageError, grpcTarget } from "../args.js";
import { createAdminClient, namingRuns } from "../admin_grpc.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ExitCode, type ParsedCommand } from "../command.js";
import { table } from "../render.js";
import type { DiffRunsResponse } from "../../gen/lambda/v1/admin.js";

const spec: CommandSpec = {
  name: "watermark diff",
  summary: "between two runs: positions and events per partition, changed keys and windows per metric",
  args: [
    { name: "from", description: "the earlier run, e.g. 3 (see `lambdactl watermark history`)" },
    { name: "to", description: "the later run, e.g. 4" },
  ],
  flags: { ...ADMIN_GRPC_FLAGS, ...COMMON_FLAGS },
  notes: [
    "positions: stream positions between the two cuts (events, barriers, duplicate copies);",
    "events: the archived events among them. A metric's keys changed: keys with at least one",
    "changed window; windows changed: (key, window) cells added, removed or changed.",
    "",
    "exit status 2 also when the serving node does not know a run.",
    "",
    "example:",
    "  lambdactl watermark diff 3 4",
  ].join("\n"),
};

/** The stable JSON shape of `watermark diff --json`. */
export interface DiffJson {
  readonly fromRun: number;
  readonly toRun: number;
  /** By partition. */
  readonly partitions: readonly {
    readonly partition: number;
    readonly fromCut: number;
    readonly toCut: number;
    readonly positions: number;
    readonly events: number;
  }[];
  /** Sums over the partitions. */
  readonly totals: { readonly positions: number; readonly events: number };
  /** By metric name. */
  readonly metrics: readonly { readonly metric: string; readonly keysChanged: number; readonly windowsChanged: number }[];
}

/** The reply as `--json` prints it. */
export function diffJson(r: DiffRunsResponse): DiffJson {
  const partitions = [...r.partitions].sort((a, b) => a.partition - b.partition).map((p) => ({ ...p }));
  return {
    fromRun: r.fromRun,
    toRun: r.toRun,
    partitions,
    totals: { positions: partitions.reduce((n, p) => n + p.positions, 0), events: partitions.reduce((n, p) => n + p.events, 0) },
    metrics: [...r.metrics].sort((a, b) => (a.metric < b.metric ? -1 : a.metric > b.metric ? 1 : 0)).map((m) => ({ ...m })),
  };
}

/** The diff as text: a heading, the partitions table with its totals, the metrics table. */
export function renderDiff(d: DiffJson): string {
  const parts = table(
    ["partition", "from cut", "to cut", "positions", "events"],
    d.partitions.map((p) => [p.partition, p.fromCut, p.toCut, p.positions, p.events]),
  );
  const metrics =
    d.metrics.length === 0
      ? "no metric changed\n"
      : table(["metric", "keys changed", "windows changed"], d.metrics.map((m) => [m.metric, m.keysChanged, m.windowsChanged]));
  return [
    `run ${d.fromRun} -> run ${d.toRun}\n`,
    parts,
    `total: ${d.totals.positions} stream positions, ${d.totals.events} events between the cuts\n`,
    metrics,
  ].join("\n");
}

async function run(parsed: ParsedCommand, ctx: CliContext): Promise<ExitCode> {
  const from = requiredRunArg(spec.name, parsed, "from");
  const to = requiredRunArg(spec.name, parsed, "to");
  if (from > to) throw new UsageError(spec.name, `<from> must not be after <to> (from ${from}, to ${to}); did you mean \`lambdactl watermark diff ${to} ${from}\`?`);
  const timeout = timeoutMs(spec.name, parsed);
  const target = grpcTarget(parsed, ctx, "admin");
  using client = createAdminClient(target, { timeoutMs: timeout });
  const out = diffJson(await namingRuns(spec.name, client.diffRuns(from, to)));
  ctx.stdout.write(booleanFlag(parsed, "json") ? JSON.stringify(out, null, 2) + "\n" : renderDiff(out));
  return ExitCodes.ok;
}

/** `lambdactl watermark diff`. */
export const watermarkDiffCommand: Command = { spec, run };
