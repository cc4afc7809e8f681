/**
 * Stream retention, the rule: after a batch run, where each partition subject of the event stream
 * may be purged up to (messages below the point go, the point itself stays). Pure: the caller
 * reads the run history, the watermark and the archiver's progress (coordinator/retention_run.ts).
 *
 * The stream is a buffer in front of the master dataset. What still reads it, and from where, for
 * partition p (every sequence is a stream sequence; cut_N[p] is run N's barrier on p):
 *
 *  1. Rollback to any kept run N (coordinator/rollback.ts): rollback is allowed to a run that
 *     published (outcome published or rolled_back) and whose batch views are kept, i.e.
 *     N ≥ oldestKeptView(last run handed out, LAMBDA_VIEW_VERSIONS_KEPT). After it, the speed
 *     actors rebuild from cut_N (need 2).
 *  2. A speed actor rebuilding from a cut (no snapshot, an unusable one, a rollback, a catalog
 *     change, a drifted history; actors/actor.ts restoreState) replays from
 *     max(1, cut − warmUpPositions), warmUpPositions = LAMBDA_DEDUPE_HORIZON_IDS × partitions
 *     (actors/host.ts), to relearn the ids its dedupe horizon would have held. It rebuilds from
 *     the current watermark's cut or a rollback target's, so every kept run's cut − warmUp, and
 *     the current watermark's, must stay. (An actor resuming from an older snapshot starts below
 *     that; what it misses lies below the current cut, which its segments drop anyway, and it
 *     still replays the whole warm-up stretch.)
 *  3. Barriers of kept runs: they sit at cut_N[p] itself (kept by 2) and are judged against the
 *     run history in KV (nats/barrier_check.ts), which retention leaves alone. Barriers below the
 *     point are only met by nobody.
 *  4. The archiver reads again from its archived head (batch/archiver.ts readAgain, and every
 *     restart resumes from the lowest head over its tables); rows at or below a head are skipped.
 *     Its progress key p.<p> (nats/archiver_progress.ts) says every event below barrierSeq is in
 *     ClickHouse, so nothing below barrierSeq is ever needed again: the point never passes it.
 *  5. `lambdactl watermark verify` recounts from the master dataset, not the stream; answers
 *     missing a partition count records after the actor's position (nats/partition_records.ts),
 *     which lies above the cut. Neither reads below the point.
 *
 * So point[p] = min(archived barrierSeq[p], min over kept runs N and the watermark of
 * max(1, cut_N[p] − warmUpPositions)). LAMBDA_STREAM_RETENTION_EXTRA_RUNS keeps the cuts of that
 * many more runs before the oldest kept view as well (any run that recorded its cuts).
 *
 * The speed nodes' LAMBDA_DEDUPE_HORIZON_IDS must not exceed the coordinator's: a rebuild would
 * then ask for positions this rule let go (it only loses ids to skip late copies with, which
 * `watermark verify` shows as overlaps; every event above the cut is still there).
 */
import { RunOutcomes, type RunOutcome } from "../core/records.js";
import { oldestKeptView } from "../ch/schema.js";

/** What the rule needs of one run's record. */
export interface RetentionRun {
  readonly run: number;
  readonly outcome: RunOutcome;
  /** The run's barrier sequence per partition; empty when it wrote none. */
  readonly cuts: readonly number[];
  /** Whether the record holds the watermark it published (a rollback target needs it). */
  readonly hasWatermark: boolean;
}

export interface RetentionInput {
  readonly partitions: number;
  /** The last run number handed out (the run counter). */
  readonly lastRun: number;
  /** LAMBDA_VIEW_VERSIONS_KEPT. */
  readonly viewVersionsKept: number;
  /** LAMBDA_STREAM_RETENTION_EXTRA_RUNS. */
  readonly extraRuns: number;
  /** Stream positions a rebuild replays before its cut (LAMBDA_DEDUPE_HORIZON_IDS × partitions). */
  readonly warmUpPositions: number;
  /** Records of the runs from {@link retentionWindowStart} to lastRun (missing ones left out). */
  readonly runs: readonly RetentionRun[];
  /** The run and cuts of the watermark serving answers at, when a batch run published it; else null. */
  readonly watermark: { readonly run: number; readonly cuts: readonly number[] } | null;
  /** Per partition, the barrier sequence the archiver has flushed everything below; 0 when none yet. */
  readonly archivedBelow: readonly number[];
}

export type RetentionPlan =
  /** keepFrom[p]: purge subject p below this sequence (1: nothing to purge). baseRun: whose cuts bound it. */
  | { readonly kind: "purge"; readonly keepFrom: readonly number[]; readonly baseRun: number }
  | { readonly kind: "keep_all"; readonly reason: string };

/** The first run whose record the rule reads. */
export const retentionWindowStart = (lastRun: number, viewVersionsKept: number, extraRuns: number): number => oldestKeptView(lastRun, viewVersionsKept + extraRuns);

/** Where each partition subject may be purged up to; see the module header for why. */
export function planRetention(i: RetentionInput): RetentionPlan {
  if (i.lastRun < 1) return { kind: "keep_all", reason: "no batch run yet" };
  const oldestView = oldestKeptView(i.lastRun, i.viewVersionsKept);
  const extraFrom = retentionWindowStart(i.lastRun, i.viewVersionsKept, i.extraRuns);
  const whole = (cuts: readonly number[]) => cuts.length === i.partitions;
  // Kept: every run a rollback may target, plus the extra runs' cuts, plus the watermark's.
  const kept = i.runs.filter((r) => {
    if (r.run > i.lastRun || !whole(r.cuts)) return false;
    if (r.run >= oldestView) return r.hasWatermark && (r.outcome === RunOutcomes.published || r.outcome === RunOutcomes.rolledBack);
    return r.run >= extraFrom;
  });
  const bounds: { readonly run: number; readonly cuts: readonly number[] }[] = [...kept];
  if (i.watermark) {
    if (!whole(i.watermark.cuts)) return { kind: "keep_all", reason: `the watermark has ${i.watermark.cuts.length} cuts for ${i.partitions} partitions` };
    bounds.push(i.watermark);
  }
  if (bounds.length === 0) return { kind: "keep_all", reason: `no run from ${extraFrom} to ${i.lastRun} published a watermark with its cuts` };
  if (i.archivedBelow.length !== i.partitions) return { kind: "keep_all", reason: `archiver progress for ${i.archivedBelow.length} of ${i.partitions} partitions` };
  const baseRun = Math.min(...bounds.map((b) => b.run));
  const keepFrom = Array.from({ length: i.partitions }, (_, p) => {
    const rebuildFrom = Math.min(...bounds.map((b) => Math.max(1, b.cuts[p]! - i.warmUpPositions)));
    // Nothing the archiver has not flushed goes; 0 (no progress yet) keeps everything.
    return Math.max(1, Math.min(rebuildFrom, i.archivedBelow[p]!));
  });
  return { kind: "purge", keepFrom, baseRun };
}
