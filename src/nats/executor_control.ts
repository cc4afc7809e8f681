/**
 * The batch executor's subject: the leading coordinator asks an executor (a
 * process where ClickHouse is reachable: in the embedded default, the one that
 * owns chDB) to recompute run N's views below the cuts, or to drop old view
 * versions, carrying its leader epoch. An executor refuses a request whose epoch
 * is not the current leader's, so a deposed coordinator cannot compute views.
 * Executors share a queue group: one of them takes each request.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { newInbox } from "./connect.js";
import { UnavailableError, ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { decode, encode } from "./codec.js";
import { fields } from "./kv.js";
import type { Names } from "./names.js";
import { isNoResponders } from "./reply_inbox.js";

/** What a coordinator asks an executor. */
export type ExecutorRequest =
  | {
      readonly kind: "recompute";
      readonly run: number;
      readonly cuts: readonly number[];
      readonly epoch: number;
      /** core/catalog catalogFingerprint of the catalog the coordinator runs: the executor computes with the same one. */
      readonly catalogFingerprint: string;
    }
  | { readonly kind: "drop_views"; readonly keepFrom: number; readonly epoch: number };

export interface RecomputeDone {
  readonly eventsCovered: number;
  readonly coveredFromMs: number | null;
  readonly coveredToMs: number | null;
}

export type ExecutorReply =
  | { readonly kind: "progress"; readonly step: string; readonly done: number; readonly total: number }
  /** Sent every EXECUTOR_KEEPALIVE_MS while a request is queued or runs: the executor is alive. */
  | { readonly kind: "alive" }
  | ({ readonly kind: "done" } & RecomputeDone)
  | { readonly kind: "refused"; readonly reason: string }
  | { readonly kind: "failed"; readonly error: string };

/** The executor refused the request (stale epoch, another catalog); the run fails and the next one tries again. */
export class ExecutorRefusedError extends Error {
  override readonly name = "ExecutorRefusedError";
  constructor(readonly reason: string) {
    super(`the batch executor refused: ${reason}`);
  }
}

/** The executor ran the request and it failed there. */
export class ExecutorFailedError extends Error {
  override readonly name = "ExecutorFailedError";
  constructor(readonly error: string) {
    super(`the batch executor failed: ${error}`);
  }
}

const executorQueue = "executors";

function parseRequest(data: Uint8Array): ExecutorRequest {
  const o = fields.object(decode(data), "executor request");
  const kind = fields.oneOf(o, "kind", ["recompute", "drop_views"] as const);
  if (kind === "drop_views") return { kind, keepFrom: fields.int(o, "keepFrom"), epoch: fields.int(o, "epoch") };
  return { kind, run: fields.int(o, "run", 1), cuts: fields.intArray(o, "cuts"), epoch: fields.int(o, "epoch"), catalogFingerprint: fields.string(o, "catalogFingerprint") };
}

function parseReply(data: Uint8Array): ExecutorReply {
  const o = fields.object(decode(data), "executor reply");
  const kind = fields.oneOf(o, "kind", ["progress", "alive", "done", "refused", "failed"] as const);
  if (kind === "alive") return { kind };
  if (kind === "progress") return { kind, step: fields.string(o, "step"), done: fields.int(o, "done"), total: fields.int(o, "total") };
  if (kind === "done") return { kind, eventsCovered: fields.int(o, "eventsCovered"), coveredFromMs: fields.intOrNull(o, "coveredFromMs"), coveredToMs: fields.intOrNull(o, "coveredToMs") };
  if (kind === "refused") return { kind, reason: fields.string(o, "reason") };
  return { kind, error: fields.string(o, "error") };
}

export interface AskOptions {
  /** How long to wait for the first reply (an executor took the request). */
  readonly ackTimeoutMs: number;
  /**
   * How long to wait between two replies while it runs. An executor replies at least every
   * EXECUTOR_KEEPALIVE_MS, so silence this long means its process is gone (or cut off).
   */
  readonly idleTimeoutMs: number;
  readonly onProgress?: (step: string, done: number, total: number) => void;
  /** Stops waiting (rejecting with the signal's reason): the coordinator stood down or stops. The executor may finish; its views are unused. */
  readonly signal?: AbortSignal;
}

