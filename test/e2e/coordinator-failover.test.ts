/**
 * Coordinator high availability with every role in its own process: three
 * coordinator processes (LAMBDA_ROLES=coordinator, no ClickHouse), one process
 * owning chDB (archiver, batch executor, serving) and a speed node, on a real
 * nats-server. Batch runs go on all the time (a short interval).
 *
 * - The leader is SIGKILLed in the middle of a run (between its barriers and its
 *   watermark): a standby takes over, gives that run an outcome (abandoned, or
 *   published if its watermark made it), and publishes the next runs.
 * - The leader is SIGSTOPped in the middle of a run, past its lease: a standby
 *   takes over and publishes; then the old one is continued. Its writes are
 *   refused (its run ends abandoned, never published), the watermark and every
 *   epoch only move forward, and it rejoins as a standby.
 *
 * After each, every answer equals a recount of the ingested events, and no run
 * number ever had two watermarks.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials } from "@grpc/grpc-js";
import { createAdminClient } from "../../src/cli/admin_grpc.js";
import { statusJson } from "../../src/cli/commands/status.js";
import { readCatalogFile } from "../../src/core/catalog.js";
import { silentLogger } from "../../src/core/logger.js";
import type { Assignment, RunRecord } from "../../src/core/records.js";
import type { Watermark } from "../../src/core/watermark.js";
import { parseWatermark } from "../../src/core/watermark.js";
import { LambdaServiceClient } from "../../src/gen/lambda/v1/serving.js";
import { createIngest } from "../../src/ingest/index.js";
import { spawnNode, type ChildNode } from "../../src/main/spawn.js";
import { connectNats } from "../../src/nats/connect.js";
import { watchAssignments } from "../../src/nats/assignments_store.js";
import { readValue, watchValues } from "../../src/nats/kv.js";
import { parseLeaderRecord, type LeaderRecord } from "../../src/nats/leadership.js";
import { LEADER_KEY, namesFor, WATERMARK_KEY } from "../../src/nats/names.js";
import { parseRunRecord } from "../../src/nats/run_history.js";
import { openBuckets } from "../../src/nats/setup.js";
import { fixedCatalog } from "../../src/nats/catalog_store.js";
import { query } from "../harness/grpc.js";
import { startTestNats } from "../harness/nats.js";
import { waitFor } from "../harness/wait.js";

const CATALOG = join(process.cwd(), "catalog/catalog.json");
const LEASE_MS = 1_000;
const T0 = Date.UTC(2026, 5, 8, 12, 0, 0);
const ARTICLES = ["a-0", "a-1", "a-2", "a-3", "a-4"];

/** A cluster of role processes, and what the test saw of the watermark bucket. */
/**
 * Runs a coordinator with a clock ten times fast: wall clock and monotonic clock, so its timers fire
 * 10x early too. libfaketime preloaded into node itself (not the `faketime` wrapper, which would
 * stand between this test and the process it signals).
 */
const LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const FAST_CLOCK = { LD_PRELOAD: LIBFAKETIME, FAKETIME: "+0 x10" };

