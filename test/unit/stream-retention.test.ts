/**
 * The retention rule (coordinator/retention.ts), pure: where each partition subject may be purged
 * up to, from the run history, the watermark and the archiver's progress.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { planRetention, type RetentionInput, type RetentionRun } from "../../src/coordinator/retention.js";
import { limitProblem } from "../../src/coordinator/retention_run.js";
import { RunOutcomes } from "../../src/core/records.js";

const published = (run: number, cuts: number[]): RetentionRun => ({ run, outcome: RunOutcomes.published, cuts, hasWatermark: true });
const failed = (run: number, cuts: number[]): RetentionRun => ({ run, outcome: RunOutcomes.failed, cuts, hasWatermark: false });

/** Five published runs on two partitions; run r's cut on p is 100·r + p. */
const base = (over: Partial<RetentionInput> = {}): RetentionInput => ({
  partitions: 2,
  lastRun: 5,
  viewVersionsKept: 3,
  extraRuns: 0,
  warmUpPositions: 10,
  runs: [1, 2, 3, 4, 5].map((r) => published(r, [100 * r, 100 * r + 1])),
  watermark: { run: 5, cuts: [500, 501] },
  archivedBelow: [500, 501],
  ...over,
});

test("keeps from the oldest kept view's cut minus the warm-up", () => {
  // Views 3..5 are kept: a rollback to 3 rebuilds from cut 300 and replays 10 positions before it.
  assert.deepEqual(planRetention(base()), { kind: "purge", keepFrom: [290, 291], baseRun: 3 });
});

test("a run that did not publish is no rollback target: the next published one bounds", () => {
  const runs = [published(1, [100, 101]), published(2, [200, 201]), failed(3, [300, 301]), published(4, [400, 401]), published(5, [500, 501])];
  assert.deepEqual(planRetention(base({ runs })), { kind: "purge", keepFrom: [390, 391], baseRun: 4 });
  // A rolled-back run can be rolled back to again.
  const rolled = runs.map((r) => (r.run === 4 ? { ...r, outcome: RunOutcomes.rolledBack } : r));
  assert.deepEqual(planRetention(base({ runs: rolled })), { kind: "purge", keepFrom: [390, 391], baseRun: 4 });
});

test("the watermark's cut is kept even when its run is older than the kept views", () => {
  // Runs 3..5 failed; serving still answers at run 2, whose views were never dropped.
  const runs = [published(1, [100, 101]), published(2, [200, 201]), failed(3, [300, 301]), failed(4, [400, 401]), failed(5, [500, 501])];
  assert.deepEqual(planRetention(base({ runs, watermark: { run: 2, cuts: [200, 201] } })), { kind: "purge", keepFrom: [190, 191], baseRun: 2 });
});

test("never past what the archiver has flushed", () => {
  assert.deepEqual(planRetention(base({ archivedBelow: [150, 0] })), { kind: "purge", keepFrom: [150, 1], baseRun: 3 });
});

test("extra runs keep the cuts of that many runs before the oldest kept view", () => {
  assert.deepEqual(planRetention(base({ extraRuns: 1 })), { kind: "purge", keepFrom: [190, 191], baseRun: 2 });
  // More extra runs than runs: everything from run 1's cut.
  assert.deepEqual(planRetention(base({ extraRuns: 50 })), { kind: "purge", keepFrom: [90, 91], baseRun: 1 });
});

test("the warm-up never goes below the stream's first sequence", () => {
  assert.deepEqual(planRetention(base({ warmUpPositions: 1_000 })), { kind: "purge", keepFrom: [1, 1], baseRun: 3 });
});

test("keeps everything when nothing bounds it", () => {
  assert.equal(planRetention(base({ lastRun: 0, runs: [] })).kind, "keep_all");
  assert.equal(planRetention(base({ runs: [failed(5, [500, 501])], watermark: null })).kind, "keep_all");
  // Cuts of another partition count (the setting changed): not trusted as bounds.
  assert.equal(planRetention(base({ runs: [published(5, [500])], watermark: null })).kind, "keep_all");
  assert.equal(planRetention(base({ watermark: { run: 5, cuts: [500] } })).kind, "keep_all");
  assert.equal(planRetention(base({ archivedBelow: [500] })).kind, "keep_all");
});

test("the next run's plan moves the oldest kept view forward", () => {
  // What nextFrees counts: after run 6 publishes, views 4..6 are kept (run 6 has no record yet).
  assert.deepEqual(planRetention(base({ lastRun: 6 })), { kind: "purge", keepFrom: [390, 391], baseRun: 4 });
});

test("a stream limit is reported, and said to have removed what the plan keeps", () => {
  const usage = { messages: 10, bytes: 1_000, firstSeq: 300, lastSeq: 600, limits: { maxAgeMs: 60_000, maxBytes: null, maxMsgs: null, maxMsgsPerSubject: null } };
  const plan = planRetention(base());
  assert.match(limitProblem(usage, plan) ?? "", /max age 60000 ms.*starts at sequence 300, above 290/);
  assert.doesNotMatch(limitProblem({ ...usage, firstSeq: 200 }, plan) ?? "", /starts at/);
  assert.equal(limitProblem({ ...usage, limits: { maxAgeMs: null, maxBytes: null, maxMsgs: null, maxMsgsPerSubject: null } }, plan), null);
});
