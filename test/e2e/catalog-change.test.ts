/**
 * A changed catalog, end to end. Answers at watermark N use the definitions run
 * N computed: a redefined metric keeps answering as run N defined it until a
 * run adopts the new definition, a removed one keeps answering until then, and
 * an added one is refused (never answered with its history missing). The
 * coordinator started with the new catalog runs at once; the speed actors,
 * still on the old catalog, learn the new definitions from the watermark and
 * rebuild from the cut. A rollback across the change answers with the old
 * definitions again. Every figure is compared with a recount of the events.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { parseCatalog, metricFingerprint, type Catalog } from "../../src/core/catalog.js";
import { silentLogger } from "../../src/core/logger.js";
import { createCoordinator } from "../../src/coordinator/index.js";
import { createServingNode } from "../../src/serving/index.js";
import { applyCatalog } from "../../src/nats/catalog_store.js";
import { openBuckets } from "../../src/nats/setup.js";
import { LambdaServiceClient, type ListMetricsResponse, type MetricInfo } from "../../src/gen/lambda/v1/serving.js";
import { startTestCluster } from "../harness/cluster.js";
import { getWatermark, query, queryRaw, type OneAnswer } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";

const T0 = Date.UTC(2026, 5, 8, 12, 0, 0);
const FROM = T0 - 3_600_000;
const TO = T0 + 3_600_000;

interface Pageview {
  readonly id: string;
  readonly article_id: string;
  readonly user_id: string;
  readonly ts: number;
}

const pageviews = (prefix: string, n: number, offsetMs: number): Pageview[] =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, article_id: `a-${i % 4}`, user_id: `u-${i % 7}`, ts: T0 + offsetMs + i * 20_000 }));

const listMetrics = (client: LambdaServiceClient) =>
  new Promise<MetricInfo[]>((resolve, reject) => client.listMetrics({}, (err: ServiceError | null, r: ListMetricsResponse) => (err ? reject(err) : resolve(r.metrics))));

const refused = (client: LambdaServiceClient, metric: string) =>
  queryRaw(client, { metric, key: "a-1", from: new Date(FROM), to: new Date(TO) }).then(
    () => null,
    (e: ServiceError) => e,
  );

/**
 * The answer for a-1 once it is made at `run` with `definition` and totals `total` when given
 * (actors rebuilding answer UNAVAILABLE meanwhile, and apply new events a moment later).
 */
async function answerAt(client: LambdaServiceClient, metric: string, run: number, definition: string, total?: number): Promise<OneAnswer> {
  let last: OneAnswer | null = null;
  await waitFor(`${metric} answered at run ${run} with definition ${definition}${total === undefined ? "" : ` and total ${total}`}`, async () => {
    try {
      last = await query(client, metric, "a-1", FROM, TO);
    } catch (err) {
      if ((err as ServiceError).code === status.UNAVAILABLE) return false;
      throw err;
    }
    return last.watermarkRun === run && last.response.definition === definition && (total === undefined || last.total === total);
  });
  return last!;
}

