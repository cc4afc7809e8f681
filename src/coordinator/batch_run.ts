/**
 * One batch run, the heart of the protocol:
 *   1. write barrier N into every partition subject; its sequence is the cut;
 *   2. wait until the archiver has flushed everything below every barrier;
 *   3. have a batch executor recompute every metric from scratch below the cut
 *      (batch view version N);
 *   4. publish watermark N (compare-and-set, forward only).
 * Each step is recorded in the run's history entry. Every write carries the
 * leader epoch and is refused once a newer leader took over (nats/leadership.ts):
 * a deposed coordinator's run stops at its next step.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { catalogFingerprint, type Catalog } from "../core/catalog.js";
import { recordedDefinitions } from "../core/definitions.js";
import { ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { RunRecord } from "../core/records.js";
import type { Watermark } from "../core/watermark.js";
import { oldestKeptView } from "../ch/schema.js";
import { waitForArchiver } from "../nats/archiver_progress.js";
import { barrierMsgId, encodeBarrier } from "../nats/codec.js";
import { askExecutor } from "../nats/executor_control.js";
import { FencedError } from "../nats/kv.js";
import { NotLeaderError } from "../nats/leadership.js";
import type { Names } from "../nats/names.js";
import { nextRunNumber, recordRun } from "../nats/run_history.js";
import type { Buckets } from "../nats/setup.js";
import { publishWatermark, readWatermark, WatermarkConflictError } from "../nats/watermark_store.js";
import { checkWatermark } from "../nats/watermark_trust.js";
import { applyRetention, type RetentionOptions } from "./retention_run.js";

export interface BatchRunDeps {
  nc: NatsConnection;
  catalog: Catalog;
  names: Names;
  buckets: Buckets;
  /** Resolves with the leader epoch while this coordinator still leads. @throws NotLeaderError */
  confirmLeader(): Promise<number>;
  /** Aborted when this coordinator stands down or stops: the waits of the run end at once (with a NotLeaderError). */
  signal: AbortSignal;
  log: Logger;
}

export interface BatchRunOptions {
  partitions: number;
  coordinatorId: string;
  /** How long to wait for the archiver to flush through the barriers. */
  archiverTimeoutMs: number;
  /** How long the batch executor may stay silent: to take the request, then between two steps. */
  executorTimeoutMs: number;
  viewVersionsKept: number;
  /** What the stream lets go after a published run (coordinator/retention.ts). */
  retention: Omit<RetentionOptions, "partitions" | "viewVersionsKept">;
}

export const RunPhases = { barrier: "barrier", archiverFlush: "archiver_flush", recompute: "recompute", publish: "publish", done: "done" } as const;
export type RunPhase = (typeof RunPhases)[keyof typeof RunPhases];

export type RunProgress = (phase: RunPhase, detail: Record<string, unknown>) => void;

/** How long an executor has to take a request. */
const EXECUTOR_ACK_MS = 10_000;

