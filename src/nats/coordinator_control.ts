/**
 * The coordinator's control subjects: "run a batch now" (with progress replies)
 * and "roll the watermark back to run N". The coordinator serves them; the
 * admin API of serving nodes (and tests) ask. Both sides use this module, so
 * requests and replies are encoded and parsed in one place.
 */
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { newInbox } from "./connect.js";
import { ensureError, UnavailableError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { parseWatermark, type Watermark } from "../core/watermark.js";
import { decode, encode } from "./codec.js";
import { fields } from "./kv.js";
import type { Names } from "./names.js";
import { isNoResponders } from "./reply_inbox.js";

/**
 * The progress phase of a run request that waits for another run (or a rollback) in
 * progress: its detail is {@link QueuedDetail} as JSON, sent at once and at each phase
 * change of the run it waits for.
 */
export const QUEUED_PHASE = "queued";

/** What a queued run waits for: a run (by number, 0 before it has one) in a phase, or a rollback. */
export interface QueuedDetail {
  readonly busyWith: number;
  readonly busyPhase: string;
}

/**
 * Replies on the run-now subject. A request whose body is `{progress: true}`
 * gets a progress reply per phase before the last one (first {@link QUEUED_PHASE}
 * replies while another run is in progress).
 */
export type RunNowReply =
  | { kind: "progress"; run: number; phase: string; detail: string }
  | { kind: "published"; watermark: Watermark }
  | { kind: "failed"; error: string };

/** Replies on the rollback subject (request body `{run}`). */
export type RollbackReply = { kind: "rolled_back"; watermark: Watermark; from: number } | { kind: "refused"; reason: string } | { kind: "failed"; error: string };

/** A reply that does not parse (another build, a raw client): fails the request that got it. */
export class MalformedReplyError extends Error {
  override readonly name = "MalformedReplyError";
  constructor(subject: string, problem: string) {
    super(`malformed reply from the coordinator on ${subject}: ${problem}`);
  }
}

function parseOn<T>(subject: string, data: Uint8Array, parse: (o: Record<string, unknown>) => T): T {
  try {
    return parse(fields.object(decode(data), "reply"));
  } catch (err) {
    throw new MalformedReplyError(subject, ensureError(err).message);
  }
}

export function parseRunNowReply(subject: string, data: Uint8Array): RunNowReply {
  return parseOn(subject, data, (o) => {
    const kind = fields.oneOf(o, "kind", ["progress", "published", "failed"] as const);
    if (kind === "progress") return { kind, run: fields.int(o, "run"), phase: fields.string(o, "phase"), detail: fields.string(o, "detail") };
    if (kind === "published") return { kind, watermark: parseWatermark(o.watermark) };
    return { kind, error: fields.string(o, "error") };
  });
}

export function parseRollbackReply(subject: string, data: Uint8Array): RollbackReply {
  return parseOn(subject, data, (o) => {
    const kind = fields.oneOf(o, "kind", ["rolled_back", "refused", "failed"] as const);
    if (kind === "rolled_back") return { kind, watermark: parseWatermark(o.watermark), from: fields.int(o, "from") };
    if (kind === "refused") return { kind, reason: fields.string(o, "reason") };
    return { kind, error: fields.string(o, "error") };
  });
}

/** Nobody serves the run subject: no coordinator leads right now (none runs, or a standby is taking over). */
export class NoLeaderError extends UnavailableError {
  override readonly name = "NoLeaderError";
  constructor() {
    super("no coordinator leads right now (none is running, or a standby is taking over); try again");
  }
}

/** Asks for a batch run with progress; `onReply` gets each reply. Returns how to stop listening. */
export function requestRun(nc: NatsConnection, names: Names, onReply: (r: RunNowReply | Error) => void): { stop(): void } {
  const inbox = newInbox(nc);
  const sub = nc.subscribe(inbox, {
    callback: (err, msg) => {
      if (err) return onReply(err);
      if (isNoResponders(msg)) return onReply(new NoLeaderError());
      let r: RunNowReply;
      try {
        r = parseRunNowReply(names.runNowSubject, msg.data);
      } catch (e) {
        return onReply(ensureError(e));
      }
      onReply(r);
    },
  });
  nc.publish(names.runNowSubject, encode({ progress: true }), { reply: inbox });
  return { stop: () => sub.unsubscribe() };
}

/** Asks for a rollback to `run` and waits for the answer. Throws what the request throws (timeout, no responders). */
export async function requestRollback(nc: NatsConnection, names: Names, run: number, timeoutMs: number): Promise<RollbackReply> {
  const m = await nc.request(names.rollbackSubject, encode({ run }), { timeout: timeoutMs });
  return parseRollbackReply(names.rollbackSubject, m.data);
}

/** A run-now request as the coordinator sees it. */
export interface RunRequest {
  /** The requester asked for progress replies. */
  readonly wantsProgress: boolean;
  reply(r: RunNowReply): void;
}

/** Serves the run-now subject; `onRequest` handles each request. */
export function serveRunRequests(nc: NatsConnection, names: Names, onRequest: (req: RunRequest) => void): Subscription {
  return nc.subscribe(names.runNowSubject, {
    callback: (err, msg: Msg) => {
      if (err) return;
      let wantsProgress = false;
      try {
        const body = msg.data.length > 0 ? decode(msg.data) : undefined;
        wantsProgress = typeof body === "object" && body !== null && (body as { progress?: unknown }).progress === true;
      } catch {
        // not msgpack: a plain "run now" request
      }
      onRequest({ wantsProgress, reply: (r) => msg.respond(encode(r)) });
    },
  });
}

/** Serves the rollback subject; `rollback` answers each request with a valid run number. */
export function serveRollbackRequests(nc: NatsConnection, names: Names, log: Logger, rollback: (run: number) => Promise<RollbackReply>): Subscription {
  return nc.subscribe(names.rollbackSubject, {
    callback: (err, msg: Msg) => {
      if (err) return;
      const reply = (r: RollbackReply) => msg.respond(encode(r));
      let run: number;
      try {
        run = fields.int(fields.object(decode(msg.data), "rollback request"), "run", Number.MIN_SAFE_INTEGER);
      } catch (e) {
        reply({ kind: "refused", reason: `the request is not msgpack {run: <integer>}: ${ensureError(e).message}` });
        return;
      }
      rollback(run).then(reply, (e) => {
        log.error("rollback request failed", { run, err: ensureError(e) });
        reply({ kind: "failed", error: ensureError(e).message });
      });
    },
  });
}
