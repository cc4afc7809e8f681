/**
 * A speed node applies assignment changes one at a time; one that hangs holds up every change
 * behind it. Here an actor's stop hangs (its snapshot waits on a stream leader that does not
 * answer) while its partition moves to a new node: the node's readiness says which change is
 * stuck (its liveness too, once it has run 10 times the bound), and both recover once it ends
 * and the partition has moved.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createSpeedNode } from "../../src/actors/index.js";
import { createHealth } from "../../src/core/health.js";
import { silentLogger } from "../../src/core/logger.js";
import { createMetrics } from "../../src/core/metrics.js";
import { partitionHeads } from "../../src/nats/setup.js";
import { streamPositionReader, type PositionReader } from "../../src/nats/stream_position.js";
import { startTestCluster } from "../harness/cluster.js";
import { waitFor } from "../harness/wait.js";

const T = Date.UTC(2026, 5, 8, 12, 0, 0);
const views = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ id: `v-${from + i}`, article_id: `a-${(from + i) % 16}`, user_id: "u", ts: T + (from + i) * 1000 }));

test("a speed node's readiness names an assignment change that hangs, and recovers once it ends", { timeout: 90_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 0 });
  const real = streamPositionReader(cluster.nc, cluster.names.eventStream);
  let hang = false;
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const hungSubjects = new Set<string>();
  const positions: PositionReader = async (seq) => {
    const at = await real(seq);
    if (hang && at) {
      hungSubjects.add(at.subject);
      await released;
    }
    return at;
  };
  const health = createHealth();
  const metrics = createMetrics();
  const changeSeconds = async () => Number(/^lambda_speed_node_change_running_seconds (\S+)$/m.exec(await metrics.scrape())![1]);
  const node = await createSpeedNode(
    { nc: cluster.nc, catalog: cluster.catalog, names: cluster.names, log: silentLogger, positions, observe: { metrics, health } },
    { nodeId: "slow-node", heartbeatIntervalMs: 200, snapshotIntervalMs: 100, dedupeHorizonIds: 1_000, partitions: 2, stepStuckAfterMs: 500 },
  );
  const changes = async () => (await health.readiness()).checks.find((c) => c.name === "speed node changes")!;
  try {
    const caughtUp = (nodes: string[]) =>
      waitFor(`partitions applied through their heads on ${nodes.join(", ")}`, async () => {
        const heads = await partitionHeads(cluster.nc, cluster.names, 2);
        const statuses = await cluster.speedStatuses();
        return statuses.every((s, p) => s.appliedSeq >= heads[p]! && s.node === nodes[p]) && statuses;
      });
    await cluster.ingest.publishBatch("pageviews", views(0, 40));
    await caughtUp(["slow-node", "slow-node"]);
    assert.equal((await changes()).ok, true);
    assert.equal(await changeSeconds(), 0, "no change runs");

    // Every snapshot now waits on the stream's leader, and a stop waits for the snapshot in flight.
    hang = true;
    await cluster.ingest.publishBatch("pageviews", views(40, 40));
    await waitFor("a snapshot of each partition waiting on the leader", () => hungSubjects.size === 2);

    // A second node takes one partition: the first node's stop of that actor hangs.
    await cluster.addSpeedNode("new-node");
    const stuck = await waitFor("readiness to name the stuck change", async () => {
      const c = await changes();
      return !c.ok && c;
    });
    assert.match(stuck.detail, /^"apply the assignment of partition [01] \(new-node, generation \d+\)" has run for \d+ s; \d+ later change\(s\) wait behind it$/);
    assert.equal((await health.readiness()).ready, false);
    assert.ok((await changeSeconds()) >= 0.5, "the metric shows how long the change has run");
    assert.deepEqual(health.liveness(), [], "live until the change has run 10 times the bound");
    const dead = await waitFor("liveness to fail (5 s: 10 times the bound)", () => health.liveness()[0] ?? false, { timeoutMs: 15_000 });
    assert.equal(dead.name, "speed node changes");
    assert.match(dead.detail, /^"apply the assignment of partition [01] \(new-node, generation \d+\)" has run for \d+ s; .*; a restart moves this node's partitions$/);
    const moved = Number(/partition (\d)/.exec(stuck.detail)![1]);

    // The leader answers again: the stop ends, and the node is ready with one partition.
    hang = false;
    release();
    await waitFor("the stuck change to clear", async () => (await changes()).ok);
    assert.deepEqual(health.liveness(), []);
    await waitFor("the metric back at 0", async () => (await changeSeconds()) === 0);
    const owners = moved === 0 ? ["new-node", "slow-node"] : ["slow-node", "new-node"];
    await cluster.ingest.publishBatch("pageviews", views(80, 20));
    await caughtUp(owners);
    assert.deepEqual(node.partitions(), [1 - moved]);
  } finally {
    hang = false;
    release();
    await node.close();
  }
});
