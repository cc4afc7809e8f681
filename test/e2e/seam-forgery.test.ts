/**
 * Defence in depth at the seam (issue #13): a raw NATS client that can write the stream and the
 * watermark bucket must not make any answer wrong.
 *  - Forged barriers on every partition (the next real run's number, as in the attack that made
 *    events count twice for good, and a huge one that would have put the archiver's progress far
 *    ahead): every answer stays equal to an independent recount through more events and batch
 *    runs, both readers count what they ignored, and the archiver's progress names only real runs.
 *  - Forged watermarks (run 1000000; a real run's watermark with a huge epoch): serving keeps
 *    answering exactly at the last good run and reports the refusal in status, speed actors keep
 *    their segments, the coordinator's runs fail saying how to repair, `lambdactl watermark
 *    rollback` repairs it and the next run publishes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, type ServiceError } from "@grpc/grpc-js";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { AdminServiceClient, type GetStatusResponse } from "../../src/gen/lambda/v1/admin.js";
import type { Watermark } from "../../src/core/watermark.js";
import { decode, encode } from "../../src/nats/codec.js";
import { partitionKey, WATERMARK_KEY } from "../../src/nats/names.js";
import { startTestCluster, type TestCluster } from "../harness/cluster.js";
import { lambdactl } from "../harness/cli.js";
import { getWatermark, query } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 5, 8, 12, 0, 0);
const ARTICLES = 7;

/** Ingests fresh events and keeps the recount: every id once, per article. */
function workload(cluster: TestCluster) {
  const perArticle = new Map<string, number>();
  let n = 0;
  return {
    async ingest(count: number) {
      const batch = Array.from({ length: count }, () => {
        const i = n++;
        return { id: `f-${i}`, article_id: `a-${i % ARTICLES}`, user_id: "u", ts: T0 + (i % 50) * MINUTE };
      });
      await cluster.ingest.publishBatch("pageviews", batch);
      for (const e of batch) perArticle.set(e.article_id, (perArticle.get(e.article_id) ?? 0) + 1);
      await cluster.waitForSpeedCaughtUp();
    },
    /** Every article's answer equals the recount, answered at run `run`. */
    async assertExact(label: string, run: number) {
      for (let k = 0; k < ARTICLES; k++) {
        const r = await query(cluster.grpc, "article_views", `a-${k}`, T0 - MINUTE, T0 + 60 * MINUTE);
        assert.equal(r.watermarkRun, run, `${label}: a-${k} answered at run ${r.watermarkRun}, expected ${run}`);
        assert.equal(r.total, perArticle.get(`a-${k}`) ?? 0, `${label}: a-${k} at run ${r.watermarkRun}: batch ${r.batchPart} + speed ${r.speedPart}`);
      }
    },
  };
}

function admin(cluster: TestCluster) {
  const c = new AdminServiceClient(cluster.roles.serving!.address, credentials.createInsecure());
  return {
    close: () => c.close(),
    status: () => new Promise<GetStatusResponse>((resolve, reject) => c.getStatus({}, (err: ServiceError | null, r: GetStatusResponse) => (err ? reject(err) : resolve(r)))),
  };
}

const waitServingAt = (cluster: TestCluster, run: number) => waitFor(`serving at run ${run}`, async () => (await getWatermark(cluster.grpc)).watermark?.run === run);

test("forged barriers on every partition: every answer equals the recount, the ignored barriers are counted", { timeout: 240_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 3, speedNodes: 2 });
  const w = workload(cluster);
  const js = jetstream(cluster.nc);
  const forge = async (barrier: Record<string, unknown>) => {
    for (let p = 0; p < cluster.cfg.partitions; p++) await js.publish(cluster.names.eventSubject(p), encode(barrier));
  };

  await w.ingest(150);
  await cluster.roles.coordinator!.runNow();
  await waitServingAt(cluster, 1);
  // The attack of the issue: the next run's number, no epoch. And a far-future run with an epoch.
  await forge({ k: "b", r: 2 });
  await w.ingest(120);
  await forge({ k: "b", r: 1_000_000, e: 1 });
  await w.ingest(80);
  await w.assertExact("after the forged barriers", 1);

  for (const [run, more] of [[2, 90], [3, 60]] as const) {
    const published = await cluster.roles.coordinator!.runNow();
    assert.equal(published.run, run);
    await waitServingAt(cluster, run);
    await cluster.waitForSpeedCaughtUp();
    await w.assertExact(`at run ${run}`, run);
    await w.ingest(more);
    await w.assertExact(`at run ${run} with more events`, run);
  }

  // Both readers ignored both forged barriers of every partition. An actor restored since counts
  // only what it read again, so the exact count is asserted for the actors that ran throughout.
  const statuses = await cluster.speedStatuses();
  const throughout = statuses.filter((s) => s.restoredFrom.kind === "start");
  assert.ok(throughout.length > 0, `no actor ran throughout: ${JSON.stringify(statuses.map((s) => s.restoredFrom))}`);
  for (const s of throughout) assert.equal(s.ignoredBarriers, 2, `partition ${s.partition}`);
  assert.equal(cluster.roles.archiver!.stats().barriersIgnored, 2 * cluster.cfg.partitions);
  // The archiver's progress names the real runs only: a forged run 1000000 there would let a batch run skip events.
  const progress = await new Kvm(cluster.nc).open(cluster.names.archiverBucket);
  for (let p = 0; p < cluster.cfg.partitions; p++) {
    const e = await progress.get(partitionKey(p));
    assert.ok(e, `no archiver progress for partition ${p}`);
    assert.equal(decode<{ run: number }>(e.value).run, 3, `archiver progress of partition ${p}`);
  }
});

