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

/** The stream's answer to one publish, parsed; an error for a refusal or an answer that is not an ack. */
type AckOutcome = PubAck | Error;

const SEQ_KEY = Buffer.from('"seq"');
const DUPLICATE_KEY = Buffer.from('"duplicate"');
const ERROR_KEY = Buffer.from('"error"');
const TRUE = Buffer.from("true");
const isSpace = (b: number | undefined) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;

/** Where the value of `key` starts in a flat JSON object (after the colon and any spaces); -1 when absent. */
function valueAt(bytes: Buffer, key: Buffer): number {
  const at = bytes.indexOf(key);
  if (at < 0) return -1;
  let i = at + key.length;
  while (isSpace(bytes[i])) i++;
  if (bytes[i] !== 0x3a) return -1;
  i++;
  while (isSpace(bytes[i])) i++;
  return i;
}

/**
 * Reads a JetStream publish ack, `{"stream":"S", "seq":N}` plus `"duplicate": true` when the
 * stream held the id already (spacing varies by server version; `"domain"` appears in some
 * setups). The common shape is read from the bytes: a TextDecoder and JSON.parse per event were a
 * few percent of an ingest process's time. Anything else (a refusal carries `"error"`) goes through
 * JSON.parse.
 */
export function parsePubAck(subject: string, data: Uint8Array): AckOutcome {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const at = bytes.indexOf(ERROR_KEY) < 0 ? valueAt(bytes, SEQ_KEY) : -1;
  if (at >= 0) {
    let seq = 0;
    let i = at;
    for (; i < bytes.length && bytes[i]! >= 0x30 && bytes[i]! <= 0x39; i++) seq = seq * 10 + (bytes[i]! - 0x30);
    // A sequence fits in 2^53 (JetStream's are uint64 but never that large): more digits go the slow way.
    const end = bytes[i];
    if (i > at && i - at <= 15 && (end === 0x2c || end === 0x7d || isSpace(end))) {
      const dup = valueAt(bytes, DUPLICATE_KEY);
      return { seq, duplicate: dup >= 0 && bytes.subarray(dup, dup + 4).equals(TRUE) };
    }
  }
  let ack: { seq?: unknown; duplicate?: unknown; error?: { code: number; description: string } };
  try {
    ack = JSON.parse(ACK_TEXT.decode(data)) as typeof ack;
  } catch {
    return new Error(`unexpected publish ack for ${subject}: ${JSON.stringify(ACK_TEXT.decode(data))}`);
  }
  if (ack.error) return new PublishRejectedError(subject, ack.error.code, ack.error.description);
  if (typeof ack.seq !== "number") return new Error(`unexpected publish ack for ${subject}: ${JSON.stringify(ack)}`);
  return { seq: ack.seq, duplicate: ack.duplicate === true };
}

export interface AckPublisher {
  publish(subject: string, data: Uint8Array, msgId: string): Promise<PubAck>;
  /**
   * `publish` without a promise, for a producer with many publishes in flight: `done` is called
   * once, with the ack or the error `publish` would reject with. It must not throw.
   */
  publishWith(subject: string, data: Uint8Array, msgId: string, done: (err: Error | undefined, ack?: PubAck) => void): void;
  /** Rejects what is still waiting and stops listening. */
  close(): void;
}

export function createAckPublisher(nc: NatsConnection, timeoutMs = PUBLISH_ACK_TIMEOUT_MS): AckPublisher {
  const inbox = createReplyInbox(nc, "ack publisher");
  const publishWith = (subject: string, data: Uint8Array, msgId: string, done: (err: Error | undefined, ack?: PubAck) => void) => {
    const h = msgIdHeaders(msgId);
    inbox.requestWith(
      (reply) => nc.publish(subject, data, { reply, headers: h }),
      {
        timeoutMs,
        // Whether the event landed is unknown: the same id again is safe (the stream drops a copy it holds).
        timeoutError: (waitedMs) =>
          new UnavailableError(`no ack for a publish to ${subject} within ${waitedMs} ms (timeout ${timeoutMs} ms): JetStream may be electing a leader, cut off or out of storage; publish it again with the same id`),
      },
      (err, msg) => {
        if (err) return done(err);
        if (isNoResponders(msg!)) {
          return done(new UnavailableError(`no stream answers publishes to ${subject}: the event stream does not exist, or its NATS nodes are electing a leader or have lost quorum; publish it again with the same id`));
        }
        const ack = parsePubAck(subject, msg!.data);
        if (ack instanceof Error) done(ack);
        else done(undefined, ack);
      },
    );
  };
  return {
    publishWith,
    publish: (subject, data, msgId) => new Promise<PubAck>((resolve, reject) => publishWith(subject, data, msgId, (err, ack) => (err ? reject(err) : resolve(ack!)))),
    close: () => inbox.close(),
  };
}