/** @param fastClock coordinators that run with FAST_CLOCK. */
async function startHaCluster(name: string, fastClock: readonly string[] = []) {
  const nats = await startTestNats();
  const dir = mkdtempSync(join(tmpdir(), `lambda-ha-${name}-`));
  const prefix = `ha${name}${process.pid}`;
  const names = namesFor(prefix);
  const env = (roles: string): Record<string, string> => ({
    LAMBDA_NATS_URL: nats.url,
    LAMBDA_PREFIX: prefix,
    LAMBDA_DATABASE: prefix,
    LAMBDA_PARTITIONS: "2",
    LAMBDA_CATALOG: CATALOG,
    LAMBDA_CHDB_PATH: join(dir, "chdb"),
    LAMBDA_ROLES: roles,
    LAMBDA_GRPC_HOST: "127.0.0.1",
    LAMBDA_GRPC_PORT: "0",
    LAMBDA_BATCH_INTERVAL_MS: "300",
    LAMBDA_HEARTBEAT_INTERVAL_MS: "200",
    LAMBDA_NODE_TIMEOUT_MS: "1500",
    LAMBDA_LEADER_LEASE_MS: String(LEASE_MS),
    LAMBDA_LEADER_RENEW_MS: "200",
    // A run waits for the archiver's flush a while: the window the faults aim at.
    LAMBDA_ARCHIVER_FLUSH_INTERVAL_MS: "400",
    LAMBDA_LOG_LEVEL: "error",
  });
  const nodes = new Map<string, ChildNode>();
  const nc = await connectNats(nats.url, `ha-test-${name}`);
  const buckets = await (async () => {
    const data = spawnNode(`${prefix}-data`, env("archiver,executor,serving"), "inherit");
    nodes.set("data", data);
    const { grpc } = await data.ready;
    return { grpc: grpc!, b: await openBuckets(nc, names) };
  })();
  const speed = spawnNode(`${prefix}-speed`, env("speed"), "inherit");
  nodes.set("speed", speed);
  const coordinator = (c: string) => nodes.set(c, spawnNode(c, { ...env("coordinator"), ...(fastClock.includes(c) ? FAST_CLOCK : {}) }, "inherit")).get(c)!;
  // c-1 first: it is ready once it joined the election, so it leads and the others stand by.
  await coordinator("c-1").ready;
  for (const c of ["c-2", "c-3"]) coordinator(c);
  await Promise.all([...nodes.values()].map((n) => n.ready));

  // Every watermark value and run record the bucket ever held, as written.
  const watermarks: Watermark[] = [];
  const runRecords: RunRecord[] = [];
  const watch = await watchValues(buckets.b.watermark, {
    key: ">",
    parse: (v) => v,
    what: "the watermark bucket (test)",
    log: silentLogger,
    onValue: (key, v) => {
      if (key === WATERMARK_KEY) watermarks.push(parseWatermark(v));
      else runRecords.push(parseRunRecord(v));
    },
  });
  // Every change of owner or generation of a partition (an epoch stamp alone is no move).
  const moves: Assignment[] = [];
  const owners = new Map<number, Assignment>();
  const assignmentWatch = await watchAssignments(buckets.b.assignments, silentLogger, (a) => {
    const last = owners.get(a.partition);
    if (!last || last.node !== a.node || last.generation !== a.generation) moves.push(a);
    owners.set(a.partition, a);
  });
  const leaders: LeaderRecord[] = [];
  const leaderWatch = await watchValues(buckets.b.coordinator, { key: LEADER_KEY, parse: parseLeaderRecord, what: "leader (test)", log: silentLogger, onValue: (_k, r) => leaders.push(r) });

  const catalog = readCatalogFile(CATALOG).catalog;
  const ingest = createIngest({ nc, catalog, catalogFeed: fixedCatalog(catalog), names, partitions: 2, log: silentLogger });
  const grpc = new LambdaServiceClient(buckets.grpc, credentials.createInsecure());
  const admin = createAdminClient({ address: { value: buckets.grpc, from: "the test" }, tls: null, token: null }, { timeoutMs: 5_000 });
  let sent = 0;
  const counts = new Map<string, number>();
  /** Ingests `n` page views and remembers them for the recount. */
  const publish = async (n: number) => {
    const events = Array.from({ length: n }, (_, i) => {
      const article = ARTICLES[(sent + i) % ARTICLES.length]!;
      counts.set(article, (counts.get(article) ?? 0) + 1);
      return { id: `${name}-${sent + i}`, article_id: article, user_id: `u-${i % 7}`, ts: T0 + (sent + i) * 1_000 };
    });
    sent += n;
    await ingest.publishBatch("pageviews", events);
  };
  const leader = async () => (await readValue(buckets.b.coordinator, LEADER_KEY, parseLeaderRecord))?.value ?? null;
  const currentRun = () => watermarks.at(-1)?.run ?? 0;
  /** Waits for answers of every article to equal the recount, at a watermark past `run`, with the speed side caught up. */
  const expectExact = async (afterRun: number) => {
    await waitFor(`every answer equal to the recount at a run after ${afterRun}`, async () => {
      for (const a of ARTICLES) {
        const r = await query(grpc, "article_views", a, T0 - 3_600_000, T0 + 86_400_000).catch(() => null);
        if (!r || r.watermarkRun <= afterRun || r.total !== counts.get(a)) return false;
      }
      return true;
    }, { timeoutMs: 30_000 });
  };
  const close = async () => {
    watch.stop();
    leaderWatch.stop();
    assignmentWatch.stop();
    grpc.close();
    admin.close();
    await Promise.all([...nodes.values()].map((n) => n.stop()));
    await nc.close();
    await nats.close();
    rmSync(dir, { recursive: true, force: true });
  };
  /** `lambdactl status --json` as the operator sees it. */
  const status = async () => statusJson(await admin.getStatus(), Date.now());
  /** Queries every article now; each total must be no smaller than the one before (events are only added). */
  const lastTotals = new Map<string, number>();
  const queryNonDecreasing = async () => {
    for (const a of ARTICLES) {
      const r = await query(grpc, "article_views", a, T0 - 3_600_000, T0 + 86_400_000);
      const before = lastTotals.get(a) ?? 0;
      assert.ok(r.total >= before, `${a}: the total went down from ${before} to ${r.total} (run ${r.watermarkRun})`);
      assert.ok(r.total <= counts.get(a)!, `${a}: ${r.total} counted, only ${counts.get(a)} sent`);
      lastTotals.set(a, r.total);
    }
  };
  return { nodes, b: buckets.b, watermarks, runRecords, leaders, moves, publish, leader, currentRun, expectExact, queryNonDecreasing, status, close };
}

