/**
 * Watermark operations against a real cluster, through the AdminService:
 * history, diff, verify (exact after random ingest with duplicates; reports
 * damage), rollback and forward again with every answer equal to the recount,
 * status numbers equal to what the stream says, and bad arguments refused.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { jetstream } from "@nats-io/jetstream";
import { AdminServiceClient, type DiffRunsResponse, type GetStatusResponse, type ListRunsResponse, type RollbackResponse, type VerifyResponse } from "../../src/gen/lambda/v1/admin.js";
import { masterTable } from "../../src/ch/schema.js";
import { partitionOf, validateEvent } from "../../src/core/events.js";
import { encodeEvent } from "../../src/nats/codec.js";
import { partitionHeads } from "../../src/nats/setup.js";
import { startTestCluster, type TestCluster } from "../harness/cluster.js";
import { getWatermark, query } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 5, 8, 12, 0, 0);

type Unary<Req, Res> = (req: Req, cb: (err: ServiceError | null, res: Res) => void) => unknown;
const call = <Req, Res>(fn: Unary<Req, Res>, req: Req): Promise<Res> => new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(err) : resolve(res))));

function admin(cluster: TestCluster) {
  const c = new AdminServiceClient(cluster.roles.serving!.address, credentials.createInsecure());
  return {
    client: c,
    listRuns: (limit = 0) => call<{ limit: number }, ListRunsResponse>(c.listRuns.bind(c), { limit }),
    diff: (fromRun: number, toRun: number) => call<{ fromRun: number; toRun: number }, DiffRunsResponse>(c.diffRuns.bind(c), { fromRun, toRun }),
    verify: (run = 0) => call<{ run: number }, VerifyResponse>(c.verify.bind(c), { run }),
    rollback: (run: number) => call<{ run: number }, RollbackResponse>(c.rollback.bind(c), { run }),
    status: () => call<Record<string, never>, GetStatusResponse>(c.getStatus.bind(c), {}),
  };
}

const events = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `w-${from + i}`, article_id: `a-${(from + i) % 9}`, user_id: "u", ts: T0 + ((from + i) % 40) * MINUTE }));

test("history, diff, verify, rollback and status through the AdminService", { timeout: 180_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 3, speedNodes: 2 });
  const a = admin(cluster);
  const all: { id: string; article_id: string }[] = [];
  const ingest = async (from: number, n: number) => {
    const batch = events(from, n);
    await cluster.ingest.publishBatch("pageviews", batch);
    all.push(...batch);
    await cluster.waitForSpeedCaughtUp();
  };
  const assertExact = async (label: string) => {
    for (let k = 0; k < 9; k++) {
      const r = await query(cluster.grpc, "article_views", `a-${k}`, T0 - MINUTE, T0 + 60 * MINUTE);
      const expected = all.filter((e) => e.article_id === `a-${k}`).length;
      assert.equal(r.total, expected, `${label}: a-${k} at run ${r.watermarkRun}: batch ${r.batchPart} + speed ${r.speedPart}`);
    }
  };

  await ingest(0, 300);
  const w1 = await cluster.roles.coordinator!.runNow();
  await ingest(300, 200);
  const w2 = await cluster.roles.coordinator!.runNow();
  await ingest(500, 100);
  await waitFor("serving at run 2", async () => (await getWatermark(cluster.grpc)).watermark?.run === 2);

  // History: newest first, both published, the cuts runNow returned.
  const runs = (await a.listRuns()).runs;
  assert.deepEqual(runs.map((r) => [r.run, r.outcome]), [[2, "published"], [1, "published"]]);
  assert.deepEqual(runs[1]!.cuts.map((c) => c.seq), w1.cuts);
  assert.equal(runs[0]!.eventsCovered, 500);
  assert.ok(runs[0]!.recomputeMs > 0 && runs[0]!.startedAt && runs[0]!.finishedAt);

  // Diff: the 200 events published between the runs, per partition; article_views changed.
  const d = await a.diff(1, 2);
  assert.equal(d.partitions.reduce((n, p) => n + p.events, 0), 200);
  for (const p of d.partitions) {
    assert.equal(p.fromCut, w1.cuts[p.partition]);
    assert.equal(p.toCut, w2.cuts[p.partition]);
    assert.equal(p.positions, p.events + 1, "the events and run 2's barrier");
  }
  assert.ok(d.metrics.find((m) => m.metric === "article_views")!.windowsChanged > 0);

  // Verify: exact, with duplicates that reached the stream too.
  const js = jetstream(cluster.nc);
  const source = cluster.catalog.sources.get("pageviews")!;
  for (const e of events(0, 20)) {
    const n = validateEvent(cluster.catalog, "pageviews", e);
    await js.publish(cluster.names.eventSubject(partitionOf(source, n, cluster.cfg.partitions)), encodeEvent(n), { msgID: `copy:${e.id}` });
  }
  await cluster.waitForSpeedCaughtUp();
  let v = await a.verify();
  assert.equal(v.run, 2);
  assert.ok(v.exact, JSON.stringify(v));
  assert.equal(v.batchEventsRecounted, 500);
  assert.equal(v.partitions.reduce((n, p) => n + p.aboveCutHeld, 0), 100);

  // Status: stream heads as NATS reports them; members of every role.
  const s = await a.status();
  const heads = await partitionHeads(cluster.nc, cluster.names, cluster.cfg.partitions);
  assert.deepEqual(s.partitions.map((p) => p.streamHead), heads);
  assert.deepEqual(s.partitions.map((p) => p.speedLag), heads.map(() => 0));
  assert.deepEqual([...new Set(s.members.map((m) => m.role))].sort(), ["archiver", "coordinator", "executor", "serving", "speed"]);
  assert.equal(s.watermarkRun, 2);

  // Bad arguments.
  const code = async (p: Promise<unknown>) => ((await p.then(() => null, (e: ServiceError) => e))?.code ?? status.OK);
  assert.equal(await code(a.diff(2, 1)), status.INVALID_ARGUMENT);
  assert.equal(await code(a.diff(1, 99)), status.INVALID_ARGUMENT);
  assert.equal(await code(a.verify(1)), status.INVALID_ARGUMENT);
  assert.equal(await code(a.rollback(2)), status.FAILED_PRECONDITION);
  assert.equal(await code(a.rollback(99)), status.FAILED_PRECONDITION);

  // Rollback to run 1: serving answers at 1, actors rebuild above cut 1, answers stay exact.
  const rb = await a.rollback(1);
  assert.equal(rb.rolledBackFrom, 2);
  assert.equal(rb.watermark!.run, 1);
  await waitFor("serving at run 1", async () => (await getWatermark(cluster.grpc)).watermark?.run === 1);
  await waitFor("actors rebuilt at run 1", async () => (await cluster.speedStatuses()).every((st) => st.watermarkRun === 1 && st.restoredFrom.kind === "cut"));
  await cluster.waitForSpeedCaughtUp();
  await assertExact("after rollback to 1");
  v = await a.verify();
  assert.equal(v.run, 1);
  assert.ok(v.exact, JSON.stringify(v));
  assert.equal((await a.listRuns()).runs.find((r) => r.run === 2)!.outcome, "rolled_back");

  // Forward again.
  const w3 = await cluster.roles.coordinator!.runNow();
  assert.equal(w3.run, 3);
  await waitFor("serving at run 3", async () => (await getWatermark(cluster.grpc)).watermark?.run === 3);
  await cluster.waitForSpeedCaughtUp();
  await assertExact("after run 3");
  assert.ok((await a.verify()).exact);

  // Damage: archived rows disappear below the cut; verify says so.
  await cluster.roles.ch!.client.command({ query: `DELETE FROM ${masterTable(cluster.cfg.database, "pageviews")} WHERE _id IN ('w-1', 'w-2', 'w-3')`, clickhouse_settings: { mutations_sync: "2" } });
  v = await a.verify();
  assert.equal(v.exact, false);
  assert.equal(v.batchEventsReported - v.batchEventsRecounted, 3);

  // Damage above the cut: events the speed actors hold vanish from the master dataset.
  await ingest(600, 60);
  const archived = async () =>
    Number((await (await cluster.roles.ch!.client.query({ query: `SELECT count() AS n FROM ${masterTable(cluster.cfg.database, "pageviews")} WHERE _id IN ('w-600', 'w-601')`, format: "JSONEachRow" })).json<{ n: number }>())[0]!.n);
  await waitFor("w-600 and w-601 archived", async () => (await archived()) === 2);
  await cluster.roles.ch!.client.command({ query: `DELETE FROM ${masterTable(cluster.cfg.database, "pageviews")} WHERE _id IN ('w-600', 'w-601')`, clickhouse_settings: { mutations_sync: "2" } });
  v = await a.verify();
  assert.equal(v.exact, false);
  assert.equal(v.partitions.reduce((n, p) => n + p.overlaps, 0), 2, JSON.stringify(v.partitions));
  assert.equal(v.partitions.reduce((n, p) => n + p.gaps, 0), 0);
  a.client.close();
});
