/**
 * What speed actors answer over NATS request-reply, and the client that asks
 * them (used by serving nodes, tests and lambdactl).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { NoRespondersError, RequestError, TimeoutError } from "@nats-io/transport-node";
import { UnavailableError } from "../core/errors.js";
import { decode, encode } from "../nats/codec.js";
import type { Names } from "../nats/names.js";
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

export type SpeedQueryReply =
  | (ActorIdentity & { readonly kind: "value"; readonly keys: KeyStates[]; readonly eventsAboveCut: number; readonly heldEvents: number })
  | (ActorIdentity & { readonly kind: "moved_on"; readonly run: number })
  /** The actor does not compute that definition: it is rebuilding to, or its node runs another catalog. */
  | (ActorIdentity & { readonly kind: "missing_definition"; readonly definition: string })
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
  readonly segments: readonly SegmentInfo[];
  /** Where this actor's state came from when it started. */
  readonly restoredFrom: RestoredFrom;
  /** "replaying" until the actor has caught up with the stream head it saw at start. */
  readonly phase: "replaying" | "live";
}

/** How long a serving node waits for one actor reply. */
export const SPEED_REQUEST_TIMEOUT_MS = 2_000;

export interface SpeedClient {
  /** @throws UnavailableError when no actor owns the partition or it does not answer. */
  query(partition: number, q: RangeQuery, timeoutMs?: number): Promise<SpeedQueryReply>;
  /** @throws UnavailableError */
  status(partition: number, timeoutMs?: number): Promise<SpeedStatus>;
}

export function createSpeedClient(nc: NatsConnection, names: Names): SpeedClient {
  const request = async <T>(subject: string, body: unknown, partition: number, timeout: number): Promise<T> => {
    try {
      const m = await nc.request(subject, encode(body), { timeout });
      return decode<T>(m.data);
    } catch (err) {
      if (err instanceof NoRespondersError || err instanceof TimeoutError || err instanceof RequestError) {
        throw new UnavailableError(`speed actor of partition ${partition} did not answer (${err.name}); is a speed node running and assigned?`, { cause: err });
      }
      throw err;
    }
  };
  return {
    query: (p, q, timeout = SPEED_REQUEST_TIMEOUT_MS) => request<SpeedQueryReply>(names.speedQuerySubject(p), q, p, timeout),
    status: (p, timeout = SPEED_REQUEST_TIMEOUT_MS) => request<SpeedStatus>(names.speedStatusSubject(p), {}, p, timeout),
  };
}
