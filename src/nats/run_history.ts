/**
 * The batch-run history: key `run.<N>` of the watermark bucket says what
 * happened to run N, and key `runs` of the coordinator bucket is the last run
 * number handed out (a compare-and-set counter, so no number is given twice).
 */
import { RunOutcomes, type RunOutcome, type RunRecord } from "../core/records.js";
import { parseWatermark } from "../core/watermark.js";
import { compareAndSet, fields, putValue, readValue } from "./kv.js";
import { RUN_COUNTER_KEY, runKey } from "./names.js";
import type { Buckets } from "./setup.js";

/** The buckets the history spans. */
export type RunHistoryBuckets = Pick<Buckets, "watermark" | "coordinator">;

const OUTCOMES = Object.values(RunOutcomes) as RunOutcome[];

export function parseRunRecord(v: unknown): RunRecord {
  const o = fields.object(v, "run record");
  return {
    run: fields.int(o, "run", 1),
    outcome: fields.oneOf(o, "outcome", OUTCOMES),
    cuts: fields.intArray(o, "cuts"),
    coordinator: fields.string(o, "coordinator"),
    startedAtMs: fields.int(o, "startedAtMs"),
    finishedAtMs: fields.intOrNull(o, "finishedAtMs"),
    detail: fields.stringOrNull(o, "detail"),
    publishMs: fields.numberOrNull(o, "publishMs"),
    watermark: o.watermark === null || o.watermark === undefined ? null : parseWatermark(o.watermark),
  };
}

function parseRunNumber(v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new TypeError(`the run counter must be an integer ≥ 0, got ${JSON.stringify(v)}`);
  return v;
}

/** Hands out the next run number (compare-and-set on the counter). */
export async function nextRunNumber(b: RunHistoryBuckets): Promise<number> {
  return (await compareAndSet(b.coordinator, RUN_COUNTER_KEY, parseRunNumber, (current) => (current?.value ?? 0) + 1)).value;
}

/** The last run number handed out; 0 before the first run. */
export async function lastRunNumber(b: RunHistoryBuckets): Promise<number> {
  return (await readValue(b.coordinator, RUN_COUNTER_KEY, parseRunNumber))?.value ?? 0;
}

/** Run N's record, or null when the history has none. @throws MalformedValueError */
export async function readRun(b: RunHistoryBuckets, run: number): Promise<RunRecord | null> {
  return (await readValue(b.watermark, runKey(run), parseRunRecord))?.value ?? null;
}

export async function recordRun(b: RunHistoryBuckets, r: RunRecord): Promise<void> {
  await putValue(b.watermark, runKey(r.run), r);
}

/** The newest `limit` run records, newest first. */
export async function listRuns(b: RunHistoryBuckets, limit: number): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  for (let r = await lastRunNumber(b); r >= 1 && out.length < limit; r--) {
    const rec = await readRun(b, r);
    if (rec) out.push(rec);
  }
  return out;
}

/** Run records of runs from..to (inclusive) that the history has, oldest first. */
export async function runsBetween(b: RunHistoryBuckets, from: number, to: number): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  for (let r = from; r <= to; r++) {
    const rec = await readRun(b, r);
    if (rec) out.push(rec);
  }
  return out;
}
