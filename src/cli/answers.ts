/**
 * Answers of `query` and `top`, pure: the serving node's KeyAnswers and
 * partition provenance as `--json` prints them and as text tables.
 *
 * Every value comes with its two parts: the batch part (the batch view of the
 * watermark run) and the speed part (the speed actors, events above that run's
 * cuts). For count and sum the parts add up to the total; for min, max, avg,
 * distinct and quantiles each part is the aggregate of its side alone and the
 * total is the aggregate of the merged state, so the parts do not add up. A
 * value is absent (null in JSON, "-" in text) when there is none, e.g. the min
 * of no events.
 *
 * Distinct counts (HyperLogLog, about 1.6 % standard error) and quantiles (a
 * log-bucket sketch, within 0.4 %) are estimates: the text marks them "≈" and
 * rounds them to what the sketch can tell (a distinct count to a whole number,
 * a quantile to 3 significant digits); `--json` keeps the value as computed.
 */
import type { DescribeMetricResponse, KeyAnswer, MissingSpeedPart, PartitionProvenance, WindowValue } from "../gen/lambda/v1/serving.js";
import { ABSENT, formatNumber, formatTime, isoOrNull, keyValues, optionalCell, table, type Cell } from "./render.js";

/** Significant digits a quantile estimate is shown with: the sketch's buckets are within 0.4 % (core/sketch.ts). */
export const QUANTILE_SHOWN_DIGITS = 3;

/** What the values of the aggregate answered are, for text output. */
export interface AggregateShape {
  /** count, sum, min, max, avg, distinct, quantiles; "" when unknown. */
  readonly kind: string;
  /** "time": epoch milliseconds (min or max of a timestamp field), shown as ISO 8601. */
  readonly values: "number" | "time";
}

/** The shape to assume when the metric's description is not at hand. */
export const UNKNOWN_SHAPE: AggregateShape = { kind: "", values: "number" };

/**
 * The shape of aggregate `name` (the first one when empty) from the metric's
 * description; {@link UNKNOWN_SHAPE} when the description does not name it.
 */
export function aggregateShape(d: DescribeMetricResponse, name: string): AggregateShape {
  const aggregates = d.metric?.aggregates ?? [];
  const a = name === "" ? aggregates[0] : aggregates.find((x) => x.name === name);
  if (!a) return UNKNOWN_SHAPE;
  const fieldType = (d.sourceFields[a.field] ?? "").replace(/\?$/, "");
  return { kind: a.kind, values: (a.kind === "min" || a.kind === "max") && fieldType === "timestamp" ? "time" : "number" };
}

/**
 * A value as a table shows it: a time as ISO 8601, a distinct count as a whole
 * estimate, a quantile as an estimate to {@link QUANTILE_SHOWN_DIGITS} significant digits.
 */
export function valueCell(v: number | undefined, shape: AggregateShape): Cell {
  if (v === undefined) return optionalCell(v);
  if (shape.values === "time") return new Date(v).toISOString();
  if (shape.kind === "distinct") return { estimate: Math.round(v) };
  // Number(toPrecision) drops the exponent form toPrecision uses for large values (1.23e+3 -> 1230).
  if (shape.kind === "quantiles") return { estimate: Number(v.toPrecision(QUANTILE_SHOWN_DIGITS)) };
  return v;
}

/** One key's answer as `--json` prints it. */
export interface AnswerJson {
  /** The metric key: the group-by value for a one-field metric, "" for a global metric. */
  readonly key: string;
  /** The key's group-by field values: field → value ({} for a global metric). */
  readonly group: Readonly<Record<string, string>>;
  /**
   * null when there is no value (e.g. the min of no events). For min and max of a
   * timestamp field the values are epoch milliseconds (the text output shows them as ISO 8601).
   */
  readonly total: number | null;
  readonly batchPart: number | null;
  readonly speedPart: number | null;
  /** Events counted for the key in the range (batch + speed). */
  readonly events: number;
}

/** One window of a `--series` answer. */
export interface WindowJson {
  /** ISO 8601. */
  readonly windowStart: string | null;
  readonly value: number | null;
  readonly batchPart: number | null;
  readonly speedPart: number | null;
  readonly events: number;
}

