/**
 * A lambda-node process as an operator watches it: /livez, /readyz and /metrics on its metrics
 * port. The numbers equal what `lambdactl status` reports; every metric the Grafana dashboard
 * and the alert rules (deploy/monitoring) use exists; readiness and the gRPC health of the
 * serving node go down while NATS is gone and come back with it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { credentials } from "@grpc/grpc-js";
import type { NatsConnection } from "@nats-io/transport-node";
import { readCatalogFile } from "../../src/core/catalog.js";
import { createLogger } from "../../src/core/logger.js";
import { createMetrics } from "../../src/core/metrics.js";
import { createIngest } from "../../src/ingest/index.js";
import { connectNats } from "../../src/nats/connect.js";
import { namesFor } from "../../src/nats/names.js";
import { startNatsServer, type NatsServerProcess } from "../../src/nats/server_process.js";
import { spawnNode } from "../../src/main/spawn.js";
import type { StatusJson } from "../../src/cli/commands/status.js";
import { lambdactl, parseJson } from "../harness/cli.js";
import { healthCheck, healthClient } from "../harness/grpc_tls.js";
import { query } from "../harness/grpc.js";
import { LambdaServiceClient } from "../../src/gen/lambda/v1/serving.js";
import { waitFor } from "../harness/wait.js";
import { runBatchOver } from "../harness/batch_run.js";

const CATALOG = fileURLToPath(new URL("../../../catalog/catalog.json", import.meta.url));
const MONITORING = fileURLToPath(new URL("../../../deploy/monitoring/", import.meta.url));
const PARTITIONS = 2;
const names = namesFor("lambda");
const T = Date.UTC(2026, 5, 8, 14, 0, 0);

/** Samples of a Prometheus text exposition: `name{labels}` → value. */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}
const metricNames = (samples: Map<string, number>) => new Set([...samples.keys()].map((k) => k.replace(/\{.*$/, "")));

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

test("metrics equal lambdactl status, cover the dashboard and alerts, and readiness follows NATS", { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "lambda-metrics-"));
  const storeDir = join(dir, "nats");
  let server: NatsServerProcess = await startNatsServer({ storeDir });
  const port = server.port;
  const env = {
    LAMBDA_NATS_URL: server.url,
    LAMBDA_PARTITIONS: String(PARTITIONS),
    LAMBDA_CATALOG: CATALOG,
    LAMBDA_LOG_LEVEL: "error",
    LAMBDA_HEARTBEAT_INTERVAL_MS: "200",
    LAMBDA_BATCH_INTERVAL_MS: "0",
    LAMBDA_ROLES: "archiver,coordinator,executor,serving,speed",
    LAMBDA_CHDB_PATH: join(dir, "chdb"),
    LAMBDA_GRPC_HOST: "127.0.0.1",
    LAMBDA_GRPC_PORT: "0",
  };
  const node = spawnNode("all", env, "inherit");
  let nc: NatsConnection | undefined;
  try {
    const { grpc, metricsPort } = await node.ready;
    assert.ok(grpc && metricsPort, "the node reports its gRPC address and metrics port");
    assert.deepEqual(await get(metricsPort, "/livez"), { status: 200, body: "ok\n" });
    await waitFor("the node to be ready", async () => (await get(metricsPort, "/readyz")).status === 200, { timeoutMs: 60_000 });

    // Events through an ingest that counts into its own registry (as the local cluster's feeder does).
    nc = await connectNats(server.url, "metrics test", {});
    const ingestMetrics = createMetrics();
    const ingest = createIngest({ nc, catalog: readCatalogFile(CATALOG).catalog, names, partitions: PARTITIONS, log: createLogger({ level: "error" }), metrics: ingestMetrics });
    const views = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ id: `e${from + i}`, article_id: `a-${(from + i) % 3}`, user_id: "u", ts: T + (from + i) * 1000 }));
    await ingest.publishBatch("pageviews", views(0, 40));
    await ingest.publishBatch("pageviews", [...views(0, 2), { id: "bad", article_id: "a-1", user_id: "u", ts: "not a time" }]);
    const counted = parseExposition(await ingestMetrics.scrape());
    assert.equal(counted.get('lambda_ingest_events_total{source="pageviews",outcome="accepted"}'), 40);
    assert.equal(counted.get('lambda_ingest_events_total{source="pageviews",outcome="duplicate"}'), 2);
    assert.equal(counted.get('lambda_ingest_events_total{source="pageviews",outcome="refused"}'), 1);

    assert.equal(await runBatchOver(nc, names), 1);
    await ingest.publishBatch("pageviews", views(40, 10));
    const cliEnv = { LAMBDA_NATS_URL: server.url, LAMBDA_GRPC_ADDR: grpc, LAMBDA_PARTITIONS: String(PARTITIONS) };
    const status = await waitFor(
      "speed and archiver caught up",
      async () => {
        const s = parseJson<StatusJson>(await lambdactl(["status", "--json"], { cwd: dir, env: cliEnv }));
        return s.partitions.every((p) => p.streamHead > 0 && p.speedLag === 0 && p.archiverLag === 0) && s;
      },
      { timeoutMs: 30_000 },
    );

    // A query, timed by method and code.
    const client = new LambdaServiceClient(grpc, credentials.createInsecure());
    const answer = await query(client, "article_views", "a-1", T - 3_600_000, T + 3_600_000);
    assert.equal(answer.total, 17, "a-1 has events 1, 4, ..., 49");
    // A key the view version lacks is answered without a batch read once serving holds the version's key set (read in the background).
    const absent = await waitFor(
      "a read spared by the view version's key set",
      async () => {
        const a = await query(client, "article_views", "a-9", T - 3_600_000, T + 3_600_000);
        const spared = parseExposition((await get(metricsPort, "/metrics")).body).get('lambda_serving_batch_key_filter_reads_total{result="skipped"}') ?? 0;
        return spared >= 1 && a;
      },
      { timeoutMs: 30_000 },
    );
    assert.equal(absent.total, 0, "a-9 has no events");

    // The same numbers, read by Prometheus and by lambdactl (nothing moves: no events arrive).
    const scraped = await get(metricsPort, "/metrics");
    assert.equal(scraped.status, 200);
    const samples = parseExposition(scraped.body);
    for (const p of status.partitions) {
      const at = `{partition="${p.partition}"}`;
      assert.equal(samples.get(`lambda_stream_last_sequence${at}`), p.streamHead, `stream head of ${p.partition}`);
      assert.equal(samples.get(`lambda_speed_applied_sequence${at}`), p.appliedSeq, `applied of ${p.partition}`);
      assert.equal(samples.get(`lambda_archiver_flushed_sequence${at}`), p.archivedSeq, `archived of ${p.partition}`);
      assert.equal(samples.get(`lambda_speed_held_events${at}`), p.speedEventsHeld, `held of ${p.partition}`);
    }
    assert.equal(samples.get("lambda_watermark_run"), status.watermarkRun);
    assert.equal(samples.get("lambda_coordinator_leader"), 1);
    assert.equal(samples.get('lambda_batch_runs_total{outcome="published"}'), 1);
    assert.equal(samples.get('lambda_speed_actors{phase="live"}'), PARTITIONS);
    assert.equal(samples.get("lambda_nats_connected"), 1);
    assert.ok((samples.get('lambda_grpc_server_handling_seconds_count{method="lambda.v1.AdminService/GetStatus",code="OK"}') ?? 0) >= 1, "status calls are timed");
    const queries = samples.get('lambda_grpc_server_handling_seconds_count{method="lambda.v1.LambdaService/Query",code="OK"}') ?? 0;
    assert.ok(queries >= 2, `the queries are timed (${queries})`);
    // article_views groups by article: a-0, a-1 and a-2 are in run 1's view, so its key set holds 3 keys.
    assert.equal(samples.get("lambda_serving_batch_key_sets"), 1);
    assert.equal(samples.get("lambda_serving_batch_keys"), 3);
    assert.equal(samples.get('lambda_serving_batch_key_filter_reads_total{result="narrowed"}') ?? 0, 0, "one key per call: nothing to narrow");
    assert.equal(samples.get('lambda_batch_runs_total{outcome="failed"}'), 0, "no run failed, and the series is there for an alert");

    // Every metric the dashboard and the alert rules use exists.
    const exposed = new Set([...metricNames(samples), ...metricNames(counted)]);
    for (const file of ["grafana-dashboard.json", "alerts.yaml"]) {
      const used = new Set(readFileSync(join(MONITORING, file), "utf8").match(/\b(lambda|nodejs|process)_[a-z0-9_]+/g) ?? []);
      assert.ok(used.size > 5, `${file} uses metrics`);
      for (const name of used) assert.ok(exposed.has(name), `${file} uses ${name}, which no process exposes`);
    }

    // NATS gone: not ready, and serving says NOT_SERVING; NATS back: ready and SERVING again.
    const health = healthClient(grpc, credentials.createInsecure());
    // gRPC health follows readiness within a second (serving/server.ts HEALTH_SYNC_MS).
    await waitFor("gRPC health SERVING", async () => (await healthCheck(health)) === "SERVING", { timeoutMs: 5_000 });
    await server.close();
    const down = await waitFor("readiness to fail", async () => {
      const r = await get(metricsPort, "/readyz");
      return r.status === 503 && r;
    });
    assert.match(down.body, /FAIL nats: disconnected/);
    await waitFor("gRPC health NOT_SERVING", async () => (await healthCheck(health)) === "NOT_SERVING");
    server = await startNatsServer({ storeDir, args: ["-p", String(port)] });
    await waitFor("readiness back", async () => (await get(metricsPort, "/readyz")).status === 200, { timeoutMs: 30_000 });
    await waitFor("gRPC health SERVING again", async () => (await healthCheck(health)) === "SERVING");
    assert.ok((parseExposition((await get(metricsPort, "/metrics")).body).get("lambda_nats_reconnects_total") ?? 0) >= 1);
    health.close();
  } finally {
    await nc?.close();
    await node.stop();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
