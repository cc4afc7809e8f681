/**
 * `lambdactl query <metric> [key...] --from <time> [--to <time>]`: asks the
 * serving node for one aggregate of a metric, for one or many keys, over a
 * time range, and shows each answer with how it was made: the batch part (the
 * batch view of the watermark run), the speed part (events above the cuts)
 * and, per partition, the cut, what the speed actor had applied and held, and
 * its generation. With `--series`, also the value of every window.
 *
 * Keys are named by position (the group-by value of a one-field metric) or by
 * `--group field=value` (any metric; the only way for several group-by fields).
 * A global metric (no group-by) needs neither. Which of these a metric takes is
 * the serving node's to check: it answers INVALID_ARGUMENT naming the field.
 *
 * The text output also asks the node to describe the metric, to know the
 * aggregate's kind (how the parts make the total) and whether its values are
 * times (min/max of a timestamp field, shown as ISO 8601). `--json` prints the
 * values as the API gives them (times in epoch ms) and needs no second call.
 */
import { grpcTarget,
  AGGREGATE_FLAGS,
  booleanFlag,
  COMMON_FLAGS,
  connectionFlags,
  fieldValuesFlag,
  GRPC_FLAGS,
  listArg,
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
  renderSeries,
  runLabel,
  UNKNOWN_SHAPE,
  windowJson,
  type AggregateShape,
  type AnswerJson,
  type MissingJson,
  type PartitionJson,
  type WindowJson,
} from "../answers.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ParsedCommand } from "../command.js";
import { createServingClient } from "../grpc.js";
import { formatTime } from "../render.js";
import { TIME_FORMS } from "../time.js";
import type { QueryRequest, QueryResponse } from "../../gen/lambda/v1/serving.js";

const spec: CommandSpec = {
  name: "query",
  summary: "a metric for one or many keys over [from, to): each answer, its batch and speed parts, per partition",
  args: [
    { name: "metric", description: "metric name from the catalog, e.g. article_views (see `lambdactl metrics`)" },
    { name: "key", variadic: true, description: "values of a one-field metric's group-by field, e.g. article ids; none for a global metric" },
  ],
  flags: {
    ...RANGE_FLAGS,
    group: { type: "string", multiple: true, value: "<field=value>", description: "a key by its group-by values, one flag per field (repeatable); for metrics grouped by several fields" },
    ...AGGREGATE_FLAGS,
    ...STRICT_FLAGS,
    series: { type: "boolean", description: "also show the value of every window that has events, per key" },
    ...GRPC_FLAGS,
    ...COMMON_FLAGS,
  },
  notes: [
    `times: ${TIME_FORMS}.`,
    "relative units: ms, s, m, h, d, w.",
    "",
    "For count and sum, batch part + speed part = total. For min, max, avg, distinct and quantiles",
    "each part is its side alone and the total is the merged aggregate. An absent value prints as -.",
    "",
    "examples:",
    "  lambdactl query article_views a-1 --from -15m --to now",
    "  lambdactl query article_views a-1 a-2 a-3 --from 2026-06-08T14:00Z --to 2026-06-08T15:00Z --json",
    "  lambdactl query order_flow --group currency=EUR --group status=paid --from -1d --series",
    "  lambdactl query article_engagement a-1 --aggregate load_ms --quantile 0.99 --from -1h",
    "  lambdactl query site_traffic --from -1h",
    "",
    "While a partition's speed actor is away (moving to another node, paused, rebuilding) or still",
    "replaying, the answer leaves its speed part out or has it up to where the actor is, and says so:",
    "a PARTIAL line, and the missing partitions with the stream records not counted. --strict fails",
    "instead (UNAVAILABLE).",
  ].join("\n"),
};

