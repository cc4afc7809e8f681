/**
 * Stream retention against a real cluster (nats-server 2.9 and chDB): after each run the stream
 * holds exactly the positions the rule keeps, recounted here from what the test published (each
 * event's sequence from its publish ack, each barrier's from the run's cuts), not from the
 * coordinator's own plan; rollback to every kept run, and speed actors rebuilt from the cut after
 * the purges, answer exactly; with retention off nothing goes, and the record says what would.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, type ServiceError } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import { AdminServiceClient, type RollbackResponse, type VerifyResponse } from "../../src/gen/lambda/v1/admin.js";
import type { Watermark } from "../../src/core/watermark.js";
import { openBuckets } from "../../src/nats/setup.js";
import { readRetention } from "../../src/nats/stream_retention.js";
import type { StatusJson } from "../../src/cli/commands/status.js";
import { lambdactl, parseJson } from "../harness/cli.js";
import { startTestCluster, type TestCluster } from "../harness/cluster.js";
import { getWatermark, query } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 5, 8, 12, 0, 0);
const PARTITIONS = 3;
const HORIZON = 4;
/** What a rebuild replays before its cut: horizon × partitions (actors/host.ts). */
const WARM_UP = HORIZON * PARTITIONS;
const KEPT = 3;
const ARTICLES = 7;

type Unary<Req, Res> = (req: Req, cb: (err: ServiceError | null, res: Res) => void) => unknown;
const call = <Req, Res>(fn: Unary<Req, Res>, req: Req): Promise<Res> => new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(err) : resolve(res))));

/** A cluster, the positions the test put on each partition subject, and the events it published. */
async function harness(cluster: TestCluster) {
  const positions: number[][] = Array.from({ length: PARTITIONS }, () => []);
  const all: { id: string; article_id: string }[] = [];
  const watermarks: Watermark[] = [];
  const jsm = await jetstreamManager(cluster.nc);
  let next = 0;
  return {
    positions,
    watermarks,
    async ingest(n: number) {
      for (let i = 0; i < n; i++, next++) {
        const e = { id: `r-${next}`, article_id: `a-${next % ARTICLES}`, user_id: "u", ts: T0 + (next % 50) * MINUTE };
        const ack = await cluster.ingest.publish("pageviews", e);
        assert.equal(ack.duplicate, false);
        positions[ack.partition]!.push(ack.seq);
        all.push(e);
      }
      await cluster.waitForSpeedCaughtUp();
    },
    async run() {
      const w = await cluster.roles.coordinator!.runNow();
      w.cuts.forEach((seq, p) => positions[p]!.push(seq));
      watermarks[w.run] = w;
      return w;
    },
    /** Messages per partition subject, as the server counts them. */
    async stored(): Promise<number[]> {
      const info = await jsm.streams.info(cluster.names.eventStream, { subjects_filter: `${cluster.names.prefix}.events.>` });
      const subjects = info.state.subjects ?? {};
      return Array.from({ length: PARTITIONS }, (_, p) => subjects[cluster.names.eventSubject(p)] ?? 0);
    },
    /** Whether each of `seqs` is still in the stream. */
    async present(seqs: readonly number[]): Promise<boolean[]> {
      return Promise.all(seqs.map(async (seq) => (await jsm.streams.getMessage(cluster.names.eventStream, { seq })) !== null));
    },
    async assertExact(label: string) {
      for (let k = 0; k < ARTICLES; k++) {
        const r = await query(cluster.grpc, "article_views", `a-${k}`, T0 - MINUTE, T0 + 60 * MINUTE);
        const expected = all.filter((e) => e.article_id === `a-${k}`).length;
        assert.equal(r.total, expected, `${label}: a-${k} at run ${r.watermarkRun}: batch ${r.batchPart} + speed ${r.speedPart}`);
      }
    },
  };
}

/**
 * `lambdactl status` (JSON and table) against the cluster: the stream's size as the server counts
 * it, and the retention record as the coordinator stored it.
 */
