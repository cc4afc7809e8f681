/**
 * A batch view the watermark names but this serving node cannot read is never read as zero:
 * a view version dropped under a running cluster gets FAILED_PRECONDITION naming the run and
 * the view; a forged watermark is refused (the node answers at the last good run); a run that
 * genuinely has no rows for a key still answers 0. A serving-only node on its own chDB directory
 * (no tables at all) never comes up: it waits for the writers' schema, creating none, and fails
 * naming the missing tables.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { fork } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { Kvm } from "@nats-io/kv";
import { viewTable, viewTableName } from "../../src/ch/schema.js";
import { publishWatermark } from "../../src/nats/watermark_store.js";
import { LambdaServiceClient } from "../../src/gen/lambda/v1/serving.js";
import { AdminServiceClient, type GetStatusResponse } from "../../src/gen/lambda/v1/admin.js";
import { checkWatermarkViews } from "../../src/serving/view_check.js";
import { startTestCluster } from "../harness/cluster.js";
import { query } from "../harness/grpc.js";
import { keptLogger, type KeptLine } from "../harness/log.js";
import { statusDetails } from "../harness/rpc_status.js";
import { waitFor } from "../harness/wait.js";

const T = Date.UTC(2026, 5, 8, 14, 0, 0);
const HOUR = 3_600_000;
const views = (n: number, article: string) => Array.from({ length: n }, (_, i) => ({ id: `${article}-${i}`, article_id: article, user_id: `u${i}`, ts: T + i * 1000 }));

/** Rejects unless the query fails with FAILED_PRECONDITION naming run `run` and metric article_views' view. */
async function assertViewMissing(client: LambdaServiceClient, run: number, fromMs: number, what: string) {
  await assert.rejects(query(client, "article_views", "a", fromMs, T + HOUR), (err: ServiceError) => {
    assert.equal(err.code, status.FAILED_PRECONDITION, `${what}: ${err.code} ${err.details}`);
    assert.match(err.details, new RegExp(`batch view version ${run} of metric article_views`), what);
    assert.match(err.details, /view_article_views_/, `${what}: names the table`);
    const detail = statusDetails(err) as { details: { "@type": string; violations: { type: string; subject: string }[] }[] };
    assert.equal(detail.details[0]?.["@type"], "type.googleapis.com/google.rpc.PreconditionFailure", what);
    assert.equal(detail.details[0]?.violations[0]?.type, "BATCH_VIEW_MISSING", what);
    assert.match(detail.details[0]?.violations[0]?.subject ?? "", new RegExp(`view_article_views_\\w+\` run ${run}$`), what);
    return true;
  });
}

test("a run with no rows for a key answers 0; a dropped view version fails the query naming run and view; a forged watermark is refused", { timeout: 90_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 1 });
  const coordinator = cluster.roles.coordinator!;
  const ch = cluster.roles.ch!.client;

  // Run 1 covers nothing: its views are empty, and that is a true 0.
  const w1 = await coordinator.runNow();
  const empty = await query(cluster.grpc, "article_views", "a", T - HOUR, T + HOUR);
  assert.deepEqual([empty.total, empty.batchPart, empty.watermarkRun], [0, 0, w1.run]);

  await cluster.ingest.publishBatch("pageviews", views(7, "a"));
  const w2 = await coordinator.runNow();
  const before = await query(cluster.grpc, "article_views", "a", T - HOUR, T + HOUR);
  assert.deepEqual([before.total, before.batchPart, before.watermarkRun], [7, 7, w2.run]);

  // The view version dropped under the running cluster (as a retention or an operator would).
  const table = viewTable(cluster.cfg.database, cluster.catalog.metrics.get("article_views")!);
  await ch.command({ query: `ALTER TABLE ${table} DROP PARTITION ${w2.run}` });
  await assertViewMissing(cluster.grpc, w2.run, T - 2 * HOUR, "dropped version");

  // A forged watermark: a run that was never computed. The node refuses it (nats/watermark_trust.ts)
  // and goes on answering at run 2, whose dropped version still fails naming run 2, never 99.
  const kv = await new Kvm(cluster.nc).open(cluster.names.watermarkBucket);
  const forged = { ...w2, run: 99, viewVersion: 99, publishedAtMs: Date.now() };
  await publishWatermark(kv, forged);
  const admin = new AdminServiceClient(cluster.roles.serving!.address, credentials.createInsecure());
  try {
    const refused = await waitFor("the serving node to refuse watermark 99", () =>
      new Promise<GetStatusResponse>((resolve, reject) => admin.getStatus({}, (err, r) => (err ? reject(err) : resolve(r)))).then((r) => r.watermarkRefused),
    );
    assert.equal(refused.run, 99);
    assert.match(refused.reason, /run 99 is not in the run history/);
  } finally {
    admin.close();
  }
  await assertViewMissing(cluster.grpc, w2.run, T - 3 * HOUR, "forged watermark refused, answering at run 2");

  // The check a serving node runs at start and at every watermark names every missing view.
  const lines: KeptLine[] = [];
  const missing = await checkWatermarkViews(ch, cluster.cfg.database, cluster.catalog, forged, keptLogger(lines));
  assert.deepEqual(missing.map((e) => e.metric).sort(), [...cluster.catalog.metrics.keys()].sort());
  assert.ok(missing.every((e) => e.run === 99 && e.missing === "version"));
  const logged = lines.find((l) => l.level === "error");
  assert.match(logged?.message ?? "", /cannot read the watermark's batch views/);
  assert.deepEqual(await checkWatermarkViews(ch, cluster.cfg.database, cluster.catalog, w1, keptLogger([])), [], "run 1's empty views are there");
});

