/**
 * Rolling the watermark back to an older run N: serving nodes answer at N again
 * and speed actors rebuild what lies above cut N (they see a watermark below
 * their own and replay the stream from cut N). The watermark is written with
 * compare-and-set, inside the coordinator's run queue, so it cannot race a run
 * in progress; the next run moves forward from there as usual.
 *
 * Refused, with the reason, when N is not a published run older than the
 * current one, when batch view N has been dropped, or when the stream no longer
 * holds what lies above cut N.
 *
 * It is also the repair of a watermark key no batch run wrote (forged, corrupt, deleted; judged
 * by nats/watermark_trust.ts): then any published run whose views are kept is a valid target,
 * and the write is a compare-and-set on the revision that ignores the epoch the bad value
 * carries, so a forged epoch cannot fence the leader out of its own repair.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { RunOutcomes } from "../core/records.js";
import type { Watermark } from "../core/watermark.js";
import { oldestKeptView } from "../ch/schema.js";
import type { Names } from "../nats/names.js";
import { lastRunNumber, readRun, recordRun, runsBetween } from "../nats/run_history.js";
import type { Buckets } from "../nats/setup.js";
import { readWatermarkState, repairWatermark, replaceWatermark } from "../nats/watermark_store.js";
import { checkWatermark } from "../nats/watermark_trust.js";

/** A rollback that cannot be done; the reason says why. Not retryable as asked. */
export class RollbackRefusedError extends Error {
  override readonly name = "RollbackRefusedError";
  constructor(
    readonly run: number,
    readonly reason: string,
  ) {
    super(`cannot roll back to run ${run}: ${reason}`);
  }
}

export interface RollbackDeps {
  nc: NatsConnection;
  names: Names;
  buckets: Buckets;
  viewVersionsKept: number;
  /** The leader epoch the rollback is written under (nats/leadership.ts). */
  epoch: number;
}

export async function rollbackTo(deps: RollbackDeps, run: number): Promise<{ watermark: Watermark; from: number }> {
  const refuse = (reason: string) => new RollbackRefusedError(run, reason);
  if (!Number.isSafeInteger(run) || run < 1) throw refuse("runs start at 1");
  const { buckets } = deps;
  const current = await currentWatermark(buckets);
  if (current.kind === "none" && current.revision === null) throw refuse("no watermark has been published yet");
  // The run the key names, for the record; a bound only when a batch run published it (a forged 1000000 bounds nothing).
  const from = "watermark" in current ? current.watermark.run : 0;
  if (current.kind === "trusted" && run >= from) throw refuse(`the watermark is at run ${from}; roll back to an older run`);
  const record = await readRun(buckets, run);
  if (!record) throw refuse("no such run in the history");
  if (!record.watermark || (record.outcome !== RunOutcomes.published && record.outcome !== RunOutcomes.rolledBack)) {
    throw refuse(`run ${run} did not publish a watermark (outcome ${record.outcome})`);
  }
  const target = record.watermark;
  // The run counter, not the watermark, says which views are kept: the watermark may be forged.
  const last = await lastRunNumber(buckets);
  const oldestView = oldestKeptView(last, deps.viewVersionsKept);
  if (run < oldestView) {
    throw refuse(`its batch views are gone: only the last ${deps.viewVersionsKept} versions are kept (LAMBDA_VIEW_VERSIONS_KEPT); the oldest is run ${oldestView}`);
  }
  const jsm = await jetstreamManager(deps.nc);
  const firstSeq = (await jsm.streams.info(deps.names.eventStream)).state.first_seq;
  const oldest = Math.min(...target.cuts);
  if (firstSeq > oldest) throw refuse(`the stream starts at sequence ${firstSeq}, after cut ${oldest} of run ${run}: the speed layer could not rebuild`);

  const rolledBack: Watermark = { ...target, publishedAtMs: Date.now(), rolledBackFrom: from, epoch: deps.epoch };
  // Compare-and-set: a run that published meanwhile makes this fail rather than be overwritten.
  if (current.kind === "trusted") await replaceWatermark(buckets.watermark, rolledBack, current.revision);
  else await repairWatermark(buckets.watermark, rolledBack, current.revision);
  const note = `rolled back to run ${run} at ${new Date(rolledBack.publishedAtMs).toISOString()}${current.kind === "trusted" ? "" : ` (repairing a watermark no batch run published: ${current.reason})`}`;
  // Only runs the counter handed out can have records: a forged run number is no bound.
  for (const rec of await runsBetween(buckets, run + 1, current.kind === "trusted" ? from : last)) {
    if (rec.outcome === RunOutcomes.published) await recordRun(buckets, { ...rec, outcome: RunOutcomes.rolledBack, detail: note, epoch: deps.epoch });
  }
  return { watermark: rolledBack, from };
}

/** The watermark key's value, judged: published by a batch run (trusted), or not, and why. */
type CurrentWatermark =
  | { readonly kind: "trusted"; readonly watermark: Watermark; readonly revision: number }
  | { readonly kind: "watermark"; readonly watermark: Watermark; readonly revision: number; readonly reason: string }
  | { readonly kind: "none"; readonly revision: number | null; readonly reason: string }
  | { readonly kind: "malformed"; readonly revision: number; readonly reason: string };

async function currentWatermark(buckets: Buckets): Promise<CurrentWatermark> {
  const state = await readWatermarkState(buckets.watermark);
  if (state.kind === "none") return { ...state, reason: "the watermark key holds no watermark" };
  if (state.kind === "malformed") return { kind: "malformed", revision: state.revision, reason: state.problem };
  const verdict = await checkWatermark(buckets, state.watermark);
  return verdict.kind === "trusted" ? { kind: "trusted", watermark: state.watermark, revision: state.revision } : { kind: "watermark", watermark: state.watermark, revision: state.revision, reason: verdict.reason };
}