async function assertStatusShows(cluster: TestCluster, record: NonNullable<Awaited<ReturnType<typeof readRetention>>>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "lambdactl-retention-"));
  try {
    const args = ["--grpc", cluster.roles.serving!.address, "--nats-url", cluster.nats.url, "--prefix", cluster.cfg.prefix];
    const r = await lambdactl(["status", "--json", ...args], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const s = parseJson<StatusJson>(r);
    const info = await (await jetstreamManager(cluster.nc)).streams.info(cluster.names.eventStream);
    assert.equal(s.streamProblem, null);
    assert.deepEqual({ messages: s.stream?.messages, bytes: s.stream?.bytes }, { messages: info.state.messages, bytes: info.state.bytes }, "status: the stream's size");
    const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
    const shown = s.stream!.retention!;
    assert.deepEqual(
      { mode: shown.mode, run: shown.run, keptFrom: shown.keptFrom, purged: shown.purged, nextRunFrees: shown.nextRunFrees, problem: shown.problem },
      { mode: record.mode, run: record.run, keptFrom: record.keepFrom, purged: sum(record.purged), nextRunFrees: sum(record.nextFrees), problem: record.problem },
      "status: the retention record",
    );
    const text = await lambdactl(["status", ...args], { cwd: dir });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^stream\\s+${info.state.messages} messages, `, "m"));
    const retentionLine =
      record.mode === "off"
        ? `^retention\\s+off \\(LAMBDA_STREAM_RETENTION\\); the next run would free ${sum(record.nextFrees)} messages`
        : `^retention\\s+${record.mode}: purged ${sum(record.purged)} messages after run ${record.run}; the next run frees ${sum(record.nextFrees)} messages`;
    assert.match(text.stdout, new RegExp(retentionLine, "m"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The rule, recomputed here: from the oldest kept run's cut minus the warm-up (every run here publishes). */
function keepFrom(cutsOf: (run: number) => readonly number[], oldestKept: number): number[] {
  return Array.from({ length: PARTITIONS }, (_, p) => Math.max(1, cutsOf(oldestKept)[p]! - WARM_UP));
}

test("the stream keeps what the oldest kept view needs; rollback to every kept run and a rebuild from the cut stay exact", { timeout: 240_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: PARTITIONS, speedNodes: 2, config: { dedupeHorizonIds: HORIZON, viewVersionsKept: KEPT } });
  const h = await harness(cluster);
  const admin = new AdminServiceClient(cluster.roles.serving!.address, credentials.createInsecure());
  const verify = () => call<{ run: number }, VerifyResponse>(admin.verify.bind(admin), { run: 0 });
  const rollback = (run: number) => call<{ run: number }, RollbackResponse>(admin.rollback.bind(admin), { run });
  const buckets = await openBuckets(cluster.nc, cluster.names);
  const cutsOf = (run: number) => h.watermarks[run]!.cuts;

  /** After run `last`: exactly the positions at or above the rule's point are stored, the rest gone. */
  const assertStreamHolds = async (last: number, oldestKept: number) => {
    const from = keepFrom(cutsOf, oldestKept);
    const kept = h.positions.map((seqs, p) => seqs.filter((s) => s >= from[p]!));
    const gone = h.positions.map((seqs, p) => seqs.filter((s) => s < from[p]!));
    assert.deepEqual(await h.stored(), kept.map((k) => k.length), `after run ${last}: messages per partition subject (keeping from ${from})`);
    for (let p = 0; p < PARTITIONS; p++) {
      assert.ok((await h.present(kept[p]!)).every(Boolean), `after run ${last}: partition ${p} keeps every position from ${from[p]}`);
      assert.ok((await h.present(gone[p]!)).every((x) => !x), `after run ${last}: partition ${p} holds nothing below ${from[p]}`);
    }
    const record = (await readRetention(buckets.coordinator))!;
    assert.equal(record.run, last);
    assert.deepEqual(record.keepFrom, from);
    assert.equal(record.problem, null);
    return gone.reduce((n, g) => n + g.length, 0);
  };

  let goneBefore = 0;
  for (let run = 1; run <= 5; run++) {
    await h.ingest(40);
    await h.run();
    const gone = await assertStreamHolds(run, Math.max(1, run - KEPT + 1));
    const record = (await readRetention(buckets.coordinator))!;
    assert.equal(record.purged.reduce((a, b) => a + b, 0), gone - goneBefore, `run ${run} purged what fell below the point since the last run`);
    goneBefore = gone;
  }
  assert.ok(goneBefore > 0, "something was purged");
  await assertStatusShows(cluster, (await readRetention(buckets.coordinator))!);
  await h.ingest(30);
  await waitFor("serving at run 5", async () => (await getWatermark(cluster.grpc)).watermark?.run === 5);
  await h.assertExact("at run 5");

  // Rollback to each kept run, newest first; actors rebuild from its cut over the purged stream.
  for (const target of [4, 3]) {
    const rb = await rollback(target);
    assert.equal(rb.watermark!.run, target);
    await waitFor(`serving at run ${target}`, async () => (await getWatermark(cluster.grpc)).watermark?.run === target);
    await waitFor(`actors rebuilt at run ${target}`, async () => (await cluster.speedStatuses()).every((s) => s.watermarkRun === target && s.restoredFrom.kind === "cut"));
    await cluster.waitForSpeedCaughtUp();
    await h.assertExact(`after rollback to ${target}`);
    const v = await verify();
    assert.equal(v.run, target);
    assert.ok(v.exact, JSON.stringify(v));
  }
  // Run 2's views are gone: no rollback there.
  await assert.rejects(rollback(2), /batch views are gone/);

  // Forward: run 6 keeps from run 4 (rolled back, still a rollback target).
  await h.run();
  await assertStreamHolds(6, 4);
  await waitFor("serving at run 6", async () => (await getWatermark(cluster.grpc)).watermark?.run === 6);
  await cluster.waitForSpeedCaughtUp();
  await h.assertExact("at run 6");

  // Every speed node gone and every snapshot with them: new actors rebuild from cut 6 alone.
  for (const id of [...cluster.speedNodes.keys()]) await cluster.killSpeedNode(id);
  const jsm = await jetstreamManager(cluster.nc);
  await jsm.streams.purge(`KV_${cluster.names.snapshotBucket}`);
  await cluster.addSpeedNode(`${cluster.names.prefix}-speed-new`);
  await waitFor("actors rebuilt from the cut on the new node", async () => (await cluster.speedStatuses()).every((s) => s.restoredFrom.kind === "cut" && s.watermarkRun === 6));
  await cluster.waitForSpeedCaughtUp();
  await h.ingest(20);
  await h.assertExact("after a rebuild from the cut");
  const v = await verify();
  assert.ok(v.exact, JSON.stringify(v));
  admin.close();
});

test("with retention off nothing is purged, and the record says what the next run would free", { timeout: 120_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: PARTITIONS, speedNodes: 1, config: { dedupeHorizonIds: HORIZON, viewVersionsKept: 2, streamRetention: "off" } });
  const h = await harness(cluster);
  const buckets = await openBuckets(cluster.nc, cluster.names);
  for (let run = 1; run <= 4; run++) {
    await h.ingest(30);
    await h.run();
  }
  assert.deepEqual(await h.stored(), h.positions.map((s) => s.length), "every position the test published is still there");
  const record = (await readRetention(buckets.coordinator))!;
  assert.equal(record.mode, "off");
  assert.deepEqual(record.purged, [0, 0, 0]);
  // After run 5 (if it publishes) views 4..5 are kept: everything below cut 4 − warm-up would go.
  const next = keepFrom((r) => h.watermarks[r]!.cuts, 4);
  assert.deepEqual(record.nextFrees, h.positions.map((seqs, p) => seqs.filter((s) => s < next[p]!).length));
  assert.ok(record.nextFrees.some((n) => n > 0));
  await assertStatusShows(cluster, record);
});
