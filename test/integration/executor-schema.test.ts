/**
 * The batch executor ensures the ClickHouse schema once per catalog, not before every run
 * (src/batch/executor.ts). A table that goes missing between runs must not fail every run
 * after it: a failed run makes the executor create the schema again.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { queryRows } from "../../src/ch/client.js";
import { viewTable, viewTableName } from "../../src/ch/schema.js";
import { parseRunNowReply, type RunNowReply } from "../../src/nats/coordinator_control.js";
import { startTestCluster } from "../harness/cluster.js";

test("a view table dropped between runs is created again: at most one run fails, the next publishes", { timeout: 60_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 0 });
  const ch = cluster.roles.ch!.client;
  const metric = cluster.catalog.metrics.get("article_views")!;
  const runNow = async (): Promise<RunNowReply> =>
    parseRunNowReply(cluster.names.runNowSubject, (await cluster.nc.request(cluster.names.runNowSubject, new Uint8Array(), { timeout: 30_000 })).data);
  await cluster.ingest.publishBatch("pageviews", [{ id: "s1", article_id: "a", user_id: "u", ts: Date.UTC(2026, 0, 1) }]);
  assert.equal((await runNow()).kind, "published", "first run");

  await ch.command({ query: `DROP TABLE ${viewTable(cluster.cfg.database, metric)} SYNC` });
  const replies = [await runNow()];
  if (replies[0]!.kind !== "published") replies.push(await runNow());
  const last = replies.at(-1)!;
  assert.equal(last.kind, "published", `runs after the drop: ${JSON.stringify(replies.map((r) => r.kind))}`);
  const tables = await queryRows<{ name: string }>(ch, "SELECT name FROM system.tables WHERE database = {db:String} AND name = {name:String}", { db: cluster.cfg.database, name: viewTableName(metric) });
  assert.equal(tables.length, 1, "the view table is back");
  const [row] = await queryRows<{ n: string | number }>(ch, `SELECT sum(n) AS n FROM ${viewTable(cluster.cfg.database, metric)} WHERE run = {run:UInt64}`, { run: last.kind === "published" ? last.watermark.run : 0 });
  assert.equal(Number(row?.n), 1, "the published version counts the event");
});
