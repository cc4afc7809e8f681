/**
 * Stream retention after a batch run, by the leading coordinator: reads what the rule needs
 * (coordinator/retention.ts), records the plan under its leader epoch, then purges each partition
 * subject below its point. Only the leader purges: the record is a fenced write, made before any
 * purge, so a deposed leader stops at it. (One deposed right after the write still purges only
 * below points computed from an older history, which are at or below the new leader's: runs and
 * archiver progress only move forward, and a rollback targets a run the rule kept.)
 *
 * Never fails a run: the caller logs a failure, and the next run computes and purges again.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { StreamRetentionModes, type StreamRetentionMode } from "../core/config.js";
import { ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { readArchivedBelow } from "../nats/archiver_progress.js";
import type { Names } from "../nats/names.js";
import { runsBetween, lastRunNumber } from "../nats/run_history.js";
import type { Buckets } from "../nats/setup.js";
import { countPartitionBelow, purgePartitionBelow, readStreamUsage, recordRetention, type RetentionRecord, type StreamUsage } from "../nats/stream_retention.js";
import { readWatermarkState } from "../nats/watermark_store.js";
import { checkWatermark } from "../nats/watermark_trust.js";
import { planRetention, retentionWindowStart, type RetentionInput, type RetentionPlan } from "./retention.js";

export interface RetentionRunDeps {
  nc: NatsConnection;
  names: Names;
  buckets: Buckets;
  /** Resolves with the leader epoch while this coordinator still leads. @throws NotLeaderError */
  confirmLeader(): Promise<number>;
  /** Aborted when this coordinator stands down: no purge starts after it. */
  signal: AbortSignal;
  log: Logger;
}

export interface RetentionOptions {
  partitions: number;
  /** LAMBDA_STREAM_RETENTION. */
  mode: StreamRetentionMode;
  /** LAMBDA_VIEW_VERSIONS_KEPT. */
  viewVersionsKept: number;
  /** LAMBDA_STREAM_RETENTION_EXTRA_RUNS. */
  extraRuns: number;
  /** What a speed actor replays before a cut: LAMBDA_DEDUPE_HORIZON_IDS × partitions (actors/host.ts). */
  warmUpPositions: number;
}

/** Reads the history, archiver progress and watermark the rule needs, for the run counter at `lastRun`. */
async function retentionInput(deps: RetentionRunDeps, opts: RetentionOptions, lastRun: number): Promise<Omit<RetentionInput, "lastRun">> {
  const { buckets } = deps;
  // The window of `lastRun`; the next run's (for nextFrees) starts at or after it.
  const runs = (await runsBetween(buckets, retentionWindowStart(lastRun, opts.viewVersionsKept, opts.extraRuns), lastRun)).map((r) => ({ run: r.run, outcome: r.outcome, cuts: r.cuts, hasWatermark: r.watermark !== null }));
  // A watermark no batch run published bounds nothing (it may be forged); the kept runs still do.
  const state = await readWatermarkState(buckets.watermark);
  const trusted = state.kind === "watermark" && (await checkWatermark(buckets, state.watermark)).kind === "trusted";
  return {
    partitions: opts.partitions,
    viewVersionsKept: opts.viewVersionsKept,
    extraRuns: opts.extraRuns,
    warmUpPositions: opts.warmUpPositions,
    runs,
    watermark: trusted && state.kind === "watermark" ? { run: state.watermark.run, cuts: state.watermark.cuts } : null,
    archivedBelow: await readArchivedBelow(buckets.archiver, opts.partitions),
  };
}

/**
 * A stream limit (max age, bytes, messages) removes messages by itself, whatever rollback and
 * rebuild need; the runtime does not set one. Says what it is, and whether it has already removed
 * something the plan keeps (limits remove the oldest messages first, so a first sequence past a
 * point means it did). Null without limits.
 */