/** One partition consulted for an answer. */
export interface PartitionJson {
  readonly partition: number;
  /** Stream sequence of the watermark run's cut; events below it are in the batch part. */
  readonly cutSeq: number;
  /** The last stream sequence the speed actor had applied when it answered. */
  readonly appliedSeq: number;
  /** Events the actor holds that no batch run covers yet. */
  readonly speedEventsHeld: number;
  /** Assignment generation of the actor that answered. */
  readonly generation: number;
}

const orNull = (v: number | undefined): number | null => v ?? null;

/** A KeyAnswer as `--json` prints it (without its series). */
export function answerJson(a: KeyAnswer): AnswerJson {
  return { key: a.key, group: { ...a.group }, total: orNull(a.total), batchPart: orNull(a.batchPart), speedPart: orNull(a.speedPart), events: a.events };
}

/** A window of a series as `--json` prints it. */
export function windowJson(w: WindowValue): WindowJson {
  return { windowStart: isoOrNull(w.windowStart), value: orNull(w.value), batchPart: orNull(w.batchPart), speedPart: orNull(w.speedPart), events: w.events };
}

/** A partition's provenance as `--json` prints it. */
export function partitionJson(p: PartitionProvenance): PartitionJson {
  return { partition: p.partition, cutSeq: p.cutSeq, appliedSeq: p.appliedSeq, speedEventsHeld: p.speedEventsHeld, generation: p.generation };
}

/** A partition whose speed part an answer lacks, as `--json` prints it. */
export interface MissingJson {
  readonly partition: number;
  /** moving, timeout, rebuilding, replaying (see the API's MissingSpeedPart). */
  readonly reason: string;
  /** The partition's events up to this stream sequence are in the answer. */
  readonly countedThroughSeq: number;
  /** Records of the partition after it that the answer lacks; null when unknown. */
  readonly eventsNotCounted: number | null;
  /** The node the partition is assigned to ("" when none). */
  readonly node: string;
  readonly detail: string;
}

/** Whether an answer is whole, and what it lacks when not, as `--json` prints it. */
export function completenessJson(r: { readonly complete: boolean; readonly missing: readonly MissingSpeedPart[] }): { complete: boolean; missing: MissingJson[] } {
  return {
    complete: r.complete,
    missing: r.missing.map((m) => ({ partition: m.partition, reason: m.reason, countedThroughSeq: m.countedThroughSeq, eventsNotCounted: m.eventsNotCounted ?? null, node: m.node, detail: m.detail })),
  };
}

/**
 * One line under the heading of a partial answer: which partitions it lacks and how many
 * records; "" for a complete one.
 */
export function partialWarning(r: { readonly complete: boolean; readonly missing: readonly MissingSpeedPart[] }): string {
  if (r.complete) return "";
  const known = r.missing.every((m) => m.eventsNotCounted !== undefined);
  const lacking = r.missing.reduce((n, m) => n + (m.eventsNotCounted ?? 0), 0);
  const which = r.missing.map((m) => `${m.partition} (${m.reason})`).join(", ");
  return `PARTIAL: the speed part of partition${r.missing.length === 1 ? "" : "s"} ${which} is missing or behind: ${known ? "" : "at least "}${formatNumber(lacking)} stream records not counted (--strict fails instead)\n\n`;
}

/** The columns that name the keys of a table of answers. */
export interface KeyColumns {
  /** Column headers. */
  readonly names: readonly string[];
  /** True: the cells are group values of these fields; false: the one column holds the raw key. */
  readonly fromGroup: boolean;
}

/**
 * The columns naming the keys: the group-by fields in the order the answers
 * give them; one "key" column when answers carry a key but no fields; none for
 * a global metric (its one answer has neither).
 */
export function keyColumns(answers: readonly KeyAnswer[]): KeyColumns {
  const fields: string[] = [];
  for (const a of answers) for (const f of Object.keys(a.group)) if (!fields.includes(f)) fields.push(f);
  if (fields.length === 0 && answers.some((a) => a.key !== "")) return { names: ["key"], fromGroup: false };
  return { names: fields, fromGroup: true };
}

function keyCells(a: KeyAnswer, columns: KeyColumns): Cell[] {
  return columns.fromGroup ? columns.names.map((f) => a.group[f] ?? ABSENT) : [a.key];
}

/** How a key is named in a heading, e.g. `article_id=a-1`, `country=de region=eu`, or `(global)`. */
export function keyLabel(a: KeyAnswer): string {
  const pairs = Object.entries(a.group);
  if (pairs.length > 0) return pairs.map(([f, v]) => `${f}=${v}`).join(" ");
  return a.key === "" ? "(global)" : a.key;
}

