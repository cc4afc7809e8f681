/**
 * JetStream publishes without the per-request cost of `js.publish`: each event
 * goes out as a core publish with a `Nats-Msg-Id` header and a reply subject
 * under one wildcard inbox (src/nats/reply_inbox.ts), and the stream's acks are
 * matched by that subject.
 * (The stock client builds two stack-captured errors per publish, 28 % of an
 * ingest process's time; see docs/performance.md.) Deduplication is the
 * stream's, exactly as with `js.publish`: the message id is the event id.
 */
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { UnavailableError } from "../core/errors.js";
import { createReplyInbox, isNoResponders } from "../nats/reply_inbox.js";

/** Decodes the stream's JSON acks; one for every publish of the process. */
const ACK_TEXT = new TextDecoder();

/** How long a publish waits for the stream's ack. */
export const PUBLISH_ACK_TIMEOUT_MS = 10_000;

export interface PubAck {
  readonly seq: number;
  readonly duplicate: boolean;
}

/** The stream refused a publish (e.g. no stream for the subject, or the store is full). Not retried here. */
export class PublishRejectedError extends Error {
  override readonly name = "PublishRejectedError";
  constructor(
    readonly subject: string,
    readonly code: number,
    readonly description: string,
  ) {
    super(`publish to ${subject} refused: ${description} (code ${code})`);
  }
}

/** The headers of an event publish: the message id JetStream deduplicates on. */
function msgIdHeaders(msgId: string) {
  const h = headers();
  h.set("Nats-Msg-Id", msgId);
  return h;
}

/**
 * The bytes a publish of `data` with `msgId` counts against the server's max_payload
 * (payload plus encoded headers, as the client measures them) when they exceed
 * `maxPayload`; undefined when the publish fits.
 */
export function oversizeBytes(data: Uint8Array, msgId: string, maxPayload: number): number | undefined {
  // A cheap upper bound first (a UTF-16 unit is at most 3 UTF-8 bytes; the header framing is
  // under 64): encoding the headers of every event would cost ingest a share of its time.
  if (data.length + 3 * msgId.length + 64 <= maxPayload) return undefined;
  // The client sends the headers as their text form, UTF-8 encoded.
  const bytes = data.length + Buffer.byteLength(msgIdHeaders(msgId).toString());
  return bytes > maxPayload ? bytes : undefined;
}

export interface AckPublisher {
  publish(subject: string, data: Uint8Array, msgId: string): Promise<PubAck>;
  /** Rejects what is still waiting and stops listening. */
  close(): void;
}

export function createAckPublisher(nc: NatsConnection, timeoutMs = PUBLISH_ACK_TIMEOUT_MS): AckPublisher {
  const inbox = createReplyInbox(nc, "ack publisher");
  return {
    async publish(subject, data, msgId) {
      const h = msgIdHeaders(msgId);
      const msg = await inbox.request((reply) => nc.publish(subject, data, { reply, headers: h }), {
        timeoutMs,
        // Whether the event landed is unknown: the same id again is safe (the stream drops a copy it holds).
        timeoutError: (waitedMs) =>
          new UnavailableError(`no ack for a publish to ${subject} within ${waitedMs} ms (timeout ${timeoutMs} ms): JetStream may be electing a leader, cut off or out of storage; publish it again with the same id`),
      });
      if (isNoResponders(msg)) {
        throw new UnavailableError(`no stream answers publishes to ${subject}: the event stream does not exist, or its NATS nodes are electing a leader or have lost quorum; publish it again with the same id`);
      }
      const ack = JSON.parse(ACK_TEXT.decode(msg.data)) as { seq?: number; duplicate?: boolean; error?: { code: number; description: string } };
      if (ack.error) throw new PublishRejectedError(subject, ack.error.code, ack.error.description);
      if (typeof ack.seq !== "number") throw new Error(`unexpected publish ack for ${subject}: ${JSON.stringify(ack)}`);
      return { seq: ack.seq, duplicate: ack.duplicate === true };
    },
    close: () => inbox.close(),
  };
}