test("answers use the definitions of the watermark's run: through a catalog change, its adoption and a rollback across it", { timeout: 180_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 1 });
  const old: Catalog = cluster.catalog;
  const doc = JSON.parse(readFileSync(cluster.cfg.catalogPath, "utf8"));
  doc.metrics.article_views.filter = { field: "user_id", op: "ne", value: "u-0" }; // redefined
  doc.metrics.article_readers = { source: "pageviews", groupBy: ["article_id"], window: "1h", aggregates: { views: "count", readers: { distinct: "user_id" } } }; // added
  delete doc.metrics.slow_pages; // removed
  const next = parseCatalog(doc, "changed catalog");
  const v1 = metricFingerprint(old.metrics.get("article_views")!);
  const v2 = metricFingerprint(next.metrics.get("article_views")!);
  const readers = metricFingerprint(next.metrics.get("article_readers")!);
  const slow = metricFingerprint(old.metrics.get("slow_pages")!);
  assert.notEqual(v1, v2);

  // Recounts: article a-1, under each definition.
  const all: Pageview[] = [];
  const countV1 = (evs: readonly Pageview[]) => evs.filter((e) => e.article_id === "a-1").length;
  const countV2 = (evs: readonly Pageview[]) => evs.filter((e) => e.article_id === "a-1" && e.user_id !== "u-0").length;
  const publish = async (evs: Pageview[]) => {
    await cluster.ingest.publishBatch("pageviews", evs);
    all.push(...evs);
  };

  const a = pageviews("a", 120, 0);
  await publish(a);
  await cluster.waitForSpeedCaughtUp();
  await cluster.roles.coordinator!.runNow(); // run 1, old catalog
  const b = pageviews("b", 60, 60_000);
  await publish(b);
  await cluster.waitForSpeedCaughtUp();

  // A serving node that already has the new catalog.
  const serving = await createServingNode(
    { nc: cluster.nc, ch: cluster.roles.ch!.client, catalog: next, names: cluster.names, log: silentLogger },
    { host: "127.0.0.1", port: 0, partitions: cluster.cfg.partitions, database: cluster.cfg.database, nodeId: "serving-b", heartbeatIntervalMs: 200, nodeTimeoutMs: 1_500, viewVersionsKept: 3 },
  );
  const client = new LambdaServiceClient(serving.address, credentials.createInsecure());
  const oldClient = new LambdaServiceClient(cluster.roles.serving!.address, credentials.createInsecure());
  try {
    // Until a run adopts the change, run 1's definitions answer.
    const before = await answerAt(client, "article_views", 1, v1);
    assert.deepEqual([before.total, before.batchPart, before.speedPart], [countV1(all), countV1(a), countV1(b)], "redefined: still run 1's definition");
    assert.equal((await answerAt(client, "slow_pages", 1, slow)).watermarkRun, 1, "removed: still answers at run 1");
    const added = await refused(client, "article_readers");
    assert.equal(added?.code, status.FAILED_PRECONDITION, added?.details);
    assert.match(added!.details, /article_readers was added after batch run 1/);
    const standing = Object.fromEntries((await listMetrics(client)).map((m) => [m.name, [m.definition, m.nextDefinition]]));
    assert.deepEqual(standing.article_views, [v1, v2], "redefined: answers with v1, the next run computes v2");
    assert.deepEqual(standing.article_readers, ["", readers], "added: nothing answers yet");
    assert.deepEqual(standing.slow_pages, [slow, ""], "removed: answers until the next run");

    // The coordinator with the new catalog adopts it at once, over the whole master dataset. Its
    // file goes into the catalog bucket first, as a coordinator started on it does (main/roles.ts),
    // so the batch executor computes with it too.
    await cluster.roles.coordinator!.close();
    await applyCatalog((await openBuckets(cluster.nc, cluster.names)).catalog, { path: "changed catalog", document: doc, catalog: next }, { origin: "test", fromFile: true });
    const coordinator = await createCoordinator(
      { nc: cluster.nc, catalog: next, names: cluster.names, log: silentLogger },
      { coordinatorId: "coordinator-b", partitions: cluster.cfg.partitions, batchIntervalMs: 0, heartbeatIntervalMs: 200, nodeTimeoutMs: 1_500, leaderLeaseMs: 1_500, leaderRenewMs: 200, viewVersionsKept: 3 },
    );
    try {
      await waitFor("run 2 under the new catalog", async () => (await getWatermark(client)).watermark?.run === 2);
      const adopted = await answerAt(client, "article_views", 2, v2);
      assert.deepEqual([adopted.total, adopted.batchPart, adopted.speedPart], [countV2(all), countV2(all), 0], "the whole history, under the new definition");
      // The speed node learnt v2 (from the watermark or the catalog bucket, whichever came first).
      const c = pageviews("c", 60, 120_000);
      await publish(c);
      const after = await answerAt(client, "article_views", 2, v2, countV2(all));
      assert.deepEqual([after.total, after.batchPart, after.speedPart], [countV2(all), countV2([...a, ...b]), countV2(c)], "new events, new definition, on the speed side too");
      const r = await answerAt(client, "article_readers", 2, readers, countV1(all));
      assert.deepEqual([r.total, r.batchPart, r.speedPart], [countV1(all), countV1([...a, ...b]), countV1(c)], "the added metric, from the first event");
      // A serving node on the old catalog answers as the watermark says, too.
      assert.equal((await answerAt(oldClient, "article_views", 2, v2)).total, countV2(all));
      assert.equal((await refused(client, "slow_pages"))?.code, status.INVALID_ARGUMENT, "removed once run 2 published");

      // Rolled back to run 1: its definitions answer again, batch view 1 plus everything above cut 1.
      await coordinator.rollback(1);
      const back = await answerAt(client, "article_views", 1, v1, countV1(all));
      assert.deepEqual([back.total, back.batchPart, back.speedPart], [countV1(all), countV1(a), countV1([...b, ...c])], "run 1's definition again");
      const again = await refused(client, "article_readers");
      assert.equal(again?.code, status.FAILED_PRECONDITION, again?.details);
      assert.equal((await answerAt(client, "slow_pages", 1, slow)).watermarkRun, 1);

      // Runs 3..5 adopt the new catalog again; with 3 versions kept, runs 1 and 2 go, and with
      // them the tables of definitions no kept run uses.
      for (let i = 0; i < 3; i++) await coordinator.runNow();
      const ch = cluster.roles.ch!.client;
      const tables = async () =>
        (await (await ch.query({ query: `SELECT name FROM system.tables WHERE database = {db:String} AND startsWith(name, 'view_')`, query_params: { db: cluster.cfg.database }, format: "JSONEachRow" })).json<{ name: string }>()).map((t) => t.name);
      const left = await tables();
      assert.ok(!left.includes(`view_article_views_${v1}`), `v1's table dropped: ${left.join(", ")}`);
      assert.ok(!left.includes(`view_slow_pages_${slow}`), "the removed metric's table dropped");
      assert.ok(left.includes(`view_article_views_${v2}`) && left.includes(`view_article_readers_${readers}`));
      const runs = await (await ch.query({ query: `SELECT DISTINCT run FROM ${cluster.cfg.database}.view_article_views_${v2} ORDER BY run`, format: "JSONEachRow" })).json<{ run: string | number }>();
      assert.deepEqual(runs.map((r) => Number(r.run)), [3, 4, 5]);
      assert.equal((await answerAt(client, "article_views", 5, v2, countV2(all))).batchPart, countV2(all));
    } finally {
      await coordinator.close();
    }
  } finally {
    client.close();
    oldClient.close();
    await serving.close();
  }
});
