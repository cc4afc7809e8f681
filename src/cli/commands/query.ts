/**
 * `lambdactl query <metric> <key> --from <time> [--to <time>]`: asks the
 * serving node for one metric and key over a time range and shows the merged
 * answer with how it was made: the batch part (the batch view of the watermark
 * run), the speed part (events above the cuts) and, per partition, the cut,
 * what the speed actor had applied and held, and its generation.
 */
import { COMMON_FLAGS, connectionFlags, GRPC_FLAGS, requiredArg, timeFlag, timeoutMs, UsageError, booleanFlag } from "../args.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ParsedCommand } from "../command.js";
import { resolveGrpcAddress } from "../connection.js";
import { createServingClient } from "../grpc.js";
import { formatNumber, formatTime, keyValues, table } from "../render.js";
import { TIME_FORMS } from "../time.js";
import type { QueryResponse } from "../../gen/lambda/v1/serving.js";

const spec: CommandSpec = {
  name: "query",
  summary: "one metric for one key over [from, to): the answer, its batch and speed parts, per partition",
  args: [
    { name: "metric", description: "metric name from the catalog, e.g. article_views" },
    { name: "key", description: "value of the metric's group-by field, e.g. an article id" },
  ],
  flags: {
    from: { type: "string", value: "<time>", description: "inclusive start: windows starting at or after it count (required)" },
    to: { type: "string", value: "<time>", description: "exclusive end: windows starting before it count (default now)" },
    ...GRPC_FLAGS,
    ...COMMON_FLAGS,
  },
  notes: [
    `times: ${TIME_FORMS}.`,
    "relative units: ms, s, m, h, d, w.",
    "",
    "example:",
    "  lambdactl query article_views a-1 --from -15m --to now",
    "  lambdactl query article_views a-1 --from 2026-06-08T14:00Z --to 2026-06-08T15:00Z --json",
  ].join("\n"),
};

/** The stable JSON shape of `query --json`. */
export interface QueryJson {
  readonly metric: string;
  readonly key: string;
  /** ISO 8601. */
  readonly from: string | null;
  readonly to: string | null;
  readonly total: number;
  readonly batchPart: number;
  readonly speedPart: number;
  readonly watermarkRun: number;
  readonly partitions: readonly {
    readonly partition: number;
    readonly cutSeq: number;
    readonly appliedSeq: number;
    readonly speedEventsHeld: number;
    readonly generation: number;
  }[];
}

/** The answer as `--json` prints it. */
export function queryJson(r: QueryResponse): QueryJson {
  return {
    metric: r.metric,
    key: r.key,
    from: r.from?.toISOString() ?? null,
    to: r.to?.toISOString() ?? null,
    total: r.total,
    batchPart: r.batchPart,
    speedPart: r.speedPart,
    watermarkRun: r.watermarkRun,
    partitions: r.partitions.map((p) => ({
      partition: p.partition,
      cutSeq: p.cutSeq,
      appliedSeq: p.appliedSeq,
      speedEventsHeld: p.speedEventsHeld,
      generation: p.generation,
    })),
  };
}

/** The answer as text: a summary block and the per-partition table. */
export function renderQuery(r: QueryResponse): string {
  const noRun = r.watermarkRun === 0;
  const head = `${r.metric} for key ${JSON.stringify(r.key)}, windows starting in [${formatTime(r.from)}, ${formatTime(r.to)})\n\n`;
  const summary = keyValues([
    ["total", formatNumber(r.total)],
    ["batch part", `${formatNumber(r.batchPart)}  (${noRun ? "no batch run yet" : `batch view of watermark run ${r.watermarkRun}`})`],
    ["speed part", `${formatNumber(r.speedPart)}  (speed actors, events ${noRun ? "not yet in any batch run" : "above the cuts"})`],
    ["watermark run", noRun ? "0 (none published yet)" : r.watermarkRun],
  ]);
  const rows = r.partitions.map((p) => [p.partition, p.cutSeq, p.appliedSeq, p.speedEventsHeld, p.generation]);
  return `${head}${summary}\n${table(["partition", "cut seq", "applied seq", "speed events held", "generation"], rows)}`;
}

async function run(parsed: ParsedCommand, ctx: CliContext) {
  const now = ctx.now();
  const metric = requiredArg(parsed, "metric");
  const key = requiredArg(parsed, "key");
  const fromMs = timeFlag(spec.name, parsed, "from", now);
  const toMs = timeFlag(spec.name, parsed, "to", now, "now");
  if (fromMs >= toMs) {
    throw new UsageError(spec.name, `--from must be before --to (from ${new Date(fromMs).toISOString()}, to ${new Date(toMs).toISOString()})`);
  }
  const timeout = timeoutMs(spec.name, parsed);
  const address = resolveGrpcAddress({ flags: connectionFlags(parsed), env: ctx.env, cwd: ctx.cwd });
  using client = createServingClient(address, { timeoutMs: timeout });
  const r = await client.query({ metric, key, from: new Date(fromMs), to: new Date(toMs) });
  ctx.stdout.write(booleanFlag(parsed, "json") ? JSON.stringify(queryJson(r), null, 2) + "\n" : renderQuery(r));
  return ExitCodes.ok;
}

/** `lambdactl query`. */
export const queryCommand: Command = { spec, run };
