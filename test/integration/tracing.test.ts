/**
 * OpenTelemetry tracing, with an SDK registered as a user would: a Query is one trace from the
 * serving node's handler through the batch view read and each partition's speed actor (over
 * NATS, the W3C trace context in the request's headers). Without an SDK nothing is recorded
 * (the rest of the suite runs that way).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { NodeTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-node";
import { createSpeedNode } from "../../src/actors/index.js";
import { silentLogger } from "../../src/core/logger.js";
import { startTestCluster } from "../harness/cluster.js";
import { query } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";

const T = Date.UTC(2026, 5, 8, 12, 0, 0);

test("a query is one trace: serving, the batch view read and every speed actor asked", { timeout: 60_000 }, async () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  provider.register();
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 0 });
  // In this process, so its spans reach the same exporter.
  const node = await createSpeedNode({ nc: cluster.nc, catalog: cluster.catalog, names: cluster.names, log: silentLogger }, { nodeId: "traced", heartbeatIntervalMs: 200, snapshotIntervalMs: 1_000, dedupeHorizonIds: 1_000, partitions: 2 });
  try {
    await cluster.ingest.publishBatch("pageviews", Array.from({ length: 20 }, (_, i) => ({ id: `v-${i}`, article_id: `a-${i % 2}`, user_id: "u", ts: T + i * 1000 })));
    await cluster.roles.coordinator!.runNow();
    await waitFor("both actors running", async () => (await Promise.all([0, 1].map((p) => cluster.speed.status(p, 500).catch(() => null)))).every((s) => s?.phase === "live"));
    // Serving answers at run 1 already: the traced query below asks each actor once.
    await waitFor("serving at run 1", async () => (await query(cluster.grpc, "article_views", "a-1", T - 60_000, T + 3_600_000)).watermarkRun === 1);
    exporter.reset();

    const a = await query(cluster.grpc, "article_views", "a-1", T - 60_000, T + 3_600_000);
    assert.equal(a.total, 10);
    const spans = await waitFor("the actor's span", () => {
      const s = exporter.getFinishedSpans();
      return s.some((x) => x.name === "speed.answer") && s.some((x) => x.name === "lambda.Query") && s;
    });
    const root = spans.find((s) => s.name === "lambda.Query")!;
    const trace = root.spanContext().traceId;
    const inTrace = spans.filter((s) => s.spanContext().traceId === trace);
    const byName = (n: string) => inTrace.filter((s) => s.name === n);
    const parentOf = (s: (typeof spans)[number]) => s.parentSpanContext?.spanId;
    assert.equal(root.attributes["lambda.metric"], "article_views");
    // One key lives on one partition: one speed ask, answered by that partition's actor.
    const [ask] = byName("speed.ask");
    const [answer] = byName("speed.answer");
    const [read] = byName("clickhouse.read_batch");
    assert.ok(ask && answer && read, `spans in the trace: ${inTrace.map((s) => s.name).join(", ")}`);
    assert.equal(parentOf(ask), root.spanContext().spanId);
    assert.equal(parentOf(read), root.spanContext().spanId);
    assert.equal(parentOf(answer), ask.spanContext().spanId, "the actor's span continues the ask it answered, across NATS");
    assert.equal(answer.attributes["lambda.reply"], "value");
    assert.equal(answer.attributes["lambda.partition"], ask.attributes["lambda.partition"]);
  } finally {
    await node.close();
    await provider.shutdown();
  }
});
