/**
 * Whether the value in the watermark key is a watermark a batch run published.
 *
 * Anything with write access to the watermark bucket can put a value there; a forged run
 * 1000000 made every answer 0 (no batch view has that version) and fenced the real coordinator
 * out ("the watermark is already at run 1000000"). The readers that act on the watermark —
 * serving nodes (they answer at it) and speed nodes (they drop segments at it) — and the
 * coordinator's repair (coordinator/rollback.ts) therefore check it against what only the
 * leader writes: the run history. A watermark is trusted when
 *  - the history holds run N's record with a watermark (the coordinator records it on entering
 *    the publish phase, before the compare-and-set, so a reader never sees a genuine watermark
 *    before its record), outcome running (publishing), published or rolled back;
 *  - its run, view version and cuts are the ones that record holds;
 *  - its epoch is no newer than the leadership key's: epochs are handed out there, so a higher
 *    one was written by no leader (it would fence every real leader out).
 */
import type { Watermark } from "../core/watermark.js";
import { RunOutcomes, type RunRecord } from "../core/records.js";
import { epochOf } from "./kv.js";
import { readLeader } from "./leadership.js";
import { readRun, type RunHistoryBuckets } from "./run_history.js";

/** What the run history says of a watermark. */
export type WatermarkJudgement =
  | { readonly kind: "trusted" }
  | { readonly kind: "refused"; readonly reason: string }
  /** Not decided yet: the record may lag the watermark on a replica; ask again until `waitMs` after the first ask. */
  | { readonly kind: "undecided"; readonly reason: string; readonly waitMs: number };

/** How long a reader waits for a watermark's run record to show it (it is written before the watermark; only a lagging replica delays it). */
export const WATERMARK_RECORD_WAIT_MS = 2_000;

const sameCuts = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((c, i) => c === b[i]);

/**
 * The decision, pure: `record` is run `w.run`'s record (null when the history has none),
 * `leaderEpoch` the leadership key's epoch (0 when no coordinator ever led).
 */
export function judgeWatermark(w: Watermark, record: RunRecord | null, leaderEpoch: number): WatermarkJudgement {
  if (epochOf(w) > leaderEpoch) return { kind: "refused", reason: `it carries leader epoch ${epochOf(w)}, but no coordinator has led with an epoch above ${leaderEpoch}` };
  if (!record) return { kind: "undecided", reason: `run ${w.run} is not in the run history`, waitMs: WATERMARK_RECORD_WAIT_MS };
  const published = record.watermark;
  if (!published) {
    if (record.outcome === RunOutcomes.running) return { kind: "undecided", reason: `run ${w.run} has not recorded a watermark (it is at phase ${record.phase ?? "unknown"})`, waitMs: WATERMARK_RECORD_WAIT_MS };
    return { kind: "refused", reason: `run ${w.run} published no watermark (outcome ${record.outcome})` };
  }
  if (record.outcome === RunOutcomes.failed || record.outcome === RunOutcomes.abandoned) return { kind: "refused", reason: `run ${w.run} did not publish (outcome ${record.outcome})` };
  if (published.run !== w.run || published.viewVersion !== w.viewVersion || !sameCuts(published.cuts, w.cuts)) {
    return {
      kind: "refused",
      reason: `it is not the watermark run ${w.run} published: view version ${w.viewVersion} and cuts [${w.cuts.join(", ")}], the run history has view version ${published.viewVersion} and cuts [${published.cuts.join(", ")}]`,
    };
  }
  return { kind: "trusted" };
}

export type WatermarkVerdict = { readonly kind: "trusted" } | { readonly kind: "refused"; readonly reason: string };

/**
 * Checks `w` against the run history and the leadership key, reading again while undecided
 * (up to {@link WATERMARK_RECORD_WAIT_MS}). @throws what a read throws (the caller decides)
 */
export async function checkWatermark(buckets: RunHistoryBuckets, w: Watermark, pollMs = 50): Promise<WatermarkVerdict> {
  const startedAt = Date.now();
  for (;;) {
    const [record, leader] = await Promise.all([readRun(buckets, w.run), readLeader(buckets.coordinator)]);
    const j = judgeWatermark(w, record, leader?.value.epoch ?? 0);
    if (j.kind !== "undecided") return j;
    if (Date.now() - startedAt >= j.waitMs) return { kind: "refused", reason: j.reason };
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
