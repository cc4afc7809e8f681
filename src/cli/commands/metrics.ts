/**
 * `lambdactl metrics [metric]`: what the serving node can answer. Without an
 * argument, every metric of its catalog in a table (ListMetrics); with one,
 * that metric in detail with its source's fields (DescribeMetric). The catalog
 * shown is the one the serving node runs with, which is what queries see.
 */
import { booleanFlag, COMMON_FLAGS, GRPC_FLAGS, timeoutMs, grpcTarget } from "../args.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ParsedCommand } from "../command.js";
import { createServingClient } from "../grpc.js";
import { metricFromInfo, renderMetricDetail, renderMetricsTable, type MetricJson } from "../metric_view.js";
import type { DescribeMetricResponse, ListMetricsResponse } from "../../gen/lambda/v1/serving.js";

const spec: CommandSpec = {
  name: "metrics",
  summary: "the metrics the serving node answers: a table, or one metric in detail with its source's fields",
  args: [{ name: "metric", optional: true, description: "a metric to describe in detail; leave out to list all" }],
  flags: { ...GRPC_FLAGS, ...COMMON_FLAGS },
  notes: [
    "aggregates are written name:kind(field); the first one is what query and top answer by default.",
    "",
    "examples:",
    "  lambdactl metrics",
    "  lambdactl metrics article_views --json",
  ].join("\n"),
};

/** The stable JSON shape of `metrics --json`. */
export interface MetricsJson {
  readonly metrics: readonly MetricJson[];
}

/** The stable JSON shape of `metrics <metric> --json`. */
export interface MetricDetailJson {
  readonly metric: MetricJson;
  /** The source's fields: name → type as in the catalog ("string", "int?", ...). */
  readonly sourceFields: Readonly<Record<string, string>>;
}

/** The list as `--json` prints it. */
export function metricsJson(r: ListMetricsResponse): MetricsJson {
  return { metrics: r.metrics.map(metricFromInfo) };
}

/**
 * One metric as `--json` prints it.
 * @throws Error when the reply holds no metric (a serving node that does not follow the API).
 */
export function metricDetailJson(r: DescribeMetricResponse): MetricDetailJson {
  if (r.metric === undefined) throw new Error("the serving node described no metric (DescribeMetricResponse.metric is empty)");
  return { metric: metricFromInfo(r.metric), sourceFields: { ...r.sourceFields } };
}

async function run(parsed: ParsedCommand, ctx: CliContext) {
  const name = parsed.args.metric;
  const json = booleanFlag(parsed, "json");
  const timeout = timeoutMs(spec.name, parsed);
  const target = grpcTarget(parsed, ctx, "query");
  using client = createServingClient(target, { timeoutMs: timeout });
  if (name === undefined) {
    const out = metricsJson(await client.listMetrics());
    ctx.stdout.write(json ? JSON.stringify(out, null, 2) + "\n" : out.metrics.length === 0 ? "no metrics in the catalog\n" : renderMetricsTable(out.metrics));
  } else {
    const out = metricDetailJson(await client.describeMetric(name));
    ctx.stdout.write(json ? JSON.stringify(out, null, 2) + "\n" : renderMetricDetail(out.metric, out.sourceFields));
  }
  return ExitCodes.ok;
}

/** `lambdactl metrics`. */
export const metricsCommand: Command = { spec, run };
