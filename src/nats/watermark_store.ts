/**
 * The watermark: key `current` of the watermark bucket. The coordinator publishes
 * it (compare-and-set, forward only) and rolls it back (compare-and-set on the
 * revision it read); speed nodes and serving nodes follow it. The newest value
 * by KV revision is the one that counts: usually the highest run, after an
 * operator's rollback an older run, which is the point of a rollback.
 */
import type { KV } from "@nats-io/kv";
import { ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { parseWatermark, type Watermark } from "../core/watermark.js";
import { encode } from "./codec.js";
import { fencedWrite, MalformedValueError, parseKvEntry, readValue, stampEpoch, watchValues, type ValueWatch, type WatchEnd } from "./kv.js";
import { WATERMARK_KEY } from "./names.js";
import type { WatermarkVerdict } from "./watermark_trust.js";

/** The watermark was not published because another one moved past it. */
export class WatermarkConflictError extends Error {
  override readonly name = "WatermarkConflictError";
  constructor(
    readonly run: number,
    readonly current: number,
  ) {
    super(`watermark ${run} not published: the watermark is already at run ${current}`);
  }
}

/** The watermark changed between reading it and writing a rollback over it. */
export class WatermarkMovedError extends Error {
  override readonly name = "WatermarkMovedError";
  constructor(readonly expectedRevision: number) {
    super(`the watermark changed since it was read (revision ${expectedRevision}); a run published meanwhile`);
  }
}

/** @throws MalformedValueError */
export async function readWatermark(kv: KV): Promise<{ watermark: Watermark; revision: number } | null> {
  const v = await readValue(kv, WATERMARK_KEY, parseWatermark);
  return v && { watermark: v.value, revision: v.revision };
}

/**
 * Publishes `w` if it is newer than the current watermark and no newer leader than `w.epoch`
 * wrote it. @throws WatermarkConflictError, FencedError
 */
export async function publishWatermark(kv: KV, w: Watermark): Promise<void> {
  await fencedWrite(kv, WATERMARK_KEY, parseWatermark, w.epoch ?? 0, `watermark ${w.run}`, (current) => {
    const run = current?.value.run ?? 0;
    if (run >= w.run) throw new WatermarkConflictError(w.run, run);
    return w;
  });
}

/** Writes `w` over the watermark read at `expectedRevision` (a rollback). @throws WatermarkMovedError, FencedError */
export async function replaceWatermark(kv: KV, w: Watermark, expectedRevision: number): Promise<void> {
  await fencedWrite(kv, WATERMARK_KEY, parseWatermark, w.epoch ?? 0, `the rollback to run ${w.run}`, (current) => {
    if (current?.revision !== expectedRevision) throw new WatermarkMovedError(expectedRevision);
    return w;
  });
}

/** What the watermark key holds, whatever it is: nothing, a watermark, or a value that is none. */
export type WatermarkState =
  | { readonly kind: "none"; readonly revision: number | null }
  | { readonly kind: "watermark"; readonly watermark: Watermark; readonly revision: number }
  | { readonly kind: "malformed"; readonly problem: string; readonly revision: number };

/** Reads the watermark key without throwing on a malformed value (a repair must work from any state). */
export async function readWatermarkState(kv: KV): Promise<WatermarkState> {
  const e = await kv.get(WATERMARK_KEY);
  if (!e) return { kind: "none", revision: null };
  if (e.operation !== "PUT" || e.length === 0) return { kind: "none", revision: e.revision };
  try {
    return { kind: "watermark", watermark: parseKvEntry(e, parseWatermark), revision: e.revision };
  } catch (err) {
    if (err instanceof MalformedValueError) return { kind: "malformed", problem: err.message, revision: e.revision };
    throw err;
  }
}

/**
 * Writes `w` over a watermark key value that no batch run published (a forged or corrupt one, as
 * judged by nats/watermark_trust.ts), read at `expectedRevision` (null: the key never existed).
 * Not fenced: the value replaced may carry any epoch, and a value no leader wrote must not fence
 * the leader out. Compare-and-set on the revision, so a run that published meanwhile is not
 * overwritten. @throws WatermarkMovedError
 */
export async function repairWatermark(kv: KV, w: Watermark, expectedRevision: number | null): Promise<void> {
  try {
    if (expectedRevision === null) await kv.create(WATERMARK_KEY, encode(w));
    else await kv.update(WATERMARK_KEY, encode(w), expectedRevision);
  } catch (err) {
    const after = await kv.get(WATERMARK_KEY);
    if ((after?.revision ?? null) !== expectedRevision) throw new WatermarkMovedError(expectedRevision ?? 0);
    throw err;
  }
}

/** A new leader's stamp on the watermark: a deposed leader's publish fails from then on. */
export function stampWatermark(kv: KV, epoch: number): Promise<boolean> {
  return stampEpoch(kv, WATERMARK_KEY, parseWatermark, epoch, "the watermark");
}

/** A watermark value a follower did not take (see {@link FollowOptions.check}). */
export interface WatermarkRefusal {
  /** The run it names (0 when the value is not a watermark at all). */
  readonly run: number;
  readonly reason: string;
  /** When this node refused it (its clock). */
  readonly atMs: number;
}

/** The newest watermark a role knows, kept current by a watch. */
export interface WatermarkFollower {
  /** The newest watermark taken, or null before the first run (or while none was taken). */
  current(): Watermark | null;
  /** Reads the bucket now (after an actor reported a newer run) and returns the newest taken. */
  refresh(): Promise<Watermark | null>;
  /** The newest value refused, while it is newer than the watermark taken; null otherwise. */
  refusal(): WatermarkRefusal | null;
  /** Resolves when the watch ends (see nats/kv ValueWatch). */
  readonly ended: Promise<WatchEnd>;
  stop(): void;
}

export interface FollowOptions {
  /**
   * Decides whether a watermark is taken (nats/watermark_trust.ts checkWatermark, plus what the
   * role itself must find, e.g. serving's batch views). A refused one is logged as an error and
   * reported by `refusal()`; the follower keeps the last one taken. A check that throws (NATS
   * did not answer) decides nothing: it is tried again after {@link CHECK_RETRY_MS}. `stopped` is
   * aborted when the follower stops: a check still running then decides nothing, and what fails
   * in it is the stop's doing (its role closing its connections), not something to report.
   * @default every watermark is taken
   */
  check?(w: Watermark, stopped: AbortSignal): Promise<WatermarkVerdict>;
}

/** Pause before checking a watermark again after the check itself failed. */
export const CHECK_RETRY_MS = 1_000;

/**
 * Follows the watermark. `onNew` is called with each newer value (by revision) that is taken and
 * differs from the one before, the first one at start too; a throw from it is logged.
 */
export async function followWatermark(kv: KV, log: Logger, onNew: (w: Watermark) => void = () => {}, opts: FollowOptions = {}): Promise<WatermarkFollower> {
  let latest: Watermark | null = null;
  // The newest revision decided on (taken or refused), and the newest refused while newer than the one taken.
  let revision = 0;
  let refused: WatermarkRefusal | null = null;
  // Aborted by stop(): decisions end, and a check still running is told.
  const stop = new AbortController();
  const stopped = stop.signal;
  let retry: NodeJS.Timeout | undefined;
  // Values are decided one at a time, in revision order.
  let deciding: Promise<void> = Promise.resolve();
  const refuse = (run: number, rev: number, reason: string) => {
    revision = rev;
    refused = { run, reason, atMs: Date.now() };
    log.error(`refusing watermark run ${run}: ${reason}; answering at ${latest ? `run ${latest.run}` : "no watermark"} until a watermark a batch run published`, { run, revision: rev, reason, answeringAt: latest?.run ?? null });
  };
  const decide = async (w: Watermark, rev: number) => {
    if (rev <= revision || stopped.aborted) return;
    if (opts.check) {
      let verdict: WatermarkVerdict;
      try {
        verdict = await opts.check(w, stopped);
      } catch (err) {
        if (stopped.aborted) return;
        log.error("could not check a new watermark against the run history; trying again", { run: w.run, revision: rev, err: ensureError(err) });
        clearTimeout(retry);
        retry = setTimeout(() => void offerNewest().catch((e) => log.error("could not read the watermark again", { err: ensureError(e) })), CHECK_RETRY_MS);
        return;
      }
      if (rev <= revision || stopped.aborted) return;
      if (verdict.kind === "refused") return refuse(w.run, rev, verdict.reason);
    }
    const changed = latest === null || latest.run !== w.run || latest.viewVersion !== w.viewVersion || latest.publishedAtMs !== w.publishedAtMs;
    latest = w;
    revision = rev;
    refused = null;
    if (!changed) return;
    try {
      onNew(w);
    } catch (err) {
      log.error("reacting to a new watermark failed", { run: w.run, err: ensureError(err) });
    }
  };
  const offer = (w: Watermark, rev: number) => (deciding = deciding.then(() => decide(w, rev)));
  /** Reads the key now and decides on what it holds. */
  const offerNewest = async () => {
    const state = await readWatermarkState(kv);
    if (state.kind === "watermark") await offer(state.watermark, state.revision);
    else if (state.kind === "malformed" && state.revision > revision) refuse(0, state.revision, state.problem);
  };
  await offerNewest();
  const watch: ValueWatch = await watchValues(kv, { key: WATERMARK_KEY, parse: parseWatermark, what: "the watermark", log, onValue: (_k, w, rev) => void offer(w, rev) });
  return {
    current: () => latest,
    refresh: async () => {
      await offerNewest();
      return latest;
    },
    refusal: () => refused,
    ended: watch.ended,
    stop: () => {
      stop.abort();
      clearTimeout(retry);
      watch.stop();
    },
  };
}

/** Calls `onValue` with the watermark now (null when none) and at each change, until stopped. */
export async function watchWatermark(kv: KV, log: Logger, onValue: (w: Watermark | null) => void): Promise<ValueWatch> {
  const first = await readWatermark(kv);
  if (!first) onValue(null);
  return watchValues(kv, { key: WATERMARK_KEY, parse: parseWatermark, what: "the watermark", log, onValue: (_k, w) => onValue(w) });
}