/** The stable JSON shape of `query --json`. */
export interface QueryJson {
  readonly metric: string;
  /** The aggregate answered (the metric's first one when `--aggregate` was not given). */
  readonly aggregate: string;
  /** The quantile asked with `--quantile`; null when not given (a quantiles aggregate then answers the median). */
  readonly quantile: number | null;
  /** ISO 8601. */
  readonly from: string | null;
  readonly to: string | null;
  /** The watermark run the answers were made at; 0 before the first batch run. */
  readonly watermarkRun: number;
  /** One per key asked, in the order asked: positional keys, then the `--group` key. */
  readonly answers: readonly (AnswerJson & {
    /** The windows with events, oldest first; null when `--series` was not given. */
    readonly series: readonly WindowJson[] | null;
  })[];
  /** The partitions consulted. */
  readonly partitions: readonly PartitionJson[];
  /** Events the speed actors consulted hold that no batch run covers yet. */
  readonly speedEventsHeld: number;
  /** Fingerprint of the metric definition answered with (the watermark run's; see `lambdactl metrics`). */
  readonly definition: string;
  /** False when a partition's speed part is missing or behind: `missing` says which and how many records. */
  readonly complete: boolean;
  readonly missing: readonly MissingJson[];
}

/** The reply as `--json` prints it. */
export function queryJson(r: QueryResponse, asked: { readonly quantile: number; readonly series: boolean }): QueryJson {
  return {
    metric: r.metric,
    aggregate: r.aggregate,
    quantile: asked.quantile === 0 ? null : asked.quantile,
    from: r.from?.toISOString() ?? null,
    to: r.to?.toISOString() ?? null,
    watermarkRun: r.watermarkRun,
    answers: r.answers.map((a) => ({ ...answerJson(a), series: asked.series ? a.series.map(windowJson) : null })),
    partitions: r.partitions.map(partitionJson),
    speedEventsHeld: r.speedEventsHeld,
    definition: r.definition,
    ...completenessJson(r),
  };
}

/**
 * The reply as text: a heading, the table of answers, the series if asked, the partition table.
 * @param shape what the aggregate's values are (times are shown as ISO 8601).
 */
export function renderQuery(r: QueryResponse, asked: { readonly quantile: number; readonly series: boolean }, shape: AggregateShape = UNKNOWN_SHAPE): string {
  const head = `${aggregateLabel(r.metric, r.aggregate, asked.quantile)}, windows starting in [${formatTime(r.from)}, ${formatTime(r.to)}), ${runLabel(r.watermarkRun)}\n\n`;
  const series = asked.series ? r.answers.map((a) => `\n${renderSeries(a, shape)}`).join("") : "";
  return `${head}${partialWarning(r)}${renderAnswers(r.answers, { shape })}${partsLegend(r.watermarkRun, shape)}${series}\n${renderProvenance(r)}`;
}

/**
 * The request a parsed command line asks for: the first positional key goes to
 * `key` (so the server's messages about one key name "key"), the others to `keys`.
 * @throws UsageError for a bad time, range, `--group` pair or quantile.
 */
export function queryRequest(parsed: ParsedCommand, nowMs: number): QueryRequest {
  const { fromMs, toMs } = rangeFlags(spec.name, parsed, nowMs);
  const [key = "", ...keys] = listArg(parsed, "key");
  return {
    metric: requiredArg(parsed, "metric"),
    key,
    keys,
    group: fieldValuesFlag(spec.name, parsed, "group"),
    aggregate: stringFlag(parsed, "aggregate") ?? "",
    quantile: quantileFlag(spec.name, parsed, "quantile"),
    series: booleanFlag(parsed, "series"),
    from: new Date(fromMs),
    to: new Date(toMs),
    strict: booleanFlag(parsed, "strict"),
  };
}

async function run(parsed: ParsedCommand, ctx: CliContext) {
  const request = queryRequest(parsed, ctx.now());
  const timeout = timeoutMs(spec.name, parsed);
  const target = grpcTarget(parsed, ctx, "query");
  using client = createServingClient(target, { timeoutMs: timeout });
  const r = await client.query(request);
  const asked = { quantile: request.quantile, series: request.series };
  if (booleanFlag(parsed, "json")) {
    ctx.stdout.write(JSON.stringify(queryJson(r, asked), null, 2) + "\n");
  } else {
    // The text shows times as times and says how the parts make the total: that needs the aggregate's kind and field type.
    const shape = aggregateShape(await client.describeMetric(r.metric), r.aggregate);
    ctx.stdout.write(renderQuery(r, asked, shape));
  }
  return ExitCodes.ok;
}

/** `lambdactl query`. */
export const queryCommand: Command = { spec, run };
