/**
 * The decisions that keep forged control records off the seam (issue #13): which barriers the
 * speed actors and the archiver trust (src/nats/barrier_check.ts judgeBarrier), which watermarks
 * serving and speed nodes take (src/nats/watermark_trust.ts judgeWatermark), how a barrier's
 * epoch is read off the stream (src/nats/codec.ts), and when an actor needs the check at all
 * (src/actors/speed_state.ts barrierActs).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { applyRecord, barrierActs, createSpeedState, speedCatalog } from "../../src/actors/speed_state.js";
import type { RunRecord } from "../../src/core/records.js";
import type { Watermark } from "../../src/core/watermark.js";
import { BARRIER_CUTS_WAIT_MS, BARRIER_UNKNOWN_RUN_WAIT_MS, judgeBarrier, type BarrierSeen } from "../../src/nats/barrier_check.js";
import { encode, encodeBarrier, readStreamRecord } from "../../src/nats/codec.js";
import { judgeWatermark, WATERMARK_RECORD_WAIT_MS } from "../../src/nats/watermark_trust.js";

const watermark = (run: number, cuts: number[], extra: Partial<Watermark> = {}): Watermark => ({
  run,
  cuts,
  viewVersion: run,
  coveredFromMs: null,
  coveredToMs: null,
  eventsCovered: 0,
  startedAtMs: 1,
  publishedAtMs: 2,
  coordinator: "c-1",
  timings: { barrierMs: 0, archiverFlushMs: 0, recomputeMs: 0 },
  epoch: 2,
  ...extra,
});

const record = (run: number, extra: Partial<RunRecord> = {}): RunRecord => ({
  run,
  outcome: "published",
  cuts: [10, 20, 30],
  coordinator: "c-1",
  startedAtMs: 1,
  finishedAtMs: 2,
  detail: null,
  publishMs: 1,
  watermark: watermark(run, [10, 20, 30]),
  epoch: 2,
  barrierEpoch: 2,
  ...extra,
});

const barrier = (b: Partial<BarrierSeen> = {}): BarrierSeen => ({ partition: 1, seq: 20, run: 3, epoch: 2, ...b });

test("a barrier at its run's recorded cut, with the epoch that wrote the run's barriers, is trusted", () => {
  assert.deepEqual(judgeBarrier(barrier(), record(3), 3), { kind: "trusted" });
  // Whatever became of the run since: failed, abandoned (by a later leader that kept the cuts and their epoch), rolled back.
  for (const outcome of ["failed", "abandoned", "rolled_back", "running"] as const) {
    assert.deepEqual(judgeBarrier(barrier(), record(3, { outcome, epoch: 5, watermark: null }), 9), { kind: "trusted" }, outcome);
  }
  // A record from before barrier epochs were recorded: the cut alone names the barrier.
  const { barrierEpoch: _e, ...legacy } = record(3);
  assert.deepEqual(judgeBarrier(barrier({ epoch: undefined }), legacy, 3), { kind: "trusted" });
});

test("a forged barrier is ignored: another sequence, another epoch, a run that never recorded a cut there", () => {
  const at = judgeBarrier(barrier({ seq: 19 }), record(3), 3);
  assert.equal(at.kind, "ignored");
  assert.match(at.kind === "ignored" ? at.reason : "", /run 3's barrier on partition 1 is at sequence 20, not 19/);
  const epoch = judgeBarrier(barrier({ epoch: 7 }), record(3), 3);
  assert.equal(epoch.kind, "ignored");
  assert.match(epoch.kind === "ignored" ? epoch.reason : "", /carries leader epoch 7, run 3's barriers were written with epoch 2/);
  // `{k:"b", r:3}` with no epoch, at the right sequence, cannot be: but if it were, it still lacks the epoch.
  assert.equal(judgeBarrier(barrier({ epoch: undefined }), record(3), 3).kind, "ignored");
  const noCuts = judgeBarrier(barrier(), record(3, { outcome: "abandoned", cuts: [], watermark: null }), 3);
  assert.equal(noCuts.kind, "ignored");
  assert.match(noCuts.kind === "ignored" ? noCuts.reason : "", /ended \(abandoned\) without recording a cut for partition 1/);
  // A partition the recorded cuts do not reach.
  assert.equal(judgeBarrier(barrier({ partition: 3 }), record(3, { outcome: "failed" }), 3).kind, "ignored");
});

test("a barrier the run history cannot judge yet is waited on, briefly for a run never handed out", () => {
  assert.deepEqual(judgeBarrier(barrier(), record(3, { outcome: "running", cuts: [], watermark: null }), 3), {
    kind: "undecided",
    reason: "run 3 has not recorded its cuts yet",
    waitMs: BARRIER_CUTS_WAIT_MS,
  });
  assert.deepEqual(judgeBarrier(barrier({ run: 1_000_000 }), null, 2), {
    kind: "undecided",
    reason: "run 1000000 was never handed out (the run counter is at 2)",
    waitMs: BARRIER_UNKNOWN_RUN_WAIT_MS,
  });
  const noRecord = judgeBarrier(barrier(), null, 3);
  assert.equal(noRecord.kind === "undecided" && noRecord.waitMs, BARRIER_CUTS_WAIT_MS);
  assert.ok(BARRIER_UNKNOWN_RUN_WAIT_MS < BARRIER_CUTS_WAIT_MS);
});

test("a barrier's epoch is read off the stream only when it is a whole number", () => {
  assert.deepEqual(readStreamRecord(encodeBarrier(3, 2)), { kind: "barrier", run: 3, epoch: 2 });
  assert.deepEqual(readStreamRecord(encode({ k: "b", r: 3 })), { kind: "barrier", run: 3 });
  assert.deepEqual(readStreamRecord(encode({ k: "b", r: 3, e: "2" })), { kind: "barrier", run: 3 });
  assert.deepEqual(readStreamRecord(encode({ k: "b", r: 3, e: 1.5 })), { kind: "barrier", run: 3 });
});

test("an actor checks only a barrier that would move its seam", () => {
  const catalog = speedCatalog([]);
  const state = createSpeedState(0, 100, 0, 0, 5);
  assert.equal(barrierActs(state, 4, 1), false, "in the warm-up before a cut");
  assert.equal(barrierActs(state, 5, 1), true);
  applyRecord(state, 5, { k: "b", r: 1 }, catalog);
  assert.equal(barrierActs(state, 5, 2), false, "a redelivery");
  assert.equal(barrierActs(state, 6, 1), false, "at or below the open segment's run: applyRecord skips it as stale");
  assert.equal(barrierActs(state, 6, 2), true);
});

test("a watermark is taken only as a batch run published it, with an epoch some leader held", () => {
  const w = watermark(3, [10, 20, 30]);
  assert.deepEqual(judgeWatermark(w, record(3), 2), { kind: "trusted" });
  // Rolled back to later (and written again by a newer leader's rollback): still run 3's.
  assert.deepEqual(judgeWatermark({ ...w, epoch: 4, rolledBackFrom: 5, publishedAtMs: 9 }, record(3, { outcome: "rolled_back" }), 4), { kind: "trusted" });
  // Recorded on entering the publish phase, before the compare-and-set.
  assert.deepEqual(judgeWatermark(w, record(3, { outcome: "running", phase: "publish" }), 2), { kind: "trusted" });

  const refused = (j: ReturnType<typeof judgeWatermark>) => (j.kind === "refused" ? j.reason : `not refused: ${JSON.stringify(j)}`);
  assert.match(refused(judgeWatermark({ ...w, epoch: 1e12 }, record(3), 2)), /carries leader epoch 1000000000000, but no coordinator has led with an epoch above 2/);
  assert.match(refused(judgeWatermark(watermark(3, [10, 21, 30]), record(3), 2)), /not the watermark run 3 published: view version 3 and cuts \[10, 21, 30\], the run history has view version 3 and cuts \[10, 20, 30\]/);
  assert.match(refused(judgeWatermark({ ...w, viewVersion: 4 }, record(3), 2)), /view version 4/);
  assert.match(refused(judgeWatermark(w, record(3, { outcome: "failed", watermark: null }), 2)), /run 3 published no watermark \(outcome failed\)/);
  assert.match(refused(judgeWatermark(w, record(3, { outcome: "abandoned" }), 2)), /run 3 did not publish \(outcome abandoned\)/);

  assert.deepEqual(judgeWatermark(watermark(1_000_000, [1, 2, 3]), null, 2), { kind: "undecided", reason: "run 1000000 is not in the run history", waitMs: WATERMARK_RECORD_WAIT_MS });
  assert.equal(judgeWatermark(w, record(3, { outcome: "running", watermark: null, phase: "recompute" }), 2).kind, "undecided");
});
