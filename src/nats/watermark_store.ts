/**
 * The watermark: key `current` of the watermark bucket. The coordinator publishes
 * it (compare-and-set, forward only) and rolls it back (compare-and-set on the
 * revision it read); speed nodes and serving nodes follow it. The newest value
 * by KV revision is the one that counts: usually the highest run, after an
 * operator's rollback an older run, which is the point of a rollback.
 */
import type { KV } from "@nats-io/kv";
import type { Logger } from "../core/logger.js";
import { parseWatermark, type Watermark } from "../core/watermark.js";
import { fencedWrite, readValue, stampEpoch, watchValues, type ValueWatch, type WatchEnd } from "./kv.js";
import { WATERMARK_KEY } from "./names.js";

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

/** The watermark changed between reading it and writing a rollback over it. */
export class WatermarkMovedError extends Error {
  override readonly name = "WatermarkMovedError";
  constructor(readonly expectedRevision: number) {
    super(`the watermark changed since it was read (revision ${expectedRevision}); a run published meanwhile`);
  }
}

/** @throws MalformedValueError */
export async function readWatermark(kv: KV): Promise<{ watermark: Watermark; revision: number } | null> {
  const v = await readValue(kv, WATERMARK_KEY, parseWatermark);
  return v && { watermark: v.value, revision: v.revision };
}

/**
 * Publishes `w` if it is newer than the current watermark and no newer leader than `w.epoch`
 * wrote it. @throws WatermarkConflictError, FencedError
 */
export async function publishWatermark(kv: KV, w: Watermark): Promise<void> {
  await fencedWrite(kv, WATERMARK_KEY, parseWatermark, w.epoch ?? 0, `watermark ${w.run}`, (current) => {
    const run = current?.value.run ?? 0;
    if (run >= w.run) throw new WatermarkConflictError(w.run, run);
    return w;
  });
}

/** Writes `w` over the watermark read at `expectedRevision` (a rollback). @throws WatermarkMovedError, FencedError */
export async function replaceWatermark(kv: KV, w: Watermark, expectedRevision: number): Promise<void> {
  await fencedWrite(kv, WATERMARK_KEY, parseWatermark, w.epoch ?? 0, `the rollback to run ${w.run}`, (current) => {
    if (current?.revision !== expectedRevision) throw new WatermarkMovedError(expectedRevision);
    return w;
  });
}

/** A new leader's stamp on the watermark: a deposed leader's publish fails from then on. */
export function stampWatermark(kv: KV, epoch: number): Promise<boolean> {
  return stampEpoch(kv, WATERMARK_KEY, parseWatermark, epoch, "the watermark");
}

/** The newest watermark a role knows, kept current by a watch. */
export interface WatermarkFollower {
  /** The newest watermark seen, or null before the first run. */
  current(): Watermark | null;
  /** Reads the bucket now (after an actor reported a newer run) and returns the newest. */
  refresh(): Promise<Watermark | null>;
  /** Resolves when the watch ends (see nats/kv ValueWatch). */
  readonly ended: Promise<WatchEnd>;
  stop(): void;
}

/**
 * Follows the watermark. `onNew` is called with each newer value (by revision) that differs
 * from the one before, the first one at start too; a throw from it is logged.
 */
export async function followWatermark(kv: KV, log: Logger, onNew: (w: Watermark) => void = () => {}): Promise<WatermarkFollower> {
  let latest: Watermark | null = null;
  let revision = 0;
  const offer = (w: Watermark, rev: number) => {
    if (rev <= revision) return;
    const changed = latest === null || latest.run !== w.run || latest.viewVersion !== w.viewVersion || latest.publishedAtMs !== w.publishedAtMs;
    latest = w;
    revision = rev;
    if (changed) onNew(w);
  };
  const first = await readWatermark(kv);
  if (first) offer(first.watermark, first.revision);
  const watch: ValueWatch = await watchValues(kv, { key: WATERMARK_KEY, parse: parseWatermark, what: "the watermark", log, onValue: (_k, w, rev) => offer(w, rev) });
  return {
    current: () => latest,
    refresh: async () => {
      const r = await readWatermark(kv);
      if (r) offer(r.watermark, r.revision);
      return latest;
    },
    ended: watch.ended,
    stop: () => watch.stop(),
  };
}

/** Calls `onValue` with the watermark now (null when none) and at each change, until stopped. */
export async function watchWatermark(kv: KV, log: Logger, onValue: (w: Watermark | null) => void): Promise<ValueWatch> {
  const first = await readWatermark(kv);
  if (!first) onValue(null);
  return watchValues(kv, { key: WATERMARK_KEY, parse: parseWatermark, what: "the watermark", log, onValue: (_k, w) => onValue(w) });
}
