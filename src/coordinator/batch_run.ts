/**
 * One batch run, the heart of the protocol:
 *   1. write barrier N into every partition subject; its sequence is the cut;
 *   2. wait until the archiver has flushed everything below every barrier;
 *   3. recompute every metric from scratch below the cut (batch view version N);
 *   4. publish watermark N (compare-and-set, forward only).
 * Each step is recorded in the run's history entry.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import type { ClickHouseClient } from "@clickhouse/client";
import type { Catalog } from "../core/catalog.js";
import { recordedDefinitions } from "../core/definitions.js";
import { ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Watermark } from "../core/watermark.js";
import { recomputeViews, dropViewsBefore } from "../batch/index.js";
import { oldestKeptView } from "../ch/schema.js";
import { waitForArchiver } from "../nats/archiver_progress.js";
import { barrierMsgId, encodeBarrier } from "../nats/codec.js";
import type { Names } from "../nats/names.js";
import { nextRunNumber, recordRun } from "../nats/run_history.js";
import type { Buckets } from "../nats/setup.js";
import { publishWatermark } from "../nats/watermark_store.js";

export interface BatchRunDeps {
  nc: NatsConnection;
  ch: ClickHouseClient;
  catalog: Catalog;
  names: Names;
  buckets: Buckets;
  log: Logger;
}

export interface BatchRunOptions {
  partitions: number;
  database: string;
  coordinatorId: string;
  /** How long to wait for the archiver to flush through the barriers. */
  archiverTimeoutMs: number;
  viewVersionsKept: number;
}

export const RunPhases = { barrier: "barrier", archiverFlush: "archiver_flush", recompute: "recompute", publish: "publish", done: "done" } as const;
export type RunPhase = (typeof RunPhases)[keyof typeof RunPhases];

export type RunProgress = (phase: RunPhase, detail: Record<string, unknown>) => void;

export async function runBatch(deps: BatchRunDeps, opts: BatchRunOptions, progress: RunProgress = () => {}): Promise<Watermark> {
  const { buckets } = deps;
  const run = await nextRunNumber(buckets);
  const log = deps.log.child({ run });
  const startedAtMs = Date.now();
  const js = jetstream(deps.nc);
  let cuts: number[] = [];
  await recordRun(buckets, { run, outcome: "running", cuts, coordinator: opts.coordinatorId, startedAtMs, finishedAtMs: null, detail: null, publishMs: null, watermark: null });
  try {
    let t = performance.now();
    progress(RunPhases.barrier, { run });
    const acks = await Promise.all(
      Array.from({ length: opts.partitions }, (_, p) => js.publish(deps.names.eventSubject(p), encodeBarrier(run), { msgID: barrierMsgId(run, p) })),
    );
    cuts = acks.map((a) => a.seq);
    const barrierMs = performance.now() - t;

    t = performance.now();
    progress(RunPhases.archiverFlush, { run, cuts });
    await waitForArchiver(buckets.archiver, run, opts.partitions, opts.archiverTimeoutMs, log);
    const archiverFlushMs = performance.now() - t;

    t = performance.now();
    progress(RunPhases.recompute, { run });
    const result = await recomputeViews(deps.ch, deps.catalog, opts.database, {
      run,
      cuts,
      onStep: (step, done, total) => progress(RunPhases.recompute, { run, step, done, total }),
    });
    const recomputeMs = performance.now() - t;

    t = performance.now();
    progress(RunPhases.publish, { run });
    const base = {
      run,
      cuts,
      viewVersion: run,
      coveredFromMs: result.coveredFromMs,
      coveredToMs: result.coveredToMs,
      eventsCovered: result.eventsCovered,
      startedAtMs,
      coordinator: opts.coordinatorId,
      ...recordedDefinitions(deps.catalog),
    };
    const watermark: Watermark = { ...base, publishedAtMs: Date.now(), timings: { barrierMs, archiverFlushMs, recomputeMs } };
    await publishWatermark(buckets.watermark, watermark);
    const publishMs = performance.now() - t;
    await recordRun(buckets, { run, outcome: "published", cuts, coordinator: opts.coordinatorId, startedAtMs, finishedAtMs: Date.now(), detail: null, publishMs, watermark });
    log.info("watermark published", { cuts, eventsCovered: result.eventsCovered, barrierMs, archiverFlushMs, recomputeMs, publishMs });
    progress(RunPhases.done, { run });
    // Readers may still answer at the previous versions; keep a few.
    await dropViewsBefore(deps.ch, deps.catalog, opts.database, oldestKeptView(run, opts.viewVersionsKept)).catch((err) =>
      log.warn("could not drop old batch view versions; they will be retried after the next run", { err: ensureError(err) }),
    );
    return watermark;
  } catch (err) {
    const e = ensureError(err);
    await recordRun(buckets, { run, outcome: "failed", cuts, coordinator: opts.coordinatorId, startedAtMs, finishedAtMs: Date.now(), detail: e.message, publishMs: null, watermark: null }).catch(
      (recErr) => log.error("could not record the failed run", { err: ensureError(recErr) }),
    );
    log.error("batch run failed", { err: e });
    throw e;
  }
}