export async function runBatch(deps: BatchRunDeps, opts: BatchRunOptions, progress: RunProgress = () => {}): Promise<Watermark> {
  const { buckets } = deps;
  const epoch = await deps.confirmLeader();
  const run = await nextRunNumber(buckets, epoch);
  const log = deps.log.child({ run, epoch });
  const startedAtMs = Date.now();
  const js = jetstream(deps.nc);
  let cuts: number[] = [];
  const base = { run, coordinator: opts.coordinatorId, startedAtMs, epoch };
  // Readers trust a barrier only once this record names its sequence as the cut, with this epoch
  // as the barriers' (nats/barrier_check.ts); a later leader's rewrite keeps both.
  const record = (r: Pick<RunRecord, "outcome" | "finishedAtMs" | "detail" | "publishMs" | "watermark" | "phase">) =>
    recordRun(buckets, { ...base, cuts, ...(cuts.length > 0 ? { barrierEpoch: epoch } : {}), ...r });
  /**
   * Records the phase the run enters, after checking this coordinator still leads. Entering the
   * publish phase records the watermark about to be published, so a reader that sees it in the
   * watermark key finds it in the run history (nats/watermark_trust.ts).
   */
  const enter = async (phase: RunPhase, detail: Record<string, unknown> = {}, watermark: Watermark | null = null) => {
    progress(phase, { run, ...detail });
    if ((await deps.confirmLeader()) !== epoch) throw new Error(`leader epoch changed during run ${run}`);
    await record({ outcome: "running", finishedAtMs: null, detail: null, publishMs: null, watermark, phase });
  };
  try {
    let t = performance.now();
    await enter(RunPhases.barrier);
    const acks = await Promise.all(
      Array.from({ length: opts.partitions }, (_, p) => js.publish(deps.names.eventSubject(p), encodeBarrier(run, epoch), { msgID: barrierMsgId(run, p) })),
    );
    cuts = acks.map((a) => a.seq);
    const barrierMs = performance.now() - t;

    t = performance.now();
    await enter(RunPhases.archiverFlush, { cuts });
    await waitForArchiver(buckets.archiver, run, opts.partitions, opts.archiverTimeoutMs, log, deps.signal);
    const archiverFlushMs = performance.now() - t;

    t = performance.now();
    await enter(RunPhases.recompute);
    const result = await askExecutor(
      deps.nc,
      deps.names,
      { kind: "recompute", run, cuts, epoch, catalogFingerprint: catalogFingerprint(deps.catalog) },
      { ackTimeoutMs: EXECUTOR_ACK_MS, idleTimeoutMs: opts.executorTimeoutMs, signal: deps.signal, onProgress: (step, done, total) => progress(RunPhases.recompute, { run, step, done, total }) },
    );
    const recomputeMs = performance.now() - t;

    t = performance.now();
    const watermark: Watermark = {
      run,
      cuts,
      viewVersion: run,
      coveredFromMs: result.coveredFromMs,
      coveredToMs: result.coveredToMs,
      eventsCovered: result.eventsCovered,
      startedAtMs,
      coordinator: opts.coordinatorId,
      ...recordedDefinitions(deps.catalog),
      publishedAtMs: Date.now(),
      timings: { barrierMs, archiverFlushMs, recomputeMs },
      epoch,
    };
    await enter(RunPhases.publish, {}, watermark);
    await publishWatermark(buckets.watermark, watermark);
    const publishMs = performance.now() - t;
    await record({ outcome: "published", finishedAtMs: Date.now(), detail: null, publishMs, watermark, phase: RunPhases.done });
    log.info("watermark published", { cuts, eventsCovered: result.eventsCovered, barrierMs, archiverFlushMs, recomputeMs, publishMs });
    progress(RunPhases.done, { run });
    // Readers may still answer at the previous versions; keep a few.
    await askExecutor(deps.nc, deps.names, { kind: "drop_views", keepFrom: oldestKeptView(run, opts.viewVersionsKept), epoch }, { ackTimeoutMs: EXECUTOR_ACK_MS, idleTimeoutMs: opts.executorTimeoutMs, signal: deps.signal }).catch((err) =>
      log.warn("could not drop old batch view versions; they will be retried after the next run", { err: ensureError(err) }),
    );
    // Events no kept view, rollback or rebuild needs leave the stream; a failure waits for the next run.
    await applyRetention({ nc: deps.nc, names: deps.names, buckets, confirmLeader: deps.confirmLeader, signal: deps.signal, log }, { partitions: opts.partitions, viewVersionsKept: opts.viewVersionsKept, ...opts.retention }).catch((err) =>
      log.warn("stream retention failed; the next run computes and purges again", { err: ensureError(err) }),
    );
    return watermark;
  } catch (err) {
    const e = ensureError(err);
    if (e instanceof FencedError && (await deps.confirmLeader().catch(() => null)) === epoch) {
      // Still the leader, yet fenced: the value carries an epoch no leader wrote (a forged write).
      const detail = `${e.message}; this coordinator still leads with epoch ${epoch}, so that value was not written by a leader: repair the watermark with \`lambdactl watermark rollback <last good run>\``;
      await record({ outcome: "failed", finishedAtMs: Date.now(), detail, publishMs: null, watermark: null }).catch((recErr) =>
        log.error("could not record the failed run", { err: ensureError(recErr) }),
      );
      log.error("batch run failed: fenced by a value no leader wrote", { err: e, currentEpoch: e.currentEpoch });
      throw e;
    }
    if (e instanceof NotLeaderError || e instanceof FencedError) {
      // The new leader records this run (abandoned, or published if it got that far).
      log.warn("batch run stopped: this coordinator no longer leads", { err: e });
      throw e;
    }
    const hint = e instanceof WatermarkConflictError ? await forgedHint(buckets) : "";
    const detail = `${e.message}${hint}`;
    await record({ outcome: "failed", finishedAtMs: Date.now(), detail, publishMs: null, watermark: null }).catch((recErr) =>
      log.error("could not record the failed run", { err: ensureError(recErr) }),
    );
    log.error("batch run failed", { err: e, detail });
    throw hint ? new UntrustedWatermarkError(detail, e) : e;
  }
}

/** A run could not publish because the watermark key holds a value no batch run published; the message says how to repair it. */
export class UntrustedWatermarkError extends Error {
  override readonly name = "UntrustedWatermarkError";
  constructor(message: string, cause: Error) {
    super(message, { cause });
  }
}

/** Why the watermark in the way is not a run's and what to do, or "" when a batch run did publish it. */
async function forgedHint(buckets: Buckets): Promise<string> {
  const current = await readWatermark(buckets.watermark).catch(() => null);
  if (!current) return "";
  const verdict = await checkWatermark(buckets, current.watermark).catch(() => null);
  if (verdict?.kind !== "refused") return "";
  return `; no batch run published that watermark (${verdict.reason}): repair it with \`lambdactl watermark rollback <last good run>\``;
}
