/**
 * Reading and publishing the watermark, and the run history, in the watermark
 * bucket. Publishing is a compare-and-set on the key's revision, so the
 * watermark only moves forward even if two coordinators race.
 */
import type { KV } from "@nats-io/kv";
import type { RunRecord } from "../core/records.js";
import { parseWatermark, type Watermark } from "../core/watermark.js";
import { encode } from "../nats/codec.js";
import { getValue, putValue } from "../nats/kv.js";
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
  for (;;) {
    const current = await readWatermark(kv);
    if (current && current.watermark.run >= w.run) throw new WatermarkConflictError(w.run, current.watermark.run);
    try {
      if (current) await kv.update(WATERMARK_KEY, encode(w), current.revision);
      else await kv.create(WATERMARK_KEY, encode(w));
      return;
    } catch (err) {
      // Lost a race on the revision: read again and decide anew.
      const after = await readWatermark(kv);
      if (after?.revision === current?.revision) throw err;
    }
  }
}

/** Hands out the next run number (compare-and-set on a counter). */
export async function nextRunNumber(kv: KV): Promise<number> {
  for (;;) {
    const current = await getValue<number>(kv, RUN_COUNTER_KEY);
    const next = (current?.value ?? 0) + 1;
    try {
      if (current) await kv.update(RUN_COUNTER_KEY, encode(next), current.revision);
      else await kv.create(RUN_COUNTER_KEY, encode(next));
      return next;
    } catch (err) {
      const after = await getValue<number>(kv, RUN_COUNTER_KEY);
      if (after?.revision === current?.revision) throw err;
    }
  }
}

export async function recordRun(kv: KV, r: RunRecord): Promise<void> {
  await putValue(kv, runKey(r.run), r);
}
