/** Reading the dead-letter stream in tests. */
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { DeadLetter } from "../../src/core/dead_letter.js";
import { decode } from "../../src/nats/codec.js";
import type { TestCluster } from "./cluster.js";

/** Every record of the dead-letter stream, in stream order, read with a JetStream (ordered) consumer. */
export async function deadLetters(cluster: TestCluster): Promise<DeadLetter[]> {
  const jsm = await jetstreamManager(cluster.nc);
  const stored = (await jsm.streams.info(cluster.names.deadLetterStream)).state.messages;
  if (stored === 0) return [];
  const consumer = await jetstream(cluster.nc).consumers.get(cluster.names.deadLetterStream);
  const out: DeadLetter[] = [];
  for await (const m of await consumer.fetch({ max_messages: stored, expires: 5_000 })) {
    out.push(decode<DeadLetter>(m.data));
    if (out.length === stored) break;
  }
  assert.equal(out.length, stored, "read every dead letter");
  return out;
}
