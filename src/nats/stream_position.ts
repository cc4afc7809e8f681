/**
 * What the event stream holds at a sequence, as its leader says (a STREAM.MSG.GET, which the
 * stream's leader answers, not a direct get that any replica may answer): the archiver and the
 * speed actors check that the history their consumers delivered is the stream's. The fault
 * matrix's F12 saw consumers, while a stream's leader was paused, hand out events at sequences
 * the stream does not hold them at (replica drift in nats-server 2.9; docs/reliability.md).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { ensureError } from "../core/errors.js";
import { decodeRecord, eventMsgId } from "./codec.js";

/** An event by its content: a copy republished past the duplicate window carries another message id. */
export interface EventRef {
  readonly source: string;
  readonly id: string;
}

/** What is stored at a sequence: its subject, and the event's source and id when it is an event. */
export interface StoredPosition {
  readonly subject: string;
  readonly event: EventRef | null;
}

export type PositionReader = (seq: number) => Promise<StoredPosition | null>;

/**
 * Reads positions of `stream` through `nc`, each read waiting at most `timeoutMs` (the JetStream
 * API's default, 5 s, when not given). @throws the JetStream API's errors (the caller retries)
 */
export function streamPositionReader(nc: NatsConnection, stream: string, timeoutMs?: number): PositionReader {
  let jsm: Promise<JetStreamManager> | undefined;
  return async (seq) => {
    const m = await (await (jsm ??= jetstreamManager(nc, timeoutMs === undefined ? {} : { timeout: timeoutMs }))).streams.getMessage(stream, { seq });
    if (!m) return null;
    const r = decodeRecord(m.data);
    return { subject: m.subject, event: r?.k === "e" ? { source: r.s, id: r.id } : null };
  };
}

/** What a consumer delivered at a sequence; `event` undefined when only the subject is known (a record skipped as invalid). */
export interface DeliveredPosition {
  readonly seq: number;
  readonly subject: string;
  readonly event?: EventRef | null;
}

/** same: the stream holds what was delivered; differs: it holds something else; unknown: its leader could not be asked. */
export type PositionCheck = { readonly kind: "same" } | { readonly kind: "differs"; readonly reason: string } | { readonly kind: "unknown"; readonly reason: string };

const describe = (e: EventRef | null): string => (e ? eventMsgId(e.source, e.id) : "a record that is no event");

/** Compares what a consumer delivered at `d.seq` with what the stream's leader holds there. Never throws. */
export async function checkPosition(positions: PositionReader, d: DeliveredPosition): Promise<PositionCheck> {
  let at: StoredPosition | null;
  try {
    at = await positions(d.seq);
  } catch (err) {
    return { kind: "unknown", reason: `cannot read sequence ${d.seq} from the stream's leader: ${ensureError(err).message}` };
  }
  if (at === null) return { kind: "differs", reason: `the stream holds nothing at sequence ${d.seq}` };
  const sameEvent = d.event === undefined || (at.event === null ? d.event === null : d.event !== null && at.event.source === d.event.source && at.event.id === d.event.id);
  if (at.subject === d.subject && sameEvent) return { kind: "same" };
  const delivered = d.event === undefined ? `a record on ${d.subject}` : describe(d.event);
  return { kind: "differs", reason: `the stream holds ${describe(at.event)} on ${at.subject} at sequence ${d.seq}, the consumer delivered ${delivered}` };
}
