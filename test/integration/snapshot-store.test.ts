/** The snapshot store on a real nats-server: chunking, fencing, and reads that race writes. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createSnapshotStore, SnapshotFencedError } from "../../src/actors/index.js";
import { SNAPSHOT_CHUNK_BYTES } from "../../src/actors/snapshot_store.js";
import { connectNats } from "../../src/nats/connect.js";
import { namesFor } from "../../src/nats/names.js";
import { openBuckets } from "../../src/nats/setup.js";
import { startTestNats } from "../harness/nats.js";

function bytes(n: number, fill: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (fill + i * 31) & 0xff;
  return b;
}

test("snapshot store: chunked round trip, fencing, and reads racing writes", async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, "snapshot-store-test");
  try {
    const kv = (await openBuckets(nc, namesFor(`snap${process.pid}`))).snapshots;
    const store = createSnapshotStore(kv);

    assert.equal(await store.read(0), null, "no snapshot yet");
    const big = bytes(SNAPSHOT_CHUNK_BYTES * 2 + 123, 7); // three chunks
    await store.write(0, 1, big);
    assert.deepEqual(await store.read(0), big);

    // A newer owner writes; the former owner is fenced off and its snapshot does not land.
    const newer = bytes(1000, 9);
    await store.write(0, 2, newer);
    await assert.rejects(store.write(0, 1, bytes(50, 1)), (err: unknown) => err instanceof SnapshotFencedError && err.current === 2 && err.held === 1);
    assert.deepEqual(await store.read(0), newer);

    // Old chunks are purged once a newer manifest is in place: only the current write's chunks remain.
    const keys: string[] = [];
    for await (const k of await kv.keys("chunk.0.>")) keys.push(k);
    assert.equal(keys.length, 1, `chunks left: ${keys.join(", ")}`);

    // Reads while writes keep replacing the snapshot: each read returns one whole version, never a mix, never hangs.
    const versions = Array.from({ length: 20 }, (_, i) => bytes(SNAPSHOT_CHUNK_BYTES + 10 * i, i));
    const writer = (async () => {
      for (const v of versions) await store.write(1, 3, v);
    })();
    const seen: Uint8Array[] = [];
    while (seen.length < 20) {
      const got = await store.read(1).catch((err: Error) => err);
      if (got instanceof Uint8Array) seen.push(got);
    }
    await writer;
    for (const got of seen) assert.ok(versions.some((v) => Buffer.compare(Buffer.from(v), Buffer.from(got)) === 0), "a read returns a version that was written");
    assert.deepEqual(await store.read(1), versions[versions.length - 1]);

    await store.remove(0);
    assert.equal(await store.read(0), null);
  } finally {
    await nc.close();
    await nats.close();
  }
});
