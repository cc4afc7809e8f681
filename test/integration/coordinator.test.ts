/** The coordinator's schedule: runs on an interval, and on demand over NATS. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseRunNowReply } from "../../src/nats/coordinator_control.js";
import { startTestCluster } from "../harness/cluster.js";
import { getWatermark } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";

test("batch runs happen on the interval and on request, one at a time, the watermark only moving forward", { timeout: 60_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 1, config: { batchIntervalMs: 300 } });
  await cluster.ingest.publishBatch("pageviews", [{ id: "c1", article_id: "a", user_id: "u", ts: Date.UTC(2026, 0, 1) }]);
  const seen: number[] = [];
  await waitFor("two scheduled runs", async () => {
    const w = await getWatermark(cluster.grpc);
    if (w.watermark) seen.push(w.watermark.run);
    return (w.watermark?.run ?? 0) >= 2;
  });
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!, `watermark went back: ${seen.join(",")}`);

  const reply = parseRunNowReply(cluster.names.runNowSubject, (await cluster.nc.request(cluster.names.runNowSubject, new Uint8Array(), { timeout: 30_000 })).data);
  assert.equal(reply.kind, "published");
  assert.ok(reply.kind === "published" && reply.watermark.run > seen[seen.length - 1]!);
  assert.equal(reply.kind === "published" && reply.watermark.eventsCovered, 1);
});