type HaCluster = Awaited<ReturnType<typeof startHaCluster>>;

/** Waits for the leader to be in the middle of a run (past its barriers, before its watermark); returns the leader and the run. */
async function midRun(c: HaCluster): Promise<{ holder: string; epoch: number; run: number }> {
  return waitFor("the leader in the middle of a run", async () => {
    const l = await c.leader();
    const last = c.runRecords.at(-1);
    if (!l || !last || last.outcome !== "running" || last.phase !== "archiver_flush" || last.coordinator !== l.holder) return undefined;
    return { holder: l.holder, epoch: l.epoch, run: last.run };
  }, { timeoutMs: 20_000, intervalMs: 20 });
}

/** Invariants over everything the bucket held: one watermark per run, forward-only watermark and epochs, no run left running. */
function checkHistory(c: HaCluster, deposed: { run: number; epoch: number }) {
  const byRun = new Map<number, string>();
  for (const w of c.watermarks) {
    const cuts = JSON.stringify(w.cuts);
    const seen = byRun.get(w.run);
    assert.ok(seen === undefined || seen === cuts, `run ${w.run} had two watermarks: ${seen} and ${cuts}`);
    byRun.set(w.run, cuts);
  }
  for (let i = 1; i < c.watermarks.length; i++) {
    assert.ok(c.watermarks[i]!.run >= c.watermarks[i - 1]!.run, `the watermark went back: ${c.watermarks.map((w) => w.run).join(",")}`);
    assert.ok((c.watermarks[i]!.epoch ?? 0) >= (c.watermarks[i - 1]!.epoch ?? 0), "a watermark of an older epoch came after a newer one");
  }
  for (let i = 1; i < c.leaders.length; i++) assert.ok(c.leaders[i]!.epoch >= c.leaders[i - 1]!.epoch, "the leader epoch went back");
  const last = new Map<number, RunRecord>();
  for (const r of c.runRecords) last.set(r.run, r);
  const deposedRun = last.get(deposed.run)!;
  assert.ok(deposedRun, `run ${deposed.run} has a record`);
  if (deposedRun.outcome === "published") {
    assert.equal(byRun.has(deposed.run), true, "a run recorded published has its watermark");
  } else {
    assert.equal(deposedRun.outcome, "abandoned", `run ${deposed.run}: ${JSON.stringify(deposedRun)}`);
    assert.match(deposedRun.detail ?? "", new RegExp(`abandoned by coordinator .* at phase \\w+; coordinator .* took over with epoch \\d+`));
    assert.ok(!byRun.has(deposed.run), `the abandoned run ${deposed.run} never published a watermark`);
  }
  // Every run number up to the newest one has an outcome (none skipped, none running forever)
  // once the runs in flight have finished.
  const newest = Math.max(...last.keys());
  for (let r = 1; r < newest; r++) {
    assert.ok(last.has(r), `run ${r} has no record`);
    assert.notEqual(last.get(r)!.outcome, "running", `run ${r} still running: ${JSON.stringify(last.get(r))}`);
  }
  // Nothing the deposed leader wrote after it lost the lead: every record it wrote carries its epoch or less.
  for (const w of c.watermarks) if ((w.epoch ?? 0) === deposed.epoch) assert.ok(w.run < deposed.run, `the deposed leader published run ${w.run}`);
}

