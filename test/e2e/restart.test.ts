/**
 * A speed node dies without warning (SIGKILL: no final snapshot); the
 * coordinator notices the missing heartbeats and hands its partitions to a new
 * node, which restores the snapshot and replays the stream after it. Answers
 * stay exact, with events before and after the last snapshot and a batch run
 * in between.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createSnapshotStore, decodeSnapshot } from "../../src/actors/index.js";
import { speedCatalogOf } from "../../src/actors/speed_state.js";
import { openBuckets } from "../../src/nats/setup.js";
import { startTestCluster } from "../harness/cluster.js";
import { query } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 5, 8, 12, 0, 0);

function events(from: number, count: number) {
  return Array.from({ length: count }, (_, i) => ({
    id: `r-${from + i}`,
    article_id: `a-${(from + i) % 7}`,
    user_id: "u",
    ts: T0 + ((from + i) % 50) * MINUTE,
  }));
}

function expected(all: { article_id: string }[], article: string): number {
  return all.filter((e) => e.article_id === article).length;
}

test("answers stay exact after a speed node is SIGKILLed, the survivor takes over and a new node joins", { timeout: 120_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 4, speedNodes: 2 });
  const all = [...events(0, 300)];
  const assertExact = async () => {
    for (let k = 0; k < 7; k++) {
      const r = await query(cluster.grpc, "article_views", `a-${k}`, T0 - MINUTE, T0 + 60 * MINUTE);
      assert.equal(r.total, expected(all, `a-${k}`), `a-${k}: batch ${r.batchPart} + speed ${r.speedPart} at run ${r.watermarkRun}`);
    }
  };
  await cluster.ingest.publishBatch("pageviews", all);
  await cluster.roles.coordinator!.runNow();
  const more = events(300, 300);
  all.push(...more);
  await cluster.ingest.publishBatch("pageviews", more);
  await cluster.waitForSpeedCaughtUp();

  const victim = [...cluster.speedNodes.keys()][0]!;
  const owned = cluster.roles.coordinator!.assignments().filter((a) => a.node === victim).map((a) => a.partition);
  assert.ok(owned.length > 0, "the victim owned partitions");
  // Wait until the victim has snapshotted what it holds, so the new owner restores a snapshot.
  // Events published after that point are only in the stream: the new owner must replay them.
  const snapshots = createSnapshotStore((await openBuckets(cluster.nc, cluster.names)).snapshots);
  const statusesBefore = await cluster.speedStatuses();
  await waitFor("the victim's snapshots to cover what it applied", async () => {
    for (const p of owned) {
      const blob = await snapshots.read(p);
      const snap = blob && decodeSnapshot(blob, p, 1_000_000, speedCatalogOf(cluster.catalog));
      if (!snap || snap.kind !== "state" || snap.state.appliedSeq < statusesBefore[p]!.appliedSeq) return false;
    }
    return true;
  });
  await cluster.killSpeedNode(victim);
  // One partition loses its snapshot too: its new owner must rebuild from the cut.
  const withoutSnapshot = owned[0]!;
  await snapshots.remove(withoutSnapshot);
  const afterKill = events(600, 200);
  all.push(...afterKill);
  await cluster.ingest.publishBatch("pageviews", afterKill);

  // The survivor takes the victim's partitions once its heartbeats stop.
  const survivor = [...cluster.speedNodes.keys()][0]!;
  await waitFor("the survivor to take the victim's partitions", () =>
    cluster.roles.coordinator!.assignments().every((a) => a.node === survivor) ? true : undefined,
  );
  let statuses = await cluster.waitForSpeedCaughtUp();
  for (const p of owned) {
    const s = statuses[p]!;
    assert.equal(s.node, survivor);
    assert.ok(s.generation >= 2, `partition ${p} has a new generation`);
    assert.equal(s.restoredFrom.kind, p === withoutSnapshot ? "cut" : "snapshot", `partition ${p} restored from ${JSON.stringify(s.restoredFrom)}`);
  }
  await assertExact();

  // A new node joins: the assignment rebalances, and the moved actors are exact too.
  const replacement = await cluster.addSpeedNode("replacement");
  await waitFor("the replacement to own half the partitions", () =>
    cluster.roles.coordinator!.assignments().filter((a) => a.node === replacement.nodeId).length === cluster.cfg.partitions / 2 ? true : undefined,
  );
  statuses = await cluster.waitForSpeedCaughtUp();
  assert.equal(statuses.filter((s) => s.node === replacement.nodeId).length, cluster.cfg.partitions / 2);
  await assertExact();

  // And the next batch run takes everything over exactly.
  const wm = await cluster.roles.coordinator!.runNow();
  await cluster.waitForSpeedCaughtUp();
  await waitFor("actors to apply the watermark", async () => (await cluster.speedStatuses()).every((s) => s.watermarkRun >= wm.run));
  await assertExact();
});