/**
 * The answers as one table: the key columns, then total, batch part, speed
 * part and events; with `ranked`, a rank column first (1 for the first answer).
 */
export function renderAnswers(answers: readonly KeyAnswer[], opts: { readonly ranked?: boolean; readonly shape?: AggregateShape } = {}): string {
  const shape = opts.shape ?? UNKNOWN_SHAPE;
  const keys = keyColumns(answers);
  const columns = [...(opts.ranked ? ["rank"] : []), ...keys.names, "total", "batch part", "speed part", "events"];
  const rows = answers.map((a, i) => [
    ...(opts.ranked ? [i + 1] : []),
    ...keyCells(a, keys),
    valueCell(a.total, shape),
    valueCell(a.batchPart, shape),
    valueCell(a.speedPart, shape),
    a.events,
  ]);
  return table(columns, rows);
}

/** One key's series: a heading naming the key, then a table of its windows (windows without events are left out). */
export function renderSeries(a: KeyAnswer, shape: AggregateShape = UNKNOWN_SHAPE): string {
  const head = `windows of ${keyLabel(a)}:\n`;
  if (a.series.length === 0) return `${head}  (no windows with events in the range)\n`;
  const rows = a.series.map((w) => [formatTime(w.windowStart), valueCell(w.value, shape), valueCell(w.batchPart, shape), valueCell(w.speedPart, shape), w.events]);
  return head + table(["window start", "value", "batch part", "speed part", "events"], rows);
}

/** The aggregate as a heading names it: `article_views views`, or `latency p (q=0.99)` when a quantile was asked (0: not asked). */
export function aggregateLabel(metric: string, aggregate: string, quantile: number): string {
  return `${metric} ${aggregate}${quantile === 0 ? "" : ` (q=${formatNumber(quantile)})`}`;
}

/** The watermark run as a heading states it. */
export function runLabel(run: number): string {
  return run === 0 ? "watermark run 0 (no batch run yet: speed layer only)" : `watermark run ${run}`;
}

/** One line on where the parts come from and how they make the total. */
export function partsLegend(run: number, shape: AggregateShape = UNKNOWN_SHAPE): string {
  const batch = run === 0 ? "none yet (no batch run)" : `batch view of run ${run}`;
  const speed = run === 0 ? "speed actors (every event)" : `speed actors, events above run ${run}'s cuts`;
  const merge =
    shape.kind === "count" || shape.kind === "sum"
      ? "batch + speed = total."
      : shape.kind === ""
        ? "They add up to the total for count and sum only."
        : `${shape.kind}: each part is its side alone and the total is taken over both, so the parts do not add up.` +
          (shape.kind === "distinct" || shape.kind === "quantiles" ? ` ≈: an estimate of the ${shape.kind === "distinct" ? "HyperLogLog" : "quantile"} sketch; --json has the value as computed.` : "");
  return `parts: batch = ${batch}; speed = ${speed}. ${merge}\n`;
}

/**
 * The partition table, the missing speed parts, the speed events held and the definition:
 * which actors answered, at which cut, computing what, and which did not.
 */
export function renderProvenance(r: {
  readonly partitions: readonly PartitionProvenance[];
  readonly missing: readonly MissingSpeedPart[];
  readonly speedEventsHeld: number;
  readonly definition: string;
}): string {
  const rows = r.partitions.map((p) => [p.partition, p.cutSeq, p.appliedSeq, p.speedEventsHeld, p.generation]);
  const parts = rows.length === 0 ? "no partitions answered\n" : table(["partition", "cut seq", "applied seq", "speed events held", "generation"], rows);
  const missing =
    r.missing.length === 0
      ? ""
      : `\nmissing or behind:\n${table(
          ["partition", "reason", "counted through seq", "records not counted", "node", "detail"],
          r.missing.map((m) => [m.partition, m.reason, m.countedThroughSeq, optionalCell(m.eventsNotCounted), m.node || ABSENT, m.detail]),
        )}`;
  return `${parts}${missing}\n${keyValues([
    ["speed events held", `${formatNumber(r.speedEventsHeld)} (events no batch run covers yet)`],
    ["definition", r.definition || ABSENT],
  ])}`;
}
