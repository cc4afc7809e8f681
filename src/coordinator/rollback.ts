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
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import type { Watermark } from "../core/watermark.js";
import { oldestKeptView } from "../ch/schema.js";
import type { Names } from "../nats/names.js";
import { lastRunNumber, readRun, recordRun, runsBetween } from "../nats/run_history.js";
import type { Buckets } from "../nats/setup.js";
import { readWatermark, replaceWatermark } from "../nats/watermark_store.js";

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
  const current = await readWatermark(deps.buckets.watermark);
  if (!current) throw refuse("no watermark has been published yet");
  const from = current.watermark.run;
  if (!Number.isSafeInteger(run) || run < 1) throw refuse("runs start at 1");
  if (run >= from) throw refuse(`the watermark is at run ${from}; roll back to an older run`);
  const record = await readRun(deps.buckets, run);
  if (!record) throw refuse("no such run in the history");
  if (!record.watermark) throw refuse(`run ${run} did not publish a watermark (outcome ${record.outcome})`);
  const target = record.watermark;
  const last = Math.max(from, await lastRunNumber(deps.buckets));
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
  await replaceWatermark(deps.buckets.watermark, rolledBack, current.revision);
  const note = `rolled back to run ${run} at ${new Date(rolledBack.publishedAtMs).toISOString()}`;
  for (const rec of await runsBetween(deps.buckets, run + 1, from)) {
    if (rec.outcome === "published") await recordRun(deps.buckets, { ...rec, outcome: "rolled_back", detail: note, epoch: deps.epoch });
  }
  return { watermark: rolledBack, from };
}
