/**
 * Whether a barrier read from a partition subject was written by a batch run.
 *
 * Anything can be published on a partition subject, and a barrier moves the seam: a speed actor
 * closes its segment at it (and drops the segment when that run's watermark arrives), the archiver
 * reports "flushed through run r" at it (and the coordinator recomputes run r once it does). A
 * forged barrier of a future run therefore made events count twice for good, and a forged high
 * run in the archiver's progress would let a batch run skip events. So both readers ask here
 * first: a barrier of run r on partition p at stream sequence s, carrying epoch e, is trusted only
 * when the run history (key `run.<r>`, nats/run_history.ts) records cut s for partition p and e as
 * the epoch of the leader that wrote run r's barriers. Nobody but that leader can make that true:
 * its record names the sequence its own publish was given, and a sequence is given once.
 *
 * The coordinator records the cuts right after the barrier publishes are acknowledged, so a
 * reader may see a genuine barrier first: it then waits (polling, with a deadline) until the
 * record shows the cuts or the run ends without them. A run number the run counter has not
 * handed out is no run at all (the counter moves before the record, the record before the
 * barrier); it is ignored after a short wait that covers a replica behind the leader.
 *
 * Barriers of runs that failed or were abandoned are trusted like any other when the record
 * names them: no watermark names such a run, so for the speed actor the barrier only splits a
 * segment that the next watermark drops whole, and the archiver's progress only says what is true
 * (it flushed below that sequence). Ignoring them would be exact as well; trusting them keeps the
 * rule one rule. Records whose cuts are known never change them, so they are cached: an actor
 * that replays the stream does not ask again for runs long gone.
 */
import { ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { RunOutcomes, type RunRecord } from "../core/records.js";
import { lastRunNumber, readRun, type RunHistoryBuckets } from "./run_history.js";

/** A barrier as read from partition `partition` at stream sequence `seq`. */
export interface BarrierSeen {
  readonly partition: number;
  readonly seq: number;
  readonly run: number;
  /** The epoch it carries; absent in a barrier from before leader epochs (or a forged one). */
  readonly epoch?: number;
}

/** What the run history says of a barrier now. */
export type BarrierJudgement =
  | { readonly kind: "trusted" }
  | { readonly kind: "ignored"; readonly reason: string }
  /** Not decided yet: the record may still come; ask again until `waitMs` after the first ask. */
  | { readonly kind: "undecided"; readonly reason: string; readonly waitMs: number };

/** How long a reader waits for a run that has a record to record its cuts (the coordinator does it right after the barriers are acked). */
export const BARRIER_CUTS_WAIT_MS = 30_000;
/** How long a reader waits for a run the counter has not handed out (a replica may lag the leader by a moment). */
export const BARRIER_UNKNOWN_RUN_WAIT_MS = 1_000;

/**
 * The decision, pure: `record` is run `b.run`'s record (null when the history has none) and
 * `lastRun` the run counter (the last run number handed out).
 */
export function judgeBarrier(b: BarrierSeen, record: RunRecord | null, lastRun: number): BarrierJudgement {
  if (!record) {
    if (b.run > lastRun) return { kind: "undecided", reason: `run ${b.run} was never handed out (the run counter is at ${lastRun})`, waitMs: BARRIER_UNKNOWN_RUN_WAIT_MS };
    return { kind: "undecided", reason: `the run history has no record of run ${b.run}`, waitMs: BARRIER_CUTS_WAIT_MS };
  }
  const cut = record.cuts[b.partition];
  if (cut === undefined) {
    if (record.outcome === RunOutcomes.running) return { kind: "undecided", reason: `run ${b.run} has not recorded its cuts yet`, waitMs: BARRIER_CUTS_WAIT_MS };
    return { kind: "ignored", reason: `run ${b.run} ended (${record.outcome}) without recording a cut for partition ${b.partition}` };
  }
  if (cut !== b.seq) return { kind: "ignored", reason: `run ${b.run}'s barrier on partition ${b.partition} is at sequence ${cut}, not ${b.seq}` };
  // Records from before barrier epochs were recorded: the cut alone names the barrier.
  if (record.barrierEpoch !== undefined && b.epoch !== record.barrierEpoch) {
    return { kind: "ignored", reason: `it carries leader epoch ${b.epoch ?? "(none)"}, run ${b.run}'s barriers were written with epoch ${record.barrierEpoch}` };
  }
  return { kind: "trusted" };
}

/** What a record says for good: its cuts are known, or its run ended. */
const settled = (r: RunRecord) => r.cuts.length > 0 || r.outcome !== RunOutcomes.running;

/** The verdict on one barrier, as a reader acts on it. */
export type BarrierVerdict = { readonly kind: "trusted" } | { readonly kind: "ignored"; readonly reason: string };

export interface BarrierCheck {
  /**
   * Decides on `b`, waiting (up to {@link BARRIER_CUTS_WAIT_MS}) while the run history cannot
   * say yet. An ignored barrier is logged here (warn, with run, epoch, partition, seq and why);
   * the reader counts it. Rejects with `signal`'s reason when it is aborted, and with the read's
   * error when the history cannot be read (the reader's loop fails and is restarted: it must
   * neither trust nor ignore a barrier on no evidence).
   */
  check(b: BarrierSeen, signal?: AbortSignal): Promise<BarrierVerdict>;
}

export interface BarrierCheckOptions {
  /** Settled run records kept. @default 4096 */
  cacheRuns?: number;
  /** First pause between two reads of an unsettled record; doubles up to 500 ms. @default 20 */
  pollMs?: number;
}

const POLL_MAX_MS = 500;

export function createBarrierCheck(buckets: RunHistoryBuckets, log: Logger, opts: BarrierCheckOptions = {}): BarrierCheck {
  const cacheRuns = opts.cacheRuns ?? 4096;
  const firstPollMs = opts.pollMs ?? 20;
  // Settled records by run, oldest first (Map order), so the oldest is evicted first.
  const cache = new Map<number, RunRecord>();
  const remember = (r: RunRecord) => {
    cache.set(r.run, r);
    if (cache.size > cacheRuns) cache.delete(cache.keys().next().value as number);
  };
  const ask = async (b: BarrierSeen): Promise<BarrierJudgement> => {
    const cached = cache.get(b.run);
    if (cached) return judgeBarrier(b, cached, b.run);
    const record = await readRun(buckets, b.run);
    if (record && settled(record)) remember(record);
    // The counter matters only without a record.
    return judgeBarrier(b, record, record ? b.run : await lastRunNumber(buckets));
  };
  return {
    async check(b, signal) {
      const startedAt = Date.now();
      let pause = firstPollMs;
      for (;;) {
        signal?.throwIfAborted();
        const j = await ask(b);
        let verdict: BarrierVerdict | undefined;
        if (j.kind === "trusted") verdict = j;
        else if (j.kind === "ignored") verdict = j;
        else if (Date.now() - startedAt >= j.waitMs) verdict = { kind: "ignored", reason: `${j.reason} after ${j.waitMs} ms` };
        if (verdict) {
          if (verdict.kind === "ignored") {
            log.warn("ignoring a barrier no batch run wrote; if this repeats, check who may publish on the partition subjects", { run: b.run, epoch: b.epoch ?? null, partition: b.partition, seq: b.seq, reason: verdict.reason });
          }
          return verdict;
        }
        await new Promise<void>((resolve, reject) => {
          const onAbort = () => {
            clearTimeout(timer);
            reject(ensureError(signal!.reason));
          };
          const timer = setTimeout(() => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          }, pause);
          signal?.addEventListener("abort", onAbort, { once: true });
        });
        pause = Math.min(POLL_MAX_MS, pause * 2);
      }
    },
  };
}
