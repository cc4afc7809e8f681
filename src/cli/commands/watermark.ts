/**
 * `lambdactl watermark`: the batch watermark the serving node answers at: which
 * run, when it was published and by whom, what the batch views cover, how long
 * the run's phases took, and the cut (barrier stream sequence) of each partition.
 */
import { booleanFlag, COMMON_FLAGS, connectionFlags, GRPC_FLAGS, timeoutMs } from "../args.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ParsedCommand } from "../command.js";
import { resolveGrpcAddress } from "../connection.js";
import { createServingClient } from "../grpc.js";
import { formatAge, formatMs, formatTime, keyValues, table } from "../render.js";
import type { GetWatermarkResponse, Watermark } from "../../gen/lambda/v1/serving.js";

const spec: CommandSpec = {
  name: "watermark",
  summary: "the batch watermark answers are merged at: run, age, coverage, timings, cut per partition",
  args: [],
  flags: { ...GRPC_FLAGS, ...COMMON_FLAGS },
  notes: "Before the first batch run there is no watermark; that is not an error (exit 0).",
};

/** The stable JSON shape of `watermark --json`; `watermark` is null when `present` is false. */
export interface WatermarkJson {
  readonly present: boolean;
  readonly watermark: {
    readonly run: number;
    readonly viewVersion: number;
    /** ISO 8601. */
    readonly publishedAt: string | null;
    /** Milliseconds between publication and the time lambdactl asked. */
    readonly ageMs: number | null;
    readonly coordinator: string;
    /** Event-time range the batch views cover, ISO 8601; null when they cover no events. */
    readonly coveredFrom: string | null;
    readonly coveredTo: string | null;
    readonly eventsCovered: number;
    readonly timings: { readonly barrierMs: number; readonly archiverFlushMs: number; readonly recomputeMs: number };
    readonly cuts: readonly { readonly partition: number; readonly seq: number }[];
  } | null;
}

/** The reply as `--json` prints it. */
export function watermarkJson(r: GetWatermarkResponse, nowMs: number): WatermarkJson {
  const w = r.present ? r.watermark : undefined;
  if (!w) return { present: false, watermark: null };
  const t = w.timings;
  return {
    present: true,
    watermark: {
      run: w.run,
      viewVersion: w.viewVersion,
      publishedAt: w.publishedAt?.toISOString() ?? null,
      ageMs: w.publishedAt ? nowMs - w.publishedAt.getTime() : null,
      coordinator: w.coordinator,
      coveredFrom: w.coveredFrom?.toISOString() ?? null,
      coveredTo: w.coveredTo?.toISOString() ?? null,
      eventsCovered: w.eventsCovered,
      timings: { barrierMs: t?.barrierMs ?? 0, archiverFlushMs: t?.archiverFlushMs ?? 0, recomputeMs: t?.recomputeMs ?? 0 },
      cuts: w.cuts.map((c) => ({ partition: c.partition, seq: c.seq })),
    },
  };
}

/** The watermark as text: a summary block and the table of cuts. */
export function renderWatermark(w: Watermark, nowMs: number): string {
  const published = w.publishedAt ? `${formatTime(w.publishedAt)} (${formatAge(w.publishedAt.getTime(), nowMs)})` : "-";
  const covered = w.coveredFrom && w.coveredTo ? `${formatTime(w.coveredFrom)} .. ${formatTime(w.coveredTo)}` : "none";
  const t = w.timings;
  const phases = t ? `barrier ${formatMs(t.barrierMs)}, archiver flush ${formatMs(t.archiverFlushMs)}, recompute ${formatMs(t.recomputeMs)}` : "-";
  const summary = keyValues([
    ["run", w.run],
    ["view version", w.viewVersion],
    ["published at", published],
    ["coordinator", w.coordinator || "-"],
    ["covered range", `${covered} (event time)`],
    ["events covered", w.eventsCovered],
    ["phases", phases],
  ]);
  return `${summary}\n${table(["partition", "cut seq"], w.cuts.map((c) => [c.partition, c.seq]))}`;
}

/** What `watermark` prints before the first batch run. */
export const NO_WATERMARK_TEXT = "no watermark yet: no batch run has published, so every answer comes from the speed layer alone\n";

async function run(parsed: ParsedCommand, ctx: CliContext) {
  const timeout = timeoutMs(spec.name, parsed);
  const address = resolveGrpcAddress({ flags: connectionFlags(parsed), env: ctx.env, cwd: ctx.cwd });
  using client = createServingClient(address, { timeoutMs: timeout });
  const r = await client.getWatermark();
  const now = ctx.now();
  if (booleanFlag(parsed, "json")) ctx.stdout.write(JSON.stringify(watermarkJson(r, now), null, 2) + "\n");
  else ctx.stdout.write(r.present && r.watermark ? renderWatermark(r.watermark, now) : NO_WATERMARK_TEXT);
  return ExitCodes.ok;
}

/** `lambdactl watermark`. */
export const watermarkCommand: Command = { spec, run };
