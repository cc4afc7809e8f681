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

export interface AckPublisher {
  publish(subject: string, data: Uint8Array, msgId: string): Promise<PubAck>;
  /** Rejects what is still waiting and stops listening. */
  close(): void;
}

export function createAckPublisher(nc: NatsConnection, timeoutMs = PUBLISH_ACK_TIMEOUT_MS): AckPublisher {
  const inbox = createReplyInbox(nc, "ack publisher");
  return {
    async publish(subject, data, msgId) {
      const h = headers();
      h.set("Nats-Msg-Id", msgId);
      const msg = await inbox.request((reply) => nc.publish(subject, data, { reply, headers: h }), {
        timeoutMs,
        timeoutError: (waitedMs) => new UnavailableError(`no ack for a publish to ${subject} within ${waitedMs} ms (timeout ${timeoutMs} ms)`),
      });
      if (isNoResponders(msg)) throw new UnavailableError(`no stream answers publishes to ${subject}; is the event stream created?`);
      const ack = JSON.parse(ACK_TEXT.decode(msg.data)) as { seq?: number; duplicate?: boolean; error?: { code: number; description: string } };
      if (ack.error) throw new PublishRejectedError(subject, ack.error.code, ack.error.description);
      if (typeof ack.seq !== "number") throw new Error(`unexpected publish ack for ${subject}: ${JSON.stringify(ack)}`);
      return { seq: ack.seq, duplicate: ack.duplicate === true };
    },
    close: () => inbox.close(),
  };
}
