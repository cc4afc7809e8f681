/**
 * JetStream publishes without the per-request cost of `js.publish`: each event
 * goes out as a core publish with a `Nats-Msg-Id` header and a reply subject
 * under one wildcard inbox, and the stream's acks are matched by that subject.
 * (The stock client builds two stack-captured errors per publish, 28 % of an
 * ingest process's time; see docs/performance.md.) Deduplication is the
 * stream's, exactly as with `js.publish`: the message id is the event id.
 */
import { createInbox, headers, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { ensureError, UnavailableError } from "../core/errors.js";

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

interface Pending {
  subject: string;
  sentAtMs: number;
  resolve(ack: PubAck): void;
  reject(err: Error): void;
}

export function createAckPublisher(nc: NatsConnection, timeoutMs = PUBLISH_ACK_TIMEOUT_MS): AckPublisher {
  const prefix = createInbox();
  const pending = new Map<string, Pending>();
  let next = 0;
  const sub: Subscription = nc.subscribe(`${prefix}.*`, {
    callback: (err, msg) => {
      if (err) {
        for (const p of pending.values()) p.reject(ensureError(err));
        pending.clear();
        return;
      }
      const p = pending.get(msg.subject);
      if (!p) return; // an ack after its timeout
      pending.delete(msg.subject);
      if (msg.data.length === 0 && msg.headers?.code === 503) {
        p.reject(new UnavailableError(`no stream answers publishes to ${p.subject}; is the event stream created?`));
        return;
      }
      try {
        const ack = JSON.parse(new TextDecoder().decode(msg.data)) as { seq?: number; duplicate?: boolean; error?: { code: number; description: string } };
        if (ack.error) p.reject(new PublishRejectedError(p.subject, ack.error.code, ack.error.description));
        else if (typeof ack.seq !== "number") p.reject(new Error(`unexpected publish ack for ${p.subject}: ${JSON.stringify(ack)}`));
        else p.resolve({ seq: ack.seq, duplicate: ack.duplicate === true });
      } catch (e) {
        p.reject(ensureError(e));
      }
    },
  });
  // One timer for every publish in flight, instead of one per publish.
  const sweeper = setInterval(() => {
    const cutoff = Date.now() - timeoutMs;
    for (const [reply, p] of pending) {
      if (p.sentAtMs > cutoff) break; // insertion order is send order
      pending.delete(reply);
      p.reject(new UnavailableError(`no ack for a publish to ${p.subject} within ${timeoutMs} ms`));
    }
  }, Math.min(1_000, timeoutMs));
  sweeper.unref();

  return {
    publish(subject, data, msgId) {
      return new Promise<PubAck>((resolve, reject) => {
        const reply = `${prefix}.${(next++).toString(36)}`;
        pending.set(reply, { subject, sentAtMs: Date.now(), resolve, reject });
        const h = headers();
        h.set("Nats-Msg-Id", msgId);
        try {
          nc.publish(subject, data, { reply, headers: h });
        } catch (err) {
          pending.delete(reply);
          reject(ensureError(err));
        }
      });
    },
    close() {
      clearInterval(sweeper);
      sub.unsubscribe();
      for (const p of pending.values()) p.reject(new UnavailableError("publisher closed"));
      pending.clear();
    },
  };
}
