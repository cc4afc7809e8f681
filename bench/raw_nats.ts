/**
 * The raw NATS baselines: the stock pipelined JetStream publish, and the
 * protocol ceiling (core publish with a Nats-Msg-Id header, the acks read on
 * one reply inbox). Both keep a fixed window in flight without per-message
 * bookkeeping beyond a counter.
 */
import { createInbox, headers, type NatsConnection } from "@nats-io/transport-node";
import type { JetStreamClient } from "@nats-io/jetstream";
import { inFlightWindow } from "../src/core/in_flight.js";
import type { StreamEvent } from "./workload.js";

/** In-flight window of the stock pipelined publish (the product's ingest keeps 512 too). */
export const JS_PUBLISH_WINDOW = 512;
/** In-flight window of the protocol-ceiling publish. */
export const CORE_PUBLISH_WINDOW = 1_024;

/** `js.publish` with a message id for every event, `window` in flight. Resolves when every ack is in. */
export async function publishPipelined(js: JetStreamClient, events: readonly StreamEvent[], window = JS_PUBLISH_WINDOW): Promise<void> {
  const slots = inFlightWindow(window);
  let failure: unknown;
  const settle = () => slots.release();
  for (const e of events) {
    if (failure) break;
    const slot = slots.take();
    if (slot) await slot;
    js.publish(e.subject, e.data, { msgID: e.msgId }).then(settle, (err: unknown) => {
      failure ??= err;
      settle();
    });
  }
  await slots.drained();
  if (failure) throw failure;
}

/**
 * Core `publish` with a Nats-Msg-Id header and a reply subject: JetStream acks
 * each stored message on that one inbox. Resolves when every ack is in.
 * @throws Error when an ack carries an error.
 */
export function publishCore(nc: NatsConnection, events: readonly StreamEvent[], window = CORE_PUBLISH_WINDOW): Promise<void> {
  return new Promise((resolve, reject) => {
    const inbox = createInbox();
    let sent = 0;
    let acked = 0;
    const pump = () => {
      while (sent < events.length && sent - acked < window) {
        const e = events[sent++]!;
        const h = headers();
        h.set("Nats-Msg-Id", e.msgId);
        nc.publish(e.subject, e.data, { headers: h, reply: inbox });
      }
    };
    const sub = nc.subscribe(inbox, {
      callback: (err, m) => {
        if (err) {
          sub.unsubscribe();
          return reject(err);
        }
        // An ack is {"stream":..,"seq":..}; a failure carries "error" (0x22 0x65 = `"e`).
        const d = m.data;
        if (d.length > 2 && d[1] === 0x22 && d[2] === 0x65) {
          sub.unsubscribe();
          return reject(new Error(`publish failed: ${new TextDecoder().decode(d)}`));
        }
        if (++acked === events.length) {
          sub.unsubscribe();
          return resolve();
        }
        pump();
      },
    });
    pump();
  });
}
