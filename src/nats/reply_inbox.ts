/**
 * Request-reply without the per-request cost of `nc.request`: one wildcard
 * subscription per client receives every reply, each request gets its own
 * subject under it (the correlation id), and one timer, armed for the earliest
 * deadline, rejects what waited too long. `nc.request` instead subscribes (or
 * registers in its mux), arms a timer and builds two stack-captured errors
 * (`RequestError`, `TimeoutError`) on every call, used or not: ~90 µs of CPU
 * per request here (docs/performance.md, sections 1 and 4).
 *
 * The reply is handed back as it came, a "no responders" status included
 * (`isNoResponders`): what it means is the caller's to say.
 */
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { newInbox } from "./connect.js";
import { ensureError, UnavailableError } from "../core/errors.js";

export interface InboxRequestOptions {
  /** How long to wait for the reply, in ms. */
  readonly timeoutMs: number;
  /** The error a request rejects with once `timeoutMs` passed; `waitedMs` is how long it waited. */
  timeoutError(waitedMs: number): Error;
}

export interface ReplyInbox {
  /**
   * Calls `send` with a fresh reply subject and resolves with the first message on it.
   * @throws what `send` throws; the `timeoutError` of `opts`; UnavailableError when the
   *   inbox is closed or its subscription ends (the connection closed) while waiting.
   */
  request(send: (reply: string) => void, opts: InboxRequestOptions): Promise<Msg>;
  /**
   * `request` without a promise: `done` is called once, with the reply or the error `request`
   * would reject with. For a producer with many requests in flight: a promise and its reactions
   * per request were a visible share of an ingest process's time and garbage.
   * A throw from `send` is passed to `done` as well (synchronously). `done` must not throw: it
   * runs inside the inbox's subscription callback.
   */
  requestWith(send: (reply: string) => void, opts: InboxRequestOptions, done: (err: Error | undefined, msg?: Msg) => void): void;
  /** Rejects every request still waiting and unsubscribes. Idempotent. */
  close(): void;
}

/** True for the status a server sends to the reply subject when nobody listens on the request's subject. */
export const isNoResponders = (m: Msg): boolean => m.data.length === 0 && m.headers?.code === 503;

interface Waiting {
  readonly sentAtMs: number;
  readonly deadlineMs: number;
  readonly opts: InboxRequestOptions;
  readonly done: (err: Error | undefined, msg?: Msg) => void;
}

/** Subscribes `nc` to a new wildcard inbox; `what` names the client in errors ("speed client"). */
export function createReplyInbox(nc: NatsConnection, what: string): ReplyInbox {
  const prefix = newInbox(nc);
  const waiting = new Map<string, Waiting>();
  let next = 0;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let timerAtMs = Infinity;

  const rejectAll = (err: Error) => {
    for (const w of waiting.values()) w.done(err);
    waiting.clear();
  };
  // Fires at the earliest deadline: rejects what is due, re-arms for the next one.
  const sweep = () => {
    timer = undefined;
    timerAtMs = Infinity;
    const now = Date.now();
    let earliest = Infinity;
    for (const [reply, w] of waiting) {
      if (w.deadlineMs <= now) {
        waiting.delete(reply);
        w.done(w.opts.timeoutError(now - w.sentAtMs));
      } else if (w.deadlineMs < earliest) earliest = w.deadlineMs;
    }
    arm(earliest);
  };
  const arm = (atMs: number) => {
    if (atMs >= timerAtMs || atMs === Infinity) return;
    if (timer) clearTimeout(timer);
    timerAtMs = atMs;
    timer = setTimeout(sweep, Math.max(0, atMs - Date.now()));
    timer.unref();
  };

  const sub = nc.subscribe(`${prefix}.*`, {
    callback: (err, msg) => {
      if (err) return rejectAll(ensureError(err));
      const w = waiting.get(msg.subject);
      if (!w) return; // a reply after its timeout
      waiting.delete(msg.subject);
      w.done(undefined, msg);
    },
  });
  void sub.closed.then(() => {
    closed = true;
    rejectAll(new UnavailableError(`the ${what}'s NATS subscription ended (connection closed?) while waiting for a reply`));
  });

  const requestWith = (send: (reply: string) => void, opts: InboxRequestOptions, done: (err: Error | undefined, msg?: Msg) => void) => {
    if (closed) return done(new UnavailableError(`the ${what} is closed`));
    const reply = `${prefix}.${(next++).toString(36)}`;
    const sentAtMs = Date.now();
    const w: Waiting = { sentAtMs, deadlineMs: sentAtMs + opts.timeoutMs, opts, done };
    waiting.set(reply, w);
    try {
      send(reply);
    } catch (err) {
      waiting.delete(reply);
      return done(ensureError(err));
    }
    arm(w.deadlineMs);
  };

  return {
    requestWith,
    request(send, opts) {
      return new Promise<Msg>((resolve, reject) => requestWith(send, opts, (err, msg) => (err ? reject(err) : resolve(msg!))));
    },
    close() {
      if (closed) return;
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      sub.unsubscribe();
      rejectAll(new UnavailableError(`the ${what} is closed`));
    },
  };
}
