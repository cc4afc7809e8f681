import { test } from "node:test";
import assert from "node:assert/strict";
import { startTestCluster } from "../harness/cluster.js";
import { query } from "../harness/grpc.js";

test("one event flows to speed, then to batch", async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 1 });
  const t = Date.UTC(2026, 5, 8, 14, 23, 0);
  await cluster.ingest.publishBatch("pageviews", [
    { id: "a", article_id: "x", user_id: "u", ts: new Date(t).toISOString() },
    { id: "b", article_id: "x", user_id: "u", ts: t + 1000 },
  ]);
  await cluster.waitForSpeedCaughtUp();
  let r = await query(cluster.grpc, "article_views", "x", t - 60_000, t + 60_000);
  assert.equal(r.total, 2);
  assert.equal(r.speedPart, 2);
  const w = await cluster.roles.coordinator!.runNow();
  assert.equal(w.run, 1);
  await cluster.waitForSpeedCaughtUp();
  r = await query(cluster.grpc, "article_views", "x", t - 60_000, t + 60_000);
  assert.equal(r.total, 2);
  assert.equal(r.batchPart, 2);
});
