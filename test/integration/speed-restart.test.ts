/**
 * A speed actor that could not start, or whose consume loop dies, is started again by its node
 * with a backoff while the partition is still the node's. A speed actor whose consume loop dies stops answering at once and its node restarts it from
 * its snapshot, with a backoff; a loop that keeps dying keeps the partition unanswered. The
 * loop is made to die for real: the node's catalog feed cannot be read (as when the catalog
 * bucket is unreachable) while a record of a source the catalog lacks needs a look at it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { createSnapshotStore, createSpeedNode, SpeedActorUnavailableError, type SpeedStatus } from "../../src/actors/index.js";
import { openBuckets } from "../../src/nats/setup.js";
import { createJsonLogger, createLogger, silentLogger } from "../../src/core/logger.js";
import { readAssignments } from "../../src/nats/assignments_store.js";
import { fixedCatalog, type CatalogFeed } from "../../src/nats/catalog_store.js";
import { encode } from "../../src/nats/codec.js";
import { startTestCluster } from "../harness/cluster.js";
import { query, queryRaw } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";

const T = Date.UTC(2026, 5, 8, 12, 0, 0);
const views = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ id: `v-${from + i}`, article_id: "a-1", user_id: "u", ts: T + (from + i) * 1000 }));

test("a dead consume loop: the actor stops answering at once and comes back from its snapshot", { timeout: 60_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 1, speedNodes: 0 });
  // The feed refuses `failuresLeft` reads: each one kills the loop that asked.
  let failuresLeft = 0;
  let failedReads = 0;
  const fixed = fixedCatalog(cluster.catalog);
  const feed: CatalogFeed = {
    ...fixed,
    refresh: async () => {
      if (failuresLeft > 0) {
        failuresLeft--;
        failedReads++;
        throw new Error("catalog bucket unreachable");
      }
      return fixed.refresh();
    },
  };
  const node = await createSpeedNode(
    { nc: cluster.nc, catalog: cluster.catalog, catalogFeed: feed, names: cluster.names, log: process.env.LAMBDA_TEST_LOG ? createJsonLogger("debug") : silentLogger },
    { nodeId: "restart-node", heartbeatIntervalMs: 200, snapshotIntervalMs: 100, dedupeHorizonIds: 1_000, partitions: 1 },
  );
  try {
    const status = () => cluster.speed.status(0, 500);
    await cluster.ingest.publishBatch("pageviews", views(0, 30));
    const before = await waitFor("the actor to apply 30 events", async () => {
      const s = await status();
      return s.node === "restart-node" && s.appliedSeq >= 30 && s;
    });

    // Its snapshot holds the 30 events, so a restart has something to restore.
    const snapshots = createSnapshotStore((await openBuckets(cluster.nc, cluster.names)).snapshots);
    await waitFor("a snapshot of the actor", async () => (await snapshots.read(0)) !== null);

    // Three loops in a row die on the same record: the partition stays unanswered meanwhile.
    failuresLeft = 3;
    const ack = await jetstream(cluster.nc).publish(cluster.names.eventSubject(0), encode({ k: "e", s: "taps", id: "t-1", ts: T, v: { id: "t-1", ts: T } }));
    await cluster.ingest.publishBatch("pageviews", views(30, 10));
    const unanswered = await waitFor("the failed actor to stop answering", async () => {
      if (failedReads === 0) return false;
      try {
        await status();
        return false;
      } catch (err) {
        return err instanceof SpeedActorUnavailableError && err;
      }
    });
    assert.equal(unanswered.reason, "no_responders", "nobody answers for the partition");
    await assert.rejects(
      queryRaw(cluster.grpc, { metric: "article_views", key: "a-1", from: new Date(T - 60_000), to: new Date(T + 3_600_000) }),
      /UNAVAILABLE.*partition 0/,
      "a strict query fails instead of answering stale numbers",
    );

    // Once the feed reads again, the restarted actor moves past the record (unknown source: skipped) and answers.
    const after = await waitFor(
      "the restarted actor to answer past the record",
      async () => {
        const s: SpeedStatus | undefined = await status().catch(() => undefined);
        return s !== undefined && s.appliedSeq >= ack.seq + 10 && s;
      },
      { timeoutMs: 20_000 },
    );
    assert.equal(failedReads, 3, "each restart read the catalog again");
    assert.equal(after.node, "restart-node");
    assert.equal(after.generation, before.generation, "restarted by its node, not reassigned");
    assert.equal(after.restoredFrom.kind, "snapshot", "restored from its snapshot");
    assert.equal(after.skippedInvalid, 1);
    const r = await query(cluster.grpc, "article_views", "a-1", T - 60_000, T + 3_600_000);
    assert.equal(r.total, 40, "every good event counted once, the record of an unknown source not at all");
  } finally {
    await node.close();
  }
});

test("an actor that could not start is started again while the partition is still its node's (F8: a read timed out while NATS elected leaders)", { timeout: 120_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 1 });
  const errors: string[] = [];
  const node = await createSpeedNode(
    { nc: cluster.nc, catalog: cluster.catalog, names: cluster.names, log: createLogger({ level: "error", sink: { write: (line: string) => void errors.push(line) } }) },
    { nodeId: "survivor", heartbeatIntervalMs: 200, snapshotIntervalMs: 100, dedupeHorizonIds: 1_000, partitions: 2 },
  );
  try {
    const [child] = [...cluster.speedNodes.keys()];
    const owners = async () => [...(await readAssignments((await openBuckets(cluster.nc, cluster.names)).assignments, 2)).values()].map((a) => a.node);
    await waitFor("one partition on each node", async () => new Set(await owners()).size === 2);
    const events = [...views(0, 20), ...views(20, 20).map((v) => ({ ...v, article_id: "a-2" }))];
    assert.equal((await cluster.ingest.publishBatch("pageviews", events)).accepted, 40);

    // Without its snapshot bucket, the survivor cannot start the partition it takes over: the read times out.
    await (await jetstreamManager(cluster.nc)).streams.delete(`KV_${cluster.names.snapshotBucket}`);
    await cluster.killSpeedNode(child!);
    await waitFor("the survivor to fail to start the partition it took over", async () => errors.some((l) => l.includes("could not start speed actor")), { timeoutMs: 60_000 });
    assert.deepEqual(await owners(), ["survivor", "survivor"]);

    // The bucket back: the node tries again by itself, and every event is counted once.
    await openBuckets(cluster.nc, cluster.names);
    for (const key of ["a-1", "a-2"]) {
      const a = await waitFor(`a complete answer for ${key}`, () => query(cluster.grpc, "article_views", key, T - 60_000, T + 3_600_000).catch(() => undefined), { timeoutMs: 60_000 });
      assert.equal(a.total, 20, key);
    }
  } finally {
    await node.close();
  }
});
