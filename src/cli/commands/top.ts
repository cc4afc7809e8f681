/**
 * `lambdactl top <metric> --from <time> [--to <time>] [-k N]`: the k keys with
 * the highest value of one aggregate over a time range, ranked by the serving
 * node over the merged answers (batch view of the watermark run plus the speed
 * actors above its cuts), so the ranking is exact, not an estimate. Ties are
 * ranked by key; keys without a value come last. `--where field=value` keeps
 * only keys with those group-by values.
 *
 * Like `query`, the text output describes the metric to show times as times;
 * `--json` prints the values as the API gives them.
 */
import { grpcTarget,
  AGGREGATE_FLAGS,
  booleanFlag,
  COMMON_FLAGS,
  connectionFlags,
  fieldValuesFlag,
  GRPC_FLAGS,
  positiveIntFlag,
  quantileFlag,
  RANGE_FLAGS,
  rangeFlags,
  requiredArg,
  stringFlag,
  STRICT_FLAGS,
  timeoutMs,
} from "../args.js";
import {
  aggregateLabel,
  aggregateShape,
  answerJson,
  completenessJson,
  partialWarning,
  partitionJson,
  partsLegend,
  renderAnswers,
  renderProvenance,
  runLabel,
  UNKNOWN_SHAPE,
  type AggregateShape,
  type AnswerJson,
  type MissingJson,
  type PartitionJson,
} from "../answers.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ParsedCommand } from "../command.js";
import { createServingClient } from "../grpc.js";
import { TIME_FORMS } from "../time.js";
import type { TopKRequest, TopKResponse } from "../../gen/lambda/v1/serving.js";

/** How many keys `top` shows unless `-k` says otherwise. */
export const DEFAULT_TOP_K = 10;

const spec: CommandSpec = {
  name: "top",
  summary: "the k keys with the highest value of a metric over [from, to), ranked exactly",
  args: [{ name: "metric", description: "metric name from the catalog, e.g. article_views (see `lambdactl metrics`)" }],
  flags: {
    ...RANGE_FLAGS,
    k: { type: "string", value: "<n>", description: `how many keys (default ${DEFAULT_TOP_K}; the serving node allows up to 1000)` },
    where: { type: "string", multiple: true, value: "<field=value>", description: "only keys whose group-by field has this value (repeatable)" },
    ...AGGREGATE_FLAGS,
    ...STRICT_FLAGS,
    ...GRPC_FLAGS,
    ...COMMON_FLAGS,
  },
  notes: [
    `times: ${TIME_FORMS}.`,
    "Keys are ranked by the total, highest first; ties by key; keys without a value last.",
    "A partition whose speed actor is away is left out and named (PARTIAL), as in `lambdactl query`; --strict fails instead.",
    "",
    "examples:",
    "  lambdactl top article_views --from -1h",
    "  lambdactl top article_views --from -1d -k 3 --json",
    "  lambdactl top order_flow --where status=paid --aggregate last_at --from -1d",
  ].join("\n"),
};

/** The stable JSON shape of `top --json`. */
export interface TopJson {
  readonly metric: string;
  /** The aggregate ranked by (the metric's first one when `--aggregate` was not given). */
  readonly aggregate: string;
  /** The quantile asked with `--quantile`; null when not given. */
  readonly quantile: number | null;
  /** ISO 8601, as asked. */
  readonly from: string;
  readonly to: string;
  /** How many keys were asked for; `entries` may hold fewer. */
  readonly k: number;
  /** The `--where` filter: field → value ({} when none). */
  readonly where: Readonly<Record<string, string>>;
  readonly watermarkRun: number;
  /** Highest first; `rank` counts from 1. */
  readonly entries: readonly (AnswerJson & { readonly rank: number })[];
  readonly partitions: readonly PartitionJson[];
  readonly speedEventsHeld: number;
  /** Fingerprint of the metric definition answered with. */
  readonly definition: string;
  /** As in `query --json`. */
  readonly complete: boolean;
  readonly missing: readonly MissingJson[];
}

/** A top-k request as lambdactl sends it: always with a range. */
export type TopRequest = TopKRequest & { readonly from: Date; readonly to: Date };

/** The reply as `--json` prints it. */
export function topJson(r: TopKResponse, request: TopRequest): TopJson {
  return {
    metric: r.metric,
    aggregate: r.aggregate,
    quantile: request.quantile === 0 ? null : request.quantile,
    from: request.from.toISOString(),
    to: request.to.toISOString(),
    k: request.k,
    where: { ...request.where },
    watermarkRun: r.watermarkRun,
    entries: r.entries.map((e, i) => ({ rank: i + 1, ...answerJson(e) })),
    partitions: r.partitions.map(partitionJson),
    speedEventsHeld: r.speedEventsHeld,
    definition: r.definition,
    ...completenessJson(r),
  };
}

/**
 * The reply as text: a heading, the ranked table, the partition table.
 * @param shape what the aggregate's values are (times are shown as ISO 8601).
 */
export function renderTop(r: TopKResponse, request: TopRequest, shape: AggregateShape = UNKNOWN_SHAPE): string {
  const where = Object.entries(request.where).map(([f, v]) => `${f}=${v}`);
  const head =
    `${aggregateLabel(r.metric, r.aggregate, request.quantile)}, top ${request.k}${where.length > 0 ? ` where ${where.join(" ")}` : ""}, ` +
    `windows starting in [${request.from.toISOString()}, ${request.to.toISOString()}), ${runLabel(r.watermarkRun)}\n\n`;
  const ranked = r.entries.length === 0 ? "no keys with events in the range\n" : renderAnswers(r.entries, { ranked: true, shape }) + partsLegend(r.watermarkRun, shape);
  return `${head}${partialWarning(r)}${ranked}\n${renderProvenance(r)}`;
}

/**
 * The request a parsed command line asks for.
 * @throws UsageError for a bad time, range, `-k`, `--where` pair or quantile.
 */
export function topRequest(parsed: ParsedCommand, nowMs: number): TopRequest {
  const { fromMs, toMs } = rangeFlags(spec.name, parsed, nowMs);
  return {
    metric: requiredArg(parsed, "metric"),
    from: new Date(fromMs),
    to: new Date(toMs),
    k: positiveIntFlag(spec.name, parsed, "k", DEFAULT_TOP_K),
    aggregate: stringFlag(parsed, "aggregate") ?? "",
    quantile: quantileFlag(spec.name, parsed, "quantile"),
    where: fieldValuesFlag(spec.name, parsed, "where"),
    strict: booleanFlag(parsed, "strict"),
  };
}

async function run(parsed: ParsedCommand, ctx: CliContext) {
  const request = topRequest(parsed, ctx.now());
  const timeout = timeoutMs(spec.name, parsed);
  const target = grpcTarget(parsed, ctx, "query");
  using client = createServingClient(target, { timeoutMs: timeout });
  const r = await client.topK(request);
  if (booleanFlag(parsed, "json")) {
    ctx.stdout.write(JSON.stringify(topJson(r, request), null, 2) + "\n");
  } else {
    // The text shows times as times and says how the parts make the total: that needs the aggregate's kind and field type.
    ctx.stdout.write(renderTop(r, request, aggregateShape(await client.describeMetric(r.metric), r.aggregate)));
  }
  return ExitCodes.ok;
}

/** `lambdactl top`. */
export const topCommand: Command = { spec, run };