test("a forged watermark (run 1000000, then a huge epoch): answers stay exact, serving reports it, lambdactl watermark rollback repairs it", { timeout: 240_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 3, speedNodes: 2 });
  const w = workload(cluster);
  const a = admin(cluster);
  const dir = mkdtempSync(join(tmpdir(), "seam-forgery-"));
  const rollback = (run: number) => lambdactl(["watermark", "rollback", String(run), "--grpc", cluster.roles.serving!.address], { cwd: dir });
  const kv = await new Kvm(cluster.nc).open(cluster.names.watermarkBucket);
  const forge = (v: Watermark) => kv.put(WATERMARK_KEY, encode(v));
  try {
    await w.ingest(200);
    await cluster.roles.coordinator!.runNow();
    await w.ingest(100);
    const w2 = await cluster.roles.coordinator!.runNow();
    await waitServingAt(cluster, 2);
    await w.ingest(50);
    await w.assertExact("before the forgery", 2);

    // Run 1000000: no run wrote it and no view holds it.
    await forge({ ...w2, run: 1_000_000, viewVersion: 1_000_000, publishedAtMs: Date.now() });
    const refused = await waitFor("serving to report the refused watermark", async () => (await a.status()).watermarkRefused);
    assert.equal(refused.run, 1_000_000);
    assert.match(refused.reason, /run 1000000 is not in the run history/);
    assert.equal((await a.status()).watermarkRun, 2);
    await w.ingest(40);
    await w.assertExact("with watermark 1000000 forged", 2);
    assert.ok((await cluster.speedStatuses()).every((s) => s.watermarkRun === 2), "speed actors did not apply the forged watermark");
    await assert.rejects(cluster.roles.coordinator!.runNow(), /already at run 1000000.*no batch run published that watermark.*lambdactl watermark rollback/s);

    const repaired = await rollback(2);
    assert.equal(repaired.code, 0, `lambdactl watermark rollback 2: ${repaired.stdout}${repaired.stderr}`);
    await waitFor("the refusal to clear", async () => (await a.status()).watermarkRefused === undefined);
    const w4 = await cluster.roles.coordinator!.runNow();
    assert.equal(w4.run, 4, "run 3 failed on the forged watermark; the next run publishes");
    await waitServingAt(cluster, 4);
    await cluster.waitForSpeedCaughtUp();
    await w.assertExact("after the repair and run 4", 4);

    // A real run's watermark with an epoch no leader held: it would fence every leader out.
    await forge({ ...w4, epoch: 1e12, publishedAtMs: Date.now() });
    const fenced = await waitFor("serving to refuse the huge epoch", async () => (await a.status()).watermarkRefused);
    assert.equal(fenced.run, 4);
    assert.match(fenced.reason, /carries leader epoch 1000000000000, but no coordinator has led with an epoch above/);
    await w.ingest(30);
    await w.assertExact("with a huge epoch forged", 4);
    await assert.rejects(cluster.roles.coordinator!.runNow(), /written by coordinator leader epoch 1000000000000/);
    assert.notEqual(cluster.roles.coordinator!.leaderEpoch(), null, "the coordinator still leads");

    const again = await rollback(4);
    assert.equal(again.code, 0, `lambdactl watermark rollback 4: ${again.stdout}${again.stderr}`);
    await waitFor("the refusal to clear", async () => (await a.status()).watermarkRefused === undefined);
    const w6 = await cluster.roles.coordinator!.runNow();
    assert.equal(w6.run, 6);
    await waitServingAt(cluster, 6);
    await cluster.waitForSpeedCaughtUp();
    await w.assertExact("after the second repair and run 6", 6);
  } finally {
    a.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
