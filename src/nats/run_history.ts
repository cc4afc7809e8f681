/**
 * The batch-run history: key `run.<N>` of the watermark bucket says what
 * happened to run N, and key `runs` of the coordinator bucket is the last run
 * number handed out (a compare-and-set counter, so no number is given twice).
 */
import { RunOutcomes, type RunOutcome, type RunRecord } from "../core/records.js";
import { parseWatermark } from "../core/watermark.js";
import { fencedWrite, fields, readValue, stampEpoch } from "./kv.js";
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
    ...(o.epoch === undefined ? {} : { epoch: fields.int(o, "epoch") }),
    ...(o.phase === undefined ? {} : { phase: fields.string(o, "phase") }),
    ...(o.barrierEpoch === undefined ? {} : { barrierEpoch: fields.int(o, "barrierEpoch") }),
  };
}

/** The run counter: the last run number handed out, and the epoch of the leader that did. */
interface RunCounter {
  readonly run: number;
  readonly epoch?: number;
}

function parseRunCounter(v: unknown): RunCounter {
  // A bare number: written before leadership epochs existed.
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return { run: v };
  const o = fields.object(v, "run counter");
  return { run: fields.int(o, "run"), ...(o.epoch === undefined ? {} : { epoch: fields.int(o, "epoch") }) };
}

/**
 * Hands out the next run number to the leader of `epoch` (compare-and-set on the counter).
 * @throws FencedError when a newer leader stamped the counter
 */
export async function nextRunNumber(b: RunHistoryBuckets, epoch: number): Promise<number> {
  return (await fencedWrite(b.coordinator, RUN_COUNTER_KEY, parseRunCounter, epoch, "the run counter", (current) => ({ run: (current?.value.run ?? 0) + 1, epoch }))).value.run;
}

/** A new leader's stamp on the counter: every run number handed out after it is the new leader's. */
export function stampRunCounter(b: RunHistoryBuckets, epoch: number): Promise<boolean> {
  return stampEpoch(b.coordinator, RUN_COUNTER_KEY, parseRunCounter, epoch, "the run counter");
}

/** The last run number handed out; 0 before the first run. */
export async function lastRunNumber(b: RunHistoryBuckets): Promise<number> {
  return (await readValue(b.coordinator, RUN_COUNTER_KEY, parseRunCounter))?.value.run ?? 0;
}

/** Run N's record, or null when the history has none. @throws MalformedValueError */
export async function readRun(b: RunHistoryBuckets, run: number): Promise<RunRecord | null> {
  return (await readValue(b.watermark, runKey(run), parseRunRecord))?.value ?? null;
}

/** Writes run N's record, unless a newer leader wrote it (it recorded the run abandoned). @throws FencedError */
export async function recordRun(b: RunHistoryBuckets, r: RunRecord): Promise<void> {
  await fencedWrite(b.watermark, runKey(r.run), parseRunRecord, r.epoch ?? 0, `run ${r.run}'s record`, () => r);
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