test("a serving-only node on its own empty chDB directory never starts answering: it waits for the writers' tables, creates none, and fails naming them", { timeout: 90_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 1 });
  await cluster.ingest.publishBatch("pageviews", views(5, "a"));
  await cluster.roles.coordinator!.runNow();
  assert.equal((await query(cluster.grpc, "article_views", "a", T - HOUR, T + HOUR)).total, 5);

  const dir = mkdtempSync(join(tmpdir(), "lambda-serving-only-"));
  const child = fork(new URL("../../src/main/node.js", import.meta.url), [], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      LAMBDA_METRICS_PORT: "0",
      LAMBDA_NATS_URL: cluster.cfg.natsUrl,
      LAMBDA_PREFIX: cluster.cfg.prefix,
      LAMBDA_DATABASE: cluster.cfg.database,
      LAMBDA_PARTITIONS: String(cluster.cfg.partitions),
      LAMBDA_CATALOG: cluster.cfg.catalogPath,
      LAMBDA_ROLES: "serving",
      LAMBDA_CHDB_PATH: join(dir, "chdb"),
      LAMBDA_CLICKHOUSE_SCHEMA_WAIT_MS: "1500",
      LAMBDA_GRPC_HOST: "127.0.0.1",
      LAMBDA_GRPC_PORT: "0",
      LAMBDA_NODE_ID: "serving-only",
      LAMBDA_LOG_LEVEL: "info",
    },
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  let ready = false;
  child.on("message", (m: { kind?: string }) => (ready ||= m.kind === "ready"));
  try {
    const [code] = (await once(child, "exit")) as [number | null];
    assert.equal(code, 2, `a failed start: ${stderr}`);
    assert.equal(ready, false, "it never said it was ready");
    const lines = stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { level: string; msg: string; missing?: string[]; err?: { name: string; message: string; missing?: string[] } });
    // It said what it waits for, then failed naming every table serving reads, as the writers name them.
    const db = cluster.cfg.database;
    const expected = [...[...cluster.catalog.sources.keys()].map((s) => `\`${db}\`.\`master_${s}\``), ...[...cluster.catalog.metrics.values()].map((m) => `\`${db}\`.\`${viewTableName(m)}\``)];
    assert.deepEqual(lines.find((l) => l.msg.startsWith("waiting for"))?.missing, expected, stderr);
    const fatal = lines.find((l) => l.level === "error" && l.err?.name === "SchemaMissingError");
    assert.ok(fatal, stderr);
    assert.deepEqual(fatal.err!.missing, expected);
    assert.match(fatal.err!.message, /still lacks .*master_pageviews.* after 1500 ms \(LAMBDA_CLICKHOUSE_SCHEMA_WAIT_MS\).*start an archiver and a batch executor/);
  } finally {
    if (child.exitCode === null) child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
});