/**
 * Asks an executor and waits for its final reply.
 * @throws UnavailableError when no executor answers; ExecutorRefusedError; ExecutorFailedError
 */
export function askExecutor(nc: NatsConnection, names: Names, req: ExecutorRequest, opts: AskOptions): Promise<RecomputeDone> {
  return new Promise((resolve, reject) => {
    const inbox = newInbox(nc);
    let replied = false;
    let timer: NodeJS.Timeout;
    const finish = (err: Error | null, done?: RecomputeDone) => {
      clearTimeout(timer);
      sub.unsubscribe();
      opts.signal?.removeEventListener("abort", aborted);
      if (err) reject(err);
      else resolve(done!);
    };
    const aborted = () => finish(ensureError(opts.signal!.reason));
    const arm = () => {
      clearTimeout(timer);
      const ms = replied ? opts.idleTimeoutMs : opts.ackTimeoutMs;
      timer = setTimeout(
        () =>
          finish(
            new UnavailableError(
              replied
                ? `the batch executor said nothing for ${ms} ms while running ${req.kind} (is its process alive?)`
                : `no batch executor answered ${req.kind} within ${ms} ms; is a process with LAMBDA_ROLES including executor running (the one with ClickHouse)?`,
            ),
          ),
        ms,
      );
    };
    const sub = nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err) return finish(err);
        if (isNoResponders(msg)) return finish(new UnavailableError(`no batch executor runs (${req.kind}); start a process with LAMBDA_ROLES including executor where ClickHouse is`));
        let r: ExecutorReply;
        try {
          r = parseReply(msg.data);
        } catch (e) {
          return finish(new ExecutorFailedError(`malformed reply: ${ensureError(e).message}`));
        }
        replied = true;
        if (r.kind === "alive") return arm();
        if (r.kind === "progress") {
          opts.onProgress?.(r.step, r.done, r.total);
          return arm();
        }
        if (r.kind === "done") return finish(null, r);
        finish(r.kind === "refused" ? new ExecutorRefusedError(r.reason) : new ExecutorFailedError(r.error));
      },
    });
    if (opts.signal?.aborted) return finish(ensureError(opts.signal.reason));
    opts.signal?.addEventListener("abort", aborted, { once: true });
    arm();
    nc.publish(names.executorSubject, encode(req), { reply: inbox });
  });
}

/** How often an executor says it is alive while a request is queued or runs. */
export const EXECUTOR_KEEPALIVE_MS = 1_000;

/** A request as the executor sees it: `progress` sends a progress reply, the result resolves the rest. */
export type ExecutorHandler = (req: ExecutorRequest, progress: (step: string, done: number, total: number) => void) => Promise<RecomputeDone | { refused: string }>;

/** Serves the executor subject in the executors' queue group. */
export function serveExecutorRequests(nc: NatsConnection, names: Names, log: Logger, handle: ExecutorHandler): Subscription {
  return nc.subscribe(names.executorSubject, {
    queue: executorQueue,
    callback: (err, msg) => {
      if (err) {
        log.error("the batch executor subscription failed; this process no longer runs batch requests", { subject: names.executorSubject, err });
        return;
      }
      const reply = (r: ExecutorReply) => msg.respond(encode(r));
      let req: ExecutorRequest;
      try {
        req = parseRequest(msg.data);
      } catch (e) {
        reply({ kind: "refused", reason: `malformed request: ${ensureError(e).message}` });
        return;
      }
      // The coordinator tells a dead executor from a slow one by this: silence.
      const keepalive = setInterval(() => {
        try {
          reply({ kind: "alive" });
        } catch {
          // the connection is closing: the final reply (or its absence) tells the coordinator
        }
      }, EXECUTOR_KEEPALIVE_MS);
      handle(req, (step, done, total) => reply({ kind: "progress", step, done, total }))
        .then(
          (r) => reply("refused" in r ? { kind: "refused", reason: r.refused } : { kind: "done", ...r }),
          (e) => {
            log.error("batch executor request failed", { request: req.kind, err: ensureError(e) });
            reply({ kind: "failed", error: ensureError(e).message });
          },
        )
        .finally(() => clearInterval(keepalive));
    },
  });
}
