/**
 * What the event stream holds at a sequence, as its leader says (a STREAM.MSG.GET, which the
 * stream's leader answers, not a direct get that any replica may answer): the archiver checks
 * that the history its consumer delivered is the stream's. The fault matrix's F12 saw a consumer,
 * created while the stream's leader was paused, hand out events at sequences the stream does not
 * hold them at (replica drift in nats-server 2.9; docs/reliability.md).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { decodeRecord } from "./codec.js";

/**
 * What is stored at a sequence: its subject, and the event's source and id when it is an event
 * (by its content: a copy republished past the duplicate window carries another message id).
 */
export interface StoredPosition {
  readonly subject: string;
  readonly event: { readonly source: string; readonly id: string } | null;
}

export type PositionReader = (seq: number) => Promise<StoredPosition | null>;

/** Reads positions of `stream` through `nc`. @throws the JetStream API's errors (the caller retries) */
export function streamPositionReader(nc: NatsConnection, stream: string): PositionReader {
  let jsm: Promise<JetStreamManager> | undefined;
  return async (seq) => {
    const m = await (await (jsm ??= jetstreamManager(nc))).streams.getMessage(stream, { seq });
    if (!m) return null;
    const r = decodeRecord(m.data);
    return { subject: m.subject, event: r?.k === "e" ? { source: r.s, id: r.id } : null };
  };
}
