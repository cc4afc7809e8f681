/**
 * A speed actor counts in answers only a history the stream's leader confirms: the fault
 * matrix's F12 saw consumers on a drifted replica hand out events at positions the stream does
 * not hold them at, and complete answers off by one (docs/reliability.md). Here the position
 * reader the actor asks first cannot answer (the partition is left out: `unconfirmed`), then
 * says the stream holds something else at the actor's head (the actor stops, rebuilds from the
 * cut, and answers exactly again).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createSpeedNode, type SpeedStatus } from "../../src/actors/index.js";
import { silentLogger } from "../../src/core/logger.js";
import { streamPositionReader, type PositionReader } from "../../src/nats/stream_position.js";
import { startTestCluster } from "../harness/cluster.js";
import { query, queryRaw } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";

const T = Date.UTC(2026, 5, 8, 12, 0, 0);
const views = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ id: `v-${from + i}`, article_id: "a-1", user_id: "u", ts: T + (from + i) * 1000 }));
const range = { from: new Date(T - 60_000), to: new Date(T + 3_600_000) };

test("answers count only a history the stream's leader confirms; a drifted one is rebuilt from the cut", { timeout: 90_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 1, speedNodes: 0 });
  const real = streamPositionReader(cluster.nc, cluster.names.eventStream);
  let mode: "real" | "unreachable" | "drifted" = "real";
  let reads = 0;
  const positions: PositionReader = async (seq) => {
    reads++;
    if (mode === "unreachable") throw new Error("JetStream API timeout");
    const at = await real(seq);
    if (mode === "drifted" && at?.event) return { ...at, event: { ...at.event, id: `other-than-${at.event.id}` } };
    return at;
  };
  const node = await createSpeedNode(
    { nc: cluster.nc, catalog: cluster.catalog, names: cluster.names, log: silentLogger, positions },
    { nodeId: "checking-node", heartbeatIntervalMs: 200, snapshotIntervalMs: 100, dedupeHorizonIds: 1_000, partitions: 1 },
  );
  try {
    const status = () => cluster.speed.status(0, 1_000);
    const applied = (n: number) => waitFor(`the actor to apply through ${n}`, async () => ((await status()).appliedSeq >= n ? status() : false));

    // A batch run gives a cut to rebuild from; 10 more events sit above it in the speed part.
    await cluster.ingest.publishBatch("pageviews", views(0, 30));
    const wm = await cluster.roles.coordinator!.runNow();
    const cut = wm.cuts[0]!;
    await cluster.ingest.publishBatch("pageviews", views(30, 10));
    let s: SpeedStatus = await applied(cut + 10);
    const exact = await query(cluster.grpc, "article_views", "a-1", range.from.getTime(), range.to.getTime());
    assert.deepEqual([exact.total, exact.batchPart, exact.speedPart], [40, 30, 10]);
    s = await status();
    assert.equal(s.confirmedSeq, s.appliedSeq, "the answer waited for its last position to be confirmed");

    // The stream's leader cannot be asked: the partition's speed part is left out, not trusted.
    mode = "unreachable";
    await cluster.ingest.publishBatch("pageviews", views(40, 5));
    s = await applied(cut + 15);
    const unconfirmed = await queryRaw(cluster.grpc, { metric: "article_views", key: "a-1", ...range, strict: false });
    assert.equal(unconfirmed.complete, false);
    assert.deepEqual(
      unconfirmed.missing.map((m) => [m.partition, m.reason, Number(m.countedThroughSeq)]),
      [[0, "unconfirmed", cut]],
      "left out, counted through the cut",
    );
    assert.equal(unconfirmed.answers[0]!.total, 30, "the batch part alone");
    assert.ok((await status()).confirmedSeq < s.appliedSeq, "nothing confirmed past the leader's silence");

    // The leader holds another event at the actor's head: the actor stops and rebuilds from the cut.
    const readsBefore = reads;
    mode = "drifted";
    const drifted = await queryRaw(cluster.grpc, { metric: "article_views", key: "a-1", ...range, strict: false });
    assert.equal(drifted.complete, false);
    assert.ok(["rebuilding", "moving"].includes(drifted.missing[0]!.reason), `left out while it rebuilds (${drifted.missing[0]!.reason})`);
    assert.ok(reads > readsBefore);
    mode = "real";
    const rebuilt = await waitFor("the actor rebuilt from the cut", async () => {
      const r = await status().catch(() => null);
      return r !== null && r.restoredFrom.kind === "cut" && r.appliedSeq >= cut + 15 && r;
    });
    assert.deepEqual(rebuilt.restoredFrom, { kind: "cut", run: wm.run, seq: cut });
    const after = await query(cluster.grpc, "article_views", "a-1", range.from.getTime(), range.to.getTime());
    assert.deepEqual([after.total, after.batchPart, after.speedPart], [45, 30, 15], "exact again after the rebuild");
  } finally {
    await node.close();
  }
});
