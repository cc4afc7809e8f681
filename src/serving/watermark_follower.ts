/**
 * The watermark a serving node answers at: the newest value of the watermark
 * key, by KV revision. Usually that is the highest run; after an operator's
 * rollback it is an older run, which is the point of a rollback.
 */
import type { KV } from "@nats-io/kv";
import { ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { parseWatermark, type Watermark } from "../core/watermark.js";
import { readWatermark } from "../coordinator/index.js";
import { decode } from "../nats/codec.js";
import { WATERMARK_KEY } from "../nats/names.js";
import type { WatermarkSource } from "./query.js";

export interface WatermarkFollower extends WatermarkSource {
  stop(): void;
}

/**
 * Follows the watermark key of `kv`. `onNew` is called with each newer watermark (the first
 * one at start too); it must not throw.
 */
export async function followWatermark(kv: KV, log: Logger, onNew: (w: Watermark) => void = () => {}): Promise<WatermarkFollower> {
  let latest: Watermark | null = null;
  let revision = 0;
  const offer = (w: Watermark, rev: number) => {
    if (rev > revision) {
      const changed = latest === null || latest.run !== w.run || latest.viewVersion !== w.viewVersion || latest.publishedAtMs !== w.publishedAtMs;
      latest = w;
      revision = rev;
      if (changed) onNew(w);
    }
  };
  const first = await readWatermark(kv);
  if (first) offer(first.watermark, first.revision);
  const watch = await kv.watch({ key: WATERMARK_KEY });
  void (async () => {
    for await (const e of watch) {
      if (e.operation !== "PUT") continue;
      try {
        offer(parseWatermark(decode(e.value)), e.revision);
      } catch (err) {
        log.error("ignoring a malformed watermark", { err: ensureError(err) });
      }
    }
  })();
  return {
    current: () => latest,
    refresh: async () => {
      const r = await readWatermark(kv);
      if (r) offer(r.watermark, r.revision);
      return latest;
    },
    stop: () => watch.stop(),
  };
}
