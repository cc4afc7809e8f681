/**
 * A changed catalog: queries on a metric added or redefined after the current
 * watermark's run are refused with the reason (never answered with its history
 * missing), unchanged metrics keep answering, and a coordinator started with the
 * new catalog runs a batch at once that computes the new definitions over the
 * whole master dataset.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { parseCatalog, metricFingerprint } from "../../src/core/catalog.js";
import { silentLogger } from "../../src/core/logger.js";
import { createCoordinator } from "../../src/coordinator/index.js";
import { createServingNode } from "../../src/serving/index.js";
import { LambdaServiceClient } from "../../src/gen/lambda/v1/serving.js";
import { startTestCluster } from "../harness/cluster.js";
import { getWatermark, query, queryRaw } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";

const T0 = Date.UTC(2026, 5, 8, 12, 0, 0);

test("a redefined or added metric is refused until a run adopts it; the new coordinator adopts it at once", { timeout: 120_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 1 });
  const events = Array.from({ length: 120 }, (_, i) => ({ id: `c-${i}`, article_id: `a-${i % 4}`, user_id: `u-${i % 7}`, ts: T0 + i * 20_000 }));
  await cluster.ingest.publishBatch("pageviews", events);
  await cluster.roles.coordinator!.runNow();
  await cluster.waitForSpeedCaughtUp();

  const doc = JSON.parse(readFileSync(cluster.cfg.catalogPath, "utf8"));
  doc.metrics.article_views.window = "5m"; // redefined
  doc.metrics.article_readers = { source: "pageviews", groupBy: ["article_id"], window: "1h", aggregates: { readers: { distinct: "user_id" } } }; // added
  const next = parseCatalog(doc, "changed catalog");
  assert.notEqual(metricFingerprint(next.metrics.get("article_views")!), metricFingerprint(cluster.catalog.metrics.get("article_views")!));

  const serving = await createServingNode(
    { nc: cluster.nc, ch: cluster.roles.ch!.client, catalog: next, names: cluster.names, log: silentLogger },
    { host: "127.0.0.1", port: 0, partitions: cluster.cfg.partitions, database: cluster.cfg.database, nodeId: "serving-b", heartbeatIntervalMs: 200, viewVersionsKept: 3 },
  );
  const client = new LambdaServiceClient(serving.address, credentials.createInsecure());
  try {
    const range = { from: new Date(T0 - 3_600_000), to: new Date(T0 + 3_600_000) };
    for (const [metric, word] of [["article_views", "redefined"], ["article_readers", "added"]] as const) {
      const err = await queryRaw(client, { metric, key: "a-1", ...range }).then(() => null, (e: ServiceError) => e);
      assert.equal(err?.code, status.FAILED_PRECONDITION, `${metric}: ${err?.details}`);
      assert.match(err!.details, new RegExp(`${metric} was ${word} after batch run 1`));
    }
    // Unchanged metrics answer as before.
    const unchanged = await query(client, "slow_pages", "a-1", range.from.getTime(), range.to.getTime());
    assert.equal(unchanged.watermarkRun, 1);

    // The coordinator with the new catalog adopts it at once.
    await cluster.roles.coordinator!.close();
    const coordinator = await createCoordinator(
      { nc: cluster.nc, ch: cluster.roles.ch!.client, catalog: next, names: cluster.names, log: silentLogger },
      { coordinatorId: "coordinator-b", partitions: cluster.cfg.partitions, database: cluster.cfg.database, batchIntervalMs: 0, heartbeatIntervalMs: 200, nodeTimeoutMs: 1_500, viewVersionsKept: 3 },
    );
    try {
      await waitFor("run 2 under the new catalog", async () => (await getWatermark(client)).watermark?.run === 2);
      for (let k = 0; k < 4; k++) {
        const r = await query(client, "article_views", `a-${k}`, range.from.getTime(), range.to.getTime());
        assert.equal(r.batchPart, events.filter((e) => e.article_id === `a-${k}`).length, "the whole history, under the new definition");
        assert.equal(r.watermarkRun, 2);
      }
      // Speed nodes still run the old catalog: the new metric is unavailable until they restart, never half-answered.
      const err = await queryRaw(client, { metric: "article_readers", key: "a-1", ...range }).then(() => null, (e: ServiceError) => e);
      assert.equal(err?.code, status.UNAVAILABLE);
      assert.match(err!.details, /older catalog; restart it/);
    } finally {
      await coordinator.close();
    }
  } finally {
    client.close();
    await serving.close();
  }
});
