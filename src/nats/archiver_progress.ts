/**
 * Archiver progress: key `p.<p>` of the archiver bucket says the archiver has
 * flushed everything below barrier `run` of partition p. The archiver holding
 * the lease (nats/archiver_lease.ts) writes it (forward only); a batch run waits
 * on it before recomputing.
 *
 * Fencing: every record carries the lease epoch of its writer, and a write is a
 * compare-and-set that refuses to replace a record of a newer epoch. A new lease
 * holder stamps its epoch on every partition's key before it archives anything
 * (creating the key, at run 0, where there is none), so an archiver that lost the
 * lease while paused cannot move progress when it runs again.
 */
import type { KV } from "@nats-io/kv";
import { ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { ArchiverProgress } from "../core/records.js";
import { epochOf, fencedWrite, fields, readValue, watchValues, type ValueWatch } from "./kv.js";
import { partitionKey } from "./names.js";

export function parseArchiverProgress(v: unknown): ArchiverProgress {
  const o = fields.object(v, "archiver progress");
  return {
    partition: fields.int(o, "partition"),
    run: fields.int(o, "run"),
    barrierSeq: fields.int(o, "barrierSeq"),
    atMs: fields.int(o, "atMs"),
    ...(o.epoch === undefined ? {} : { epoch: fields.int(o, "epoch") }),
  };
}

/** Given up inside a fenced write: the key says as much already. */
const NOTHING_TO_WRITE = new Error("nothing to write");

/** A fenced write of partition `p`'s key that `decide` may skip by throwing NOTHING_TO_WRITE. @returns whether it wrote */
async function writeProgress(kv: KV, p: number, epoch: number, decide: (current: ArchiverProgress | null) => ArchiverProgress): Promise<boolean> {
  try {
    await fencedWrite(kv, partitionKey(p), parseArchiverProgress, epoch, `archiver progress of partition ${p}`, (current) => decide(current?.value ?? null), "archiver");
    return true;
  } catch (err) {
    if (err === NOTHING_TO_WRITE) return false;
    throw err;
  }
}

/**
 * Records that the archiver holding lease epoch `epoch` flushed through `progress`'s barrier,
 * unless a later one is recorded. @throws FencedError when a newer lease holder wrote the key
 */
export async function recordArchiverProgress(kv: KV, progress: Omit<ArchiverProgress, "epoch">, epoch: number): Promise<void> {
  await writeProgress(kv, progress.partition, epoch, (current) => {
    if (current && current.run >= progress.run) throw NOTHING_TO_WRITE;
    return { ...progress, epoch };
  });
}

/**
 * A new lease holder's first write: stamps `epoch` on the progress key of every partition
 * 0..partitions-1 (a record at run 0 where there is none, which reads as "nothing flushed"), so
 * the writes of every older holder are refused from here on. @throws FencedError
 */
export async function stampArchiverProgress(kv: KV, partitions: number, epoch: number, atMs: number): Promise<void> {
  for (let p = 0; p < partitions; p++) {
    await writeProgress(kv, p, epoch, (current) => {
      if (current && epochOf(current) === epoch) throw NOTHING_TO_WRITE;
      return current ? { ...current, epoch } : { partition: p, run: 0, barrierSeq: 0, atMs, epoch };
    });
  }
}

/**
 * Per partition 0..partitions-1, the barrier sequence the archiver has flushed everything below
 * (0 when it has recorded none). @throws MalformedValueError
 */
export async function readArchivedBelow(kv: KV, partitions: number): Promise<number[]> {
  return Promise.all(Array.from({ length: partitions }, async (_, p) => (await readValue(kv, partitionKey(p), parseArchiverProgress))?.value.barrierSeq ?? 0));
}

/** The archiver did not flush through a barrier in time. Retryable: the next run tries again. */
export class ArchiverTimeoutError extends Error {
  override readonly name = "ArchiverTimeoutError";
  constructor(
    readonly run: number,
    readonly waitingOn: readonly number[],
    readonly timeoutMs: number,
  ) {
    super(`archiver has not flushed through barrier ${run} on partitions [${waitingOn.join(", ")}] after ${timeoutMs} ms; is an archiver running?`);
  }
}

/** Longest pause between attempts at starting the watch. */
const WATCH_RETRY_MAX_MS = 1_000;

/**
 * Starts a watch, trying again until `deadline` while JetStream does not answer (a NATS node
 * lost: the consumer of a watch is created on a node that may be gone).
 */
async function startWatch(start: () => Promise<ValueWatch>, deadline: number, log: Logger, signal?: AbortSignal): Promise<ValueWatch> {
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await start();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      log.warn("could not watch archiver progress; trying again", { attempt, err: ensureError(err) });
      await new Promise((r) => setTimeout(r, Math.min(WATCH_RETRY_MAX_MS, 100 * 2 ** attempt)));
    }
  }
}

/**
 * Resolves once the archiver has flushed through barrier `run` (or a later one) on partitions
 * 0..partitions-1; `signal` stops the wait with its reason (the coordinator stood down or stops).
 * @throws ArchiverTimeoutError after `timeoutMs`
 */
export async function waitForArchiver(kv: KV, run: number, partitions: number, timeoutMs: number, log: Logger, signal?: AbortSignal): Promise<void> {
  const flushed = new Array<number>(partitions).fill(0);
  const waiting = () => flushed.flatMap((r, p) => (r >= run ? [] : [p]));
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const deadline = Date.now() + timeoutMs;
  const watch = await startWatch(
    () =>
      watchValues(kv, {
        key: "p.*",
        parse: parseArchiverProgress,
        what: "archiver progress",
        log,
        onValue: (_k, a) => {
          if (a.partition < partitions) flushed[a.partition] = Math.max(flushed[a.partition]!, a.run);
          if (waiting().length === 0) resolveDone();
        },
      }),
    deadline,
    log,
    signal,
  );
  timeoutMs = Math.max(0, deadline - Date.now());
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    signal?.throwIfAborted();
    const aborted = new Promise<never>((_, reject) => signal?.addEventListener("abort", (onAbort = () => reject(ensureError(signal.reason))), { once: true }));
    const timedOut = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new ArchiverTimeoutError(run, waiting(), timeoutMs)), timeoutMs)));
    const ended = watch.ended.then((end) => {
      if (end.kind === "stopped") return;
      throw new Error(`the watch of archiver progress ${end.kind === "failed" ? `failed: ${end.error.message}` : "ended"} while waiting for barrier ${run}`);
    });
    await Promise.race([done, timedOut, ended, aborted]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
    watch.stop();
  }
}
