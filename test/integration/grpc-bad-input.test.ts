/**
 * The gRPC surface against a real cluster: bad queries get INVALID_ARGUMENT
 * naming the field and leave the server answering; the standard health service
 * works, so stock probes (grpc-health-probe) do. Reflection: grpc-reflection.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { credentials, makeGenericClientConstructor, status, type Client, type ServiceError } from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import type { QueryRequest, QueryResponse } from "../../src/gen/lambda/v1/serving.js";
import { startTestCluster, type TestCluster } from "../harness/cluster.js";
import { query, queryRaw, topK } from "../harness/grpc.js";

const T = Date.UTC(2026, 5, 8, 14, 23, 0);
const YEAR_MS = 365 * 86_400_000;

function rawQuery(cluster: TestCluster, req: Partial<QueryRequest>): Promise<QueryResponse> {
  return queryRaw(cluster.grpc, req);
}

async function assertInvalid(cluster: TestCluster, req: Partial<QueryRequest>, field: string, reason: RegExp) {
  await assert.rejects(rawQuery(cluster, req), (err: unknown) => {
    const e = err as ServiceError;
    assert.equal(e.code, status.INVALID_ARGUMENT, `code for ${JSON.stringify(req)}: ${e.code} ${e.details}`);
    assert.ok(e.details.startsWith(`${field}: `), `details name the field ${field}: ${e.details}`);
    assert.match(e.details, reason);
    return true;
  });
}

function unary<Req, Res>(client: Client, method: string, req: Req): Promise<Res> {
  const fn = (client as unknown as Record<string, (r: Req, cb: (err: ServiceError | null, res: Res) => void) => void>)[method]!;
  return new Promise((resolve, reject) => fn.call(client, req, (err, res) => (err ? reject(err) : resolve(res))));
}

test("bad queries get INVALID_ARGUMENT naming the field; health answers; the server keeps serving", async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 1 });
  await cluster.ingest.publishBatch("pageviews", [{ id: "a", article_id: "x", user_id: "u", ts: T }]);
  await cluster.waitForSpeedCaughtUp();
  const valid: Partial<QueryRequest> = { metric: "article_views", key: "x", from: new Date(T - 60_000), to: new Date(T + 60_000) };

  await assertInvalid(cluster, { ...valid, metric: "page_views" }, "metric", /unknown metric "page_views"; defined: article_views/);
  await assertInvalid(cluster, { ...valid, metric: "" }, "metric", /is required/);
  await assertInvalid(cluster, { ...valid, key: "" }, "key", /is required/);
  await assertInvalid(cluster, { ...valid, from: undefined }, "from", /is required/);
  await assertInvalid(cluster, { ...valid, to: undefined }, "to", /is required/);
  await assertInvalid(cluster, { ...valid, to: valid.from }, "to", /must be after from/);
  await assertInvalid(cluster, { ...valid, from: new Date(T), to: new Date(T - 1) }, "to", /must be after from/);
  await assertInvalid(cluster, { ...valid, from: new Date(T - 20 * YEAR_MS), to: new Date(T) }, "to", /range spans more than \d+ days/);
  await assertInvalid(cluster, { ...valid, aggregate: "nope" }, "aggregate", /has no aggregate "nope"; it has: views/);
  await assertInvalid(cluster, { ...valid, quantile: 0.9 }, "quantile", /applies to quantiles aggregates/);
  await assertInvalid(cluster, { ...valid, metric: "article_engagement", aggregate: "load_ms", quantile: 1.5 }, "quantile", /must be in \[0, 1\]/);
  await assertInvalid(cluster, { ...valid, keys: Array.from({ length: 1001 }, (_, i) => `k${i}`) }, "keys", /at most 1000/);
  await assertInvalid(cluster, { ...valid, key: "", group: { nope: "x" } }, "group", /not grouped by "nope"/);
  await assertInvalid(cluster, { metric: "order_flow", key: "EUR", from: valid.from, to: valid.to }, "key", /grouped by 2 fields; address keys with group/);
  await assertInvalid(cluster, { metric: "order_flow", group: { currency: "EUR" }, from: valid.from, to: valid.to }, "group", /missing: status/);
  await assert.rejects(topK(cluster.grpc, { metric: "article_views", k: 0, from: valid.from, to: valid.to }), (err: ServiceError) => err.code === status.INVALID_ARGUMENT && err.details.startsWith("k: "));
  await assert.rejects(topK(cluster.grpc, { metric: "article_views", k: 3, where: { nope: "x" }, from: valid.from, to: valid.to }), (err: ServiceError) => err.code === status.INVALID_ARGUMENT && err.details.startsWith("where: "));

  // Still serving, and right.
  const r = await query(cluster.grpc, "article_views", "x", T - 60_000, T + 60_000);
  assert.equal(r.total, 1);
  assert.equal(r.response.metric, "article_views");
  assert.equal(r.response.answers[0]!.key, "x");

  // Standard health service.
  const Health = makeGenericClientConstructor(healthService, "grpc.health.v1.Health");
  const health = new Health(cluster.roles.serving!.address, credentials.createInsecure());
  try {
    assert.deepEqual(await unary(health, "check", { service: "" }), { status: "SERVING" });
    assert.deepEqual(await unary(health, "check", { service: "lambda.v1.LambdaService" }), { status: "SERVING" });
    await assert.rejects(unary(health, "check", { service: "no.such.Service" }), (err: unknown) => (err as ServiceError).code === status.NOT_FOUND);
  } finally {
    health.close();
  }
});