export function limitProblem(usage: StreamUsage, plan: RetentionPlan): string | null {
  const l = usage.limits;
  const set = [
    l.maxAgeMs === null ? null : `max age ${l.maxAgeMs} ms`,
    l.maxBytes === null ? null : `max bytes ${l.maxBytes}`,
    l.maxMsgs === null ? null : `max messages ${l.maxMsgs}`,
    l.maxMsgsPerSubject === null ? null : `max messages per subject ${l.maxMsgsPerSubject}`,
  ].filter((s): s is string => s !== null);
  if (set.length === 0) return null;
  const needed = plan.kind === "purge" ? Math.min(...plan.keepFrom) : 1;
  const lost = usage.messages > 0 && usage.firstSeq > needed;
  return (
    `the event stream has limits (${set.join(", ")}) that remove events whatever rollback and rebuild need` +
    (lost ? `; it already starts at sequence ${usage.firstSeq}, above ${needed}, which rollback or a speed rebuild needs` : "") +
    "; remove them (nats stream edit) and let LAMBDA_STREAM_RETENTION bound the stream"
  );
}

/**
 * Computes the plan after the run counter's last run, records it, and (mode kept-views) purges.
 * @returns the record written @throws NotLeaderError, FencedError, NATS errors (the caller logs them)
 */
export async function applyRetention(deps: RetentionRunDeps, opts: RetentionOptions): Promise<RetentionRecord> {
  const epoch = await deps.confirmLeader();
  const lastRun = await lastRunNumber(deps.buckets);
  const log = deps.log.child({ run: lastRun, epoch });
  const input = await retentionInput(deps, opts, lastRun);
  const plan = planRetention({ ...input, lastRun });
  // What the run after this one would keep, if it publishes (its own cuts are not known yet).
  const next = planRetention({ ...input, lastRun: lastRun + 1 });
  const jsm = await jetstreamManager(deps.nc);
  const limits = limitProblem(await readStreamUsage(deps.nc, deps.names), plan);
  if (limits) log.warn(limits, { mode: opts.mode });

  const none = new Array<number>(opts.partitions).fill(0);
  const keepFrom = plan.kind === "purge" ? [...plan.keepFrom] : new Array<number>(opts.partitions).fill(1);
  const base: RetentionRecord = {
    run: lastRun,
    epoch,
    atMs: Date.now(),
    mode: opts.mode,
    viewVersionsKept: opts.viewVersionsKept,
    extraRuns: opts.extraRuns,
    warmUpPositions: opts.warmUpPositions,
    keepFrom,
    purged: none,
    nextFrees: none,
    problem: plan.kind === "keep_all" ? `kept everything: ${plan.reason}` : null,
  };
  // Fenced, before any purge: a newer leader's record stops this one here.
  await recordRetention(deps.buckets.coordinator, base);

  const purged = [...none];
  let problem = base.problem;
  if (opts.mode === StreamRetentionModes.keptViews && plan.kind === "purge") {
    for (let p = 0; p < opts.partitions; p++) {
      deps.signal.throwIfAborted();
      try {
        purged[p] = await purgePartitionBelow(jsm, deps.names, p, keepFrom[p]!);
      } catch (err) {
        problem = `purging partition ${p} below sequence ${keepFrom[p]} failed: ${ensureError(err).message}`;
        log.warn("could not purge a partition subject; the next run tries again", { partition: p, below: keepFrom[p], err: ensureError(err) });
      }
    }
  }
  const nextFrom = next.kind === "purge" ? next.keepFrom : keepFrom;
  const nextFrees = await Promise.all(nextFrom.map((below, p) => countPartitionBelow(jsm, deps.names, p, below)));
  const done: RetentionRecord = { ...base, purged, nextFrees, problem, atMs: Date.now() };
  await recordRetention(deps.buckets.coordinator, done);
  const total = purged.reduce((a, b) => a + b, 0);
  if (opts.mode === StreamRetentionModes.off) log.debug("stream retention is off; nothing purged", { wouldFreeNext: nextFrees.reduce((a, b) => a + b, 0) });
  else log.info("stream retention applied", { purged: total, keepFrom, baseRun: plan.kind === "purge" ? plan.baseRun : null, ...(problem ? { problem } : {}) });
  return done;
}
