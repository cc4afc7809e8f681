/**
 * What a coordinator does the moment it becomes leader, before any other write:
 * stamp its epoch on the run counter, the stream retention record, the watermark and every assignment (so
 * the deposed leader's late writes are refused from here on), then give every
 * run the old leader left unfinished an outcome: "published" if its watermark
 * made it, "abandoned" (naming who and at which phase) otherwise. So no run
 * number stays "running" forever and none is skipped without a record.
 */
import type { Logger } from "../core/logger.js";
import { RunOutcomes } from "../core/records.js";
import { readAssignments, stampAssignment } from "../nats/assignments_store.js";
import { lastRunNumber, readRun, recordRun, stampRunCounter } from "../nats/run_history.js";
import type { Buckets } from "../nats/setup.js";
import { stampRetention } from "../nats/stream_retention.js";
import { readWatermarkState, stampWatermark } from "../nats/watermark_store.js";
import { checkWatermark } from "../nats/watermark_trust.js";

/** How many of the newest run numbers a new leader checks for unfinished runs. */
export const RECOVERY_SCAN_RUNS = 50;

export async function takeOver(buckets: Buckets, partitions: number, coordinatorId: string, epoch: number, log: Logger): Promise<void> {
  await stampRunCounter(buckets, epoch);
  await stampRetention(buckets.coordinator, epoch);
  // A watermark no batch run published is neither stamped (a forged epoch would fence this leader
  // out, and taking over would fail for good) nor taken as a run's: an operator repairs it with a rollback.
  const state = await readWatermarkState(buckets.watermark);
  const verdict = state.kind === "watermark" ? await checkWatermark(buckets, state.watermark) : null;
  const watermark = state.kind === "watermark" && verdict?.kind === "trusted" ? state.watermark : null;
  if (watermark) await stampWatermark(buckets.watermark, epoch);
  else if (state.kind === "malformed" || verdict?.kind === "refused") {
    const reason = state.kind === "malformed" ? state.problem : verdict?.kind === "refused" ? verdict.reason : "";
    log.error("the watermark key holds a value no batch run published; not stamping it. Repair it with `lambdactl watermark rollback <good run>`", { run: state.kind === "watermark" ? state.watermark.run : null, reason });
  }
  for (const p of (await readAssignments(buckets.assignments, partitions)).keys()) await stampAssignment(buckets.assignments, p, epoch);

  const last = await lastRunNumber(buckets);
  const now = Date.now();
  for (let run = last; run >= 1 && run > last - RECOVERY_SCAN_RUNS; run--) {
    const rec = await readRun(buckets, run);
    if (rec && rec.outcome !== RunOutcomes.running) continue;
    const base = { run, cuts: rec?.cuts ?? [], coordinator: rec?.coordinator ?? "(unknown)", startedAtMs: rec?.startedAtMs ?? now, finishedAtMs: now, publishMs: null, epoch, phase: rec?.phase ?? "before its first record", ...(rec?.barrierEpoch === undefined ? {} : { barrierEpoch: rec.barrierEpoch }) };
    if (watermark?.run === run) {
      await recordRun(buckets, { ...base, outcome: RunOutcomes.published, detail: `recorded by coordinator ${coordinatorId} (epoch ${epoch}) after its coordinator stopped leading`, watermark });
      log.info("recorded a run the previous leader published but did not record", { run });
    } else {
      const detail = `abandoned by coordinator ${base.coordinator} at phase ${base.phase}; coordinator ${coordinatorId} took over with epoch ${epoch}`;
      await recordRun(buckets, { ...base, outcome: RunOutcomes.abandoned, detail, watermark: null });
      log.warn("recorded a run the previous leader left unfinished as abandoned", { run, phase: base.phase, by: base.coordinator });
    }
  }
}
