/**
 * Reading and publishing the watermark, and the run history, in the watermark
 * bucket. Publishing is a compare-and-set on the key's revision, so the
 * watermark only moves forward even if two coordinators race.
 */
import type { KV } from "@nats-io/kv";
import type { RunRecord } from "../core/records.js";
import { parseWatermark, type Watermark } from "../core/watermark.js";
import { compareAndSet, getValue, putValue } from "../nats/kv.js";
import { RUN_COUNTER_KEY, runKey, WATERMARK_KEY } from "../nats/names.js";

/** The watermark was not published because another one moved past it. */
export class WatermarkConflictError extends Error {
  override readonly name = "WatermarkConflictError";
  constructor(
    readonly run: number,
    readonly current: number,
  ) {
    super(`watermark ${run} not published: the watermark is already at run ${current}`);
  }
}

export async function readWatermark(kv: KV): Promise<{ watermark: Watermark; revision: number } | null> {
  const v = await getValue<unknown>(kv, WATERMARK_KEY);
  return v ? { watermark: parseWatermark(v.value), revision: v.revision } : null;
}

/** Publishes `w` if it is newer than the current watermark. @throws WatermarkConflictError */
export async function publishWatermark(kv: KV, w: Watermark): Promise<void> {
  await compareAndSet<unknown>(kv, WATERMARK_KEY, (current) => {
    const run = current ? parseWatermark(current.value).run : 0;
    if (run >= w.run) throw new WatermarkConflictError(w.run, run);
    return w;
  });
}

/** Hands out the next run number (compare-and-set on a counter). */
export async function nextRunNumber(kv: KV): Promise<number> {
  return compareAndSet<number>(kv, RUN_COUNTER_KEY, (current) => (current?.value ?? 0) + 1);
}

export async function recordRun(kv: KV, r: RunRecord): Promise<void> {
  await putValue(kv, runKey(r.run), r);
}