test("leader SIGKILLed mid-run: a standby takes over, records the run, publishes the next; answers exact", { timeout: 120_000 }, async () => {
  const c = await startHaCluster("kill");
  try {
    await c.publish(200);
    await c.expectExact(0);
    const before = await midRun(c);
    await c.publish(100); // above the cut of the run in flight
    await c.nodes.get(before.holder)!.kill();
    const after = await waitFor("a standby to lead", async () => {
      const l = await c.leader();
      return l && l.holder !== before.holder && l.epoch > before.epoch ? l : undefined;
    });
    await waitFor("the new leader to publish a run", () => c.watermarks.some((w) => w.epoch === after.epoch && w.run > before.run));
    await c.publish(50);
    await c.expectExact(before.run);
    checkHistory(c, before);
    // What an operator sees: the new leader with its epoch, one standby, the killed one gone; never two leaders.
    const s = await waitFor("status to show the new leader, a standby and the killed leader gone", async () => {
      const r = await c.status();
      const state = (id: string) => r.members.find((m) => m.role === "coordinator" && m.id === id)?.state;
      return state(before.holder) === "gone" && state(after.holder) === "leader" ? r : undefined;
    });
    assert.deepEqual(s.members.filter((m) => m.state === "leader").map((m) => m.id), [after.holder], "one leader");
    assert.equal(s.members.filter((m) => m.role === "coordinator" && m.state === "standby").length, 1, JSON.stringify(s.members));
    assert.equal(s.leader?.id, after.holder);
    assert.equal(s.leader?.epoch, after.epoch);
    assert.ok(s.leader!.leaseAgeS < s.leader!.leaseS, "the lease holds");
  } finally {
    await c.close();
  }
});

test("leader SIGSTOPped past its lease mid-run, then continued: its writes are refused and it rejoins as a standby", { timeout: 120_000 }, async () => {
  const c = await startHaCluster("stop");
  try {
    await c.publish(200);
    await c.expectExact(0);
    const before = await midRun(c);
    const zombie = c.nodes.get(before.holder)!;
    process.kill(zombie.pid, "SIGSTOP");
    let continued = false;
    try {
      const after = await waitFor("a standby to lead", async () => {
        const l = await c.leader();
        return l && l.holder !== before.holder && l.epoch > before.epoch ? l : undefined;
      });
      await waitFor("the new leader to publish a run", () => c.watermarks.some((w) => w.epoch === after.epoch && w.run > before.run));
      await c.publish(100);
      process.kill(zombie.pid, "SIGCONT");
      continued = true;
      // The old leader runs on with its run in flight: each write it tries is refused; it stands by.
      await waitFor("the old leader to stand by", async () => {
        const hb = await readValue(c.b.members, `coordinator.${before.holder}`, (v) => v as { state?: string; atMs: number });
        return hb?.value.state === "standby";
      });
      await c.publish(50);
      await c.expectExact(c.currentRun());
      const l = await c.leader();
      assert.equal(l?.holder, after.holder, "the new leader still leads");
      checkHistory(c, before);
    } finally {
      if (!continued) process.kill(zombie.pid, "SIGCONT");
    }
  } finally {
    await c.close();
  }
});

test("coordinators whose clocks run 10x fast take no lead and move no partition without a missed heartbeat; totals never go down", { timeout: 120_000 }, async (t) => {
  if (!existsSync(LIBFAKETIME)) {
    t.skip(`${LIBFAKETIME} not found: apt-get install faketime`);
    return;
  }
  // c-1 leads on a true clock; c-2 and c-3 run 10x fast (timers too): as standbys they must not
  // take a lease that is renewed on time, and as leader one must not expire a speed node that
  // beats on time.
  const c = await startHaCluster("clock", ["c-2", "c-3"]);
  try {
    await c.publish(100);
    await c.expectExact(0);
    /** Ingests and queries for a few seconds; nobody may take over and no partition may move meanwhile. */
    const steady = async (what: string) => {
      const leader = (await c.leader())!;
      const moved = c.moves.length;
      const until = Date.now() + 6_000;
      while (Date.now() < until) {
        await c.publish(10);
        await c.queryNonDecreasing();
      }
      assert.deepEqual(await c.leader(), leader, `${what}: the lead did not change`);
      assert.deepEqual(c.moves.slice(moved), [], `${what}: no partition moved`);
      return leader;
    };
    const first = await steady("c-1 leading, with fast standbys");
    assert.equal(first.holder, "c-1");
    // Hand the lead to a fast coordinator with a clean stop (a released lease is taken at once).
    await c.nodes.get("c-1")!.stop();
    c.nodes.delete("c-1");
    const leader = await waitFor("a fast coordinator to lead", async () => {
      const l = await c.leader();
      return l && l.holder !== "" && l.holder !== "c-1" ? l : undefined;
    });
    const runBefore = c.currentRun();
    await steady(`fast leader ${leader.holder}`);
    assert.ok(c.currentRun() > runBefore, "the fast leader runs batches");
    await c.publish(20);
    await c.expectExact(c.currentRun());
  } finally {
    await c.close();
  }
});
