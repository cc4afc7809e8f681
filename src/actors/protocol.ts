/**
 * What speed actors answer over NATS request-reply, and the client that asks
 * them (used by serving nodes, tests and lambdactl).
 */
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { injectTraceContext, tracing } from "../core/tracing.js";
import { UnavailableError } from "../core/errors.js";
import { decode, encode } from "../nats/codec.js";
import type { Names } from "../nats/names.js";
import { createReplyInbox, isNoResponders } from "../nats/reply_inbox.js";
import type { KeyStates, RangeQuery } from "./speed_state.js";

export interface SegmentInfo {
  readonly openedAfterRun: number;
  readonly closedByRun: number | null;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly events: number;
}

export interface ActorIdentity {
  readonly partition: number;
  readonly node: string;
  readonly generation: number;
  readonly appliedSeq: number;
}

/** "replaying" until the actor has caught up with the stream head it saw at start. */
export type ActorPhase = "replaying" | "live";

/**
 * A speed query as sent: the range query and the assignment generation the asker knows for the
 * partition. An actor of an older generation (a former owner that has not stopped yet, or a
 * paused one that came back) answers not_owner instead of its state: the generation fence.
 */
export interface SpeedQuery extends RangeQuery {
  /** 0 when the asker knows no assignment. */
  readonly generation: number;
}

export type SpeedQueryReply =
  | (ActorIdentity & {
      readonly kind: "value";
      readonly keys: KeyStates[];
      readonly eventsAboveCut: number;
      readonly heldEvents: number;
      readonly phase: ActorPhase;
      /** The actor's consumer has missed its heartbeats (NATS trouble): its state may lag the stream by any amount. */
      readonly stalled?: boolean;
    })
  /** This actor no longer owns the partition (a newer generation does, or its node was told so). */
  | (ActorIdentity & { readonly kind: "not_owner" })
  /** The answer would not fit in one NATS message (the server's max_payload): ask for less (fewer keys, a key shard, a shorter range). */
  | (ActorIdentity & { readonly kind: "too_large"; readonly bytes: number; readonly limitBytes: number })
  | (ActorIdentity & { readonly kind: "moved_on"; readonly run: number })
  /** The actor does not compute that definition: it is rebuilding to, or its node runs another catalog. */
  | (ActorIdentity & { readonly kind: "missing_definition"; readonly definition: string })
  /**
   * The stream's leader could not confirm that it holds what the actor's state counts last (NATS
   * trouble), or holds something else there (`historyDiffers`: the actor's consumer delivered a
   * drifted history; it stops and rebuilds from the cut). Its state is not in any answer.
   */
  | (ActorIdentity & { readonly kind: "unconfirmed"; readonly historyDiffers: boolean; readonly reason: string })
  | { readonly kind: "error"; readonly message: string };

/** snapshot: a snapshot written by generation `generation`; cut: replayed from the barrier of watermark `run`; start: the stream's beginning. */
export type RestoredFrom =
  | { readonly kind: "snapshot"; readonly generation: number; readonly appliedSeq: number }
  | { readonly kind: "cut"; readonly run: number; readonly seq: number }
  | { readonly kind: "start" };

export interface SpeedStatus extends ActorIdentity {
  readonly watermarkRun: number;
  readonly heldEvents: number;
  readonly skippedDuplicates: number;
  /** Stream records skipped as invalid since this actor started (the archiver skips and dead-letters the same ones). */
  readonly skippedInvalid: number;
  /** Barriers passed over since this actor started because no batch run wrote them (nats/barrier_check.ts). */
  readonly ignoredBarriers: number;
  readonly segments: readonly SegmentInfo[];
  /** Where this actor's state came from when it started. */
  readonly restoredFrom: RestoredFrom;
  readonly phase: ActorPhase;
  /** Its consumer delivers nothing though the stream holds messages for it (nats/consumer_health.ts). */
  readonly stalled: boolean;
  /** Up to here the stream's leader confirmed the history the actor counts (answers wait for it). */
  readonly confirmedSeq: number;
}

/** How long a serving node waits for one actor reply. */
export const SPEED_REQUEST_TIMEOUT_MS = 2_000;

/** Why an actor gave no reply: nobody listens on its subject, or no reply came in time. */
export const SpeedUnavailableReasons = { noResponders: "no_responders", timeout: "timeout" } as const;
export type SpeedUnavailableReason = (typeof SpeedUnavailableReasons)[keyof typeof SpeedUnavailableReasons];

/** The actor of a partition gave no reply; a retry can help (the partition may be moving to another node). */
export class SpeedActorUnavailableError extends UnavailableError {
  override readonly name = "SpeedActorUnavailableError";
  constructor(
    readonly partition: number,
    readonly request: "query" | "status",
    readonly reason: SpeedUnavailableReason,
    /** How long the request waited, in ms. */
    readonly waitedMs: number,
  ) {
    super(
      reason === SpeedUnavailableReasons.noResponders
        ? `no speed actor listens for partition ${partition} (${request}); is a speed node running and assigned?`
        : `speed actor of partition ${partition} did not answer a ${request} within ${waitedMs} ms; is its node overloaded or gone?`,
    );
  }
}

/** Asks speed actors; one per NATS connection, closed with it. */
export interface SpeedClient {
  /** @throws UnavailableError (SpeedActorUnavailableError when the actor gave no reply) */
  query(partition: number, q: SpeedQuery, timeoutMs?: number): Promise<SpeedQueryReply>;
  /** @throws UnavailableError (SpeedActorUnavailableError when the actor gave no reply) */
  status(partition: number, timeoutMs?: number): Promise<SpeedStatus>;
  /** Rejects what is still waiting and stops listening for replies. Idempotent. */
  close(): void;
}

/**
 * Creates the speed client of `nc`. Requests are core publishes with a reply subject under
 * one inbox of this client (src/nats/reply_inbox.ts), not `nc.request` calls: a query
 * asks one actor per partition involved, and `nc.request` cost ~90 µs of CPU each.
 */
export function createSpeedClient(nc: NatsConnection, names: Names): SpeedClient {
  const inbox = createReplyInbox(nc, "speed client");
  const request = async <T>(kind: "query" | "status", subject: string, body: unknown, partition: number, timeoutMs: number): Promise<T> => {
    const sentAtMs = Date.now();
    const data = encode(body);
    // A recording span's context goes along (core/tracing.ts): the actor's span joins the query's trace.
    const traced = tracing() ? headers() : undefined;
    if (traced) injectTraceContext(traced);
    const m = await inbox.request((reply) => nc.publish(subject, data, traced ? { reply, headers: traced } : { reply }), {
      timeoutMs,
      timeoutError: (waitedMs) => new SpeedActorUnavailableError(partition, kind, SpeedUnavailableReasons.timeout, waitedMs),
    });
    if (isNoResponders(m)) throw new SpeedActorUnavailableError(partition, kind, SpeedUnavailableReasons.noResponders, Date.now() - sentAtMs);
    return decode<T>(m.data);
  };
  return {
    query: (p, q, timeout = SPEED_REQUEST_TIMEOUT_MS) => request<SpeedQueryReply>("query", names.speedQuerySubject(p), q, p, timeout),
    status: (p, timeout = SPEED_REQUEST_TIMEOUT_MS) => request<SpeedStatus>("status", names.speedStatusSubject(p), {}, p, timeout),
    close: () => inbox.close(),
  };
}
