/** The lean publish path on a real nats-server: acks, the stream's dedupe by message id, and a missing stream. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { UnavailableError } from "../../src/core/errors.js";
import { createAckPublisher } from "../../src/ingest/ack_publisher.js";
import { connectNats } from "../../src/nats/connect.js";
import { namesFor } from "../../src/nats/names.js";
import { ensureStreams } from "../../src/nats/setup.js";
import { startTestNats } from "../harness/nats.js";

test("acks carry the stream sequence, a repeated message id is a duplicate, a subject without a stream is refused", async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, "ack-publisher-test");
  const acks = createAckPublisher(nc, 2_000);
  try {
    const names = namesFor(`ack${process.pid}`);
    await ensureStreams(nc, names, { duplicateWindowMs: 60_000 });
    const data = new TextEncoder().encode("x");
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => acks.publish(names.eventSubject(i % 3), data, `id-${i}`)));
    assert.deepEqual(results.map((r) => r.seq).sort((a, b) => a - b), Array.from({ length: 500 }, (_, i) => i + 1));
    assert.ok(results.every((r) => !r.duplicate));
    const again = await acks.publish(names.eventSubject(0), data, "id-7");
    assert.deepEqual(again, { seq: results[7]!.seq, duplicate: true });
    await assert.rejects(acks.publish("nowhere.at.all", data, "z"), (err: unknown) => err instanceof UnavailableError && /no stream answers/.test(err.message));
  } finally {
    acks.close();
    await nc.close();
    await nats.close();
  }
});
