/**
 * Partitions move without failing queries (issue #11 §4), on real processes:
 *
 * - Queries run without pause while a speed node is SIGKILLed and while a new one joins.
 *   None fails; each answer is complete or names the partitions whose speed part it lacks,
 *   with the stream records it did not count; a complete answer equals the recount, a partial
 *   one equals the recount without exactly what it says it lacks.
 * - A speed node SIGSTOPped past the node timeout, then continued: its partitions move, it
 *   stops answering for them (only the current generation answers), no snapshot of an older
 *   generation replaces a newer one, and nothing is counted twice afterwards.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Kvm } from "@nats-io/kv";
import { definitionAt } from "../../src/core/definitions.js";
import { partitionOfKey } from "../../src/core/events.js";
import type { Watermark } from "../../src/core/watermark.js";
import type { SpeedQuery, SpeedQueryReply } from "../../src/actors/index.js";
import { decode, encode } from "../../src/nats/codec.js";
import type { QueryResponse } from "../../src/gen/lambda/v1/serving.js";
import { startTestCluster, type TestCluster } from "../harness/cluster.js";
import { getWatermark, queryRaw } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 11, 4, 9, 0, 0);
const FROM = T0 - 60 * MINUTE;
const TO = T0 + 120 * MINUTE;
const ARTICLES = 12;
const KEYS = Array.from({ length: ARTICLES }, (_, i) => `a-${i + 1}`);

/** What was published, by key and partition, below and above the cut of the one batch run. Kept apart from the runtime's code. */
class Ledger {
  private n = 0;
  /** key → events below the cut / above it. */
  readonly below = new Map<string, number>();
  readonly above = new Map<string, number>();
  /** partition → events above the cut. */
  readonly aboveByPartition = new Map<number, number>();
  constructor(private readonly cluster: TestCluster) {}

  /** Page views are partitioned by article_id (catalog/catalog.json). */
  partitionOf(key: string): number {
    return partitionOfKey(key, this.cluster.cfg.partitions);
  }

  /** Publishes `count` new events (each id once) and books them on `side` of the cut. */
  async publish(count: number, side: "below" | "above"): Promise<void> {
    const events = Array.from({ length: count }, (_, i) => ({ id: `ev-${++this.n}`, article_id: KEYS[(this.n * 7 + i) % ARTICLES]!, user_id: `u-${i % 9}`, ts: T0 + ((this.n * 13) % 90) * MINUTE }));
    const res = await this.cluster.ingest.publishBatch("pageviews", events);
    assert.equal(res.refused.length, 0);
    assert.equal(res.duplicates, 0);
    for (const e of events) {
      const book = side === "below" ? this.below : this.above;
      book.set(e.article_id, (book.get(e.article_id) ?? 0) + 1);
      if (side === "above") {
        const p = this.partitionOf(e.article_id);
        this.aboveByPartition.set(p, (this.aboveByPartition.get(p) ?? 0) + 1);
      }
    }
  }

  total(key: string): number {
    return (this.below.get(key) ?? 0) + (this.above.get(key) ?? 0);
  }
}

/** Publishes below the cut, runs a batch, publishes above it, and waits until speed holds it all. */
async function seed(cluster: TestCluster, ledger: Ledger): Promise<Watermark> {
  await ledger.publish(240, "below");
  const wm = await cluster.roles.coordinator!.runNow();
  await waitFor(`serving to see watermark ${wm.run}`, async () => (await getWatermark(cluster.grpc)).watermark?.run === wm.run);
  await ledger.publish(360, "above");
  await cluster.waitForSpeedCaughtUp();
  return wm;
}

interface Observed {
  readonly keys: readonly string[];
  readonly response?: QueryResponse;
  readonly error?: Error;
}

/** Asks without strict, over and over, one key at a time and all keys at once, until stopped. */
function queryWithoutPause(cluster: TestCluster) {
  const seen: Observed[] = [];
  let stopped = false;
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      const keys = i % 3 === 2 ? KEYS : [KEYS[i % ARTICLES]!];
      try {
        const response = await queryRaw(cluster.grpc, { metric: "article_views", key: keys[0]!, keys: keys.slice(1), from: new Date(FROM), to: new Date(TO), strict: false });
        seen.push({ keys, response });
      } catch (err) {
        seen.push({ keys, error: err as Error });
      }
    }
  })();
  return {
    seen,
    /** Waits until an answer after position `from` satisfies `check`. */
    until: (what: string, from: number, check: (r: QueryResponse) => boolean, timeoutMs = 30_000) =>
      waitFor(what, () => seen.slice(from).some((o) => o.response !== undefined && check(o.response)), { timeoutMs }),
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/**
 * Checks one answer against the ledger: complete answers equal it; a partial one lacks exactly
 * the speed part of the partitions it names (moving, timeout, rebuilding: everything above the
 * cut of that partition; replaying: some of it), and says how many records that is.
 */
function checkAnswer(ledger: Ledger, o: Observed, label: string): "complete" | "partial" {
  const r = o.response!;
  assert.equal(r.complete, r.missing.length === 0, `${label}: complete iff nothing is missing`);
  const missing = new Map(r.missing.map((m) => [m.partition, m]));
  for (const a of r.answers) {
    const p = ledger.partitionOf(a.key);
    const m = missing.get(p);
    const full = ledger.total(a.key);
    const batchOnly = ledger.below.get(a.key) ?? 0;
    const what = `${label}: ${a.key} (partition ${p}) batch ${a.batchPart} + speed ${a.speedPart}`;
    if (!m) assert.equal(a.total, full, `${what}: a complete part equals the recount`);
    else if (m.reason === "replaying") assert.ok((a.total ?? 0) >= batchOnly && (a.total ?? 0) <= full, `${what}: a replaying part is between the batch part and the recount`);
    else {
      assert.ok(["moving", "timeout", "rebuilding"].includes(m.reason), `${what}: reason ${m.reason}`);
      assert.equal(a.total, batchOnly, `${what}: without its speed part, the answer is the batch part alone (${m.reason})`);
      assert.equal(a.speedPart ?? 0, 0);
    }
  }
  for (const m of r.missing) {
    assert.ok(m.detail.length > 0, `${label}: partition ${m.partition} missing says why`);
    if (m.reason !== "replaying") {
      assert.equal(m.eventsNotCounted, ledger.aboveByPartition.get(m.partition) ?? 0, `${label}: partition ${m.partition} lacks exactly the records above its cut`);
    }
  }
  return r.complete ? "complete" : "partial";
}

test("queries during a speed-node kill and a join: none fails, each is complete and exact or says what it lacks", { timeout: 180_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 4, speedNodes: 2 });
  const ledger = new Ledger(cluster);
  const wm = await seed(cluster, ledger);
  const victim = [...cluster.speedNodes.keys()][0]!;
  const victimPartitions = cluster.roles.coordinator!.assignments().filter((a) => a.node === victim).map((a) => a.partition);
  assert.ok(victimPartitions.length > 0, "the victim owns partitions");
  const cutOf = (p: number) => wm.cuts[p]!;

  const q = queryWithoutPause(cluster);
  await q.until("a first answer", 0, (r) => r.complete);
  const killedAt = q.seen.length;
  await cluster.killSpeedNode(victim);
  await q.until("an answer that lacks the killed node's partitions", killedAt, (r) => r.missing.some((m) => victimPartitions.includes(m.partition)));
  const partialAt = q.seen.length;
  await q.until("a complete answer with every key after the partitions moved", partialAt, (r) => r.complete && r.answers.length === ARTICLES);

  const joinedAt = q.seen.length;
  await cluster.addSpeedNode(`${cluster.cfg.prefix}-speed-joiner`);
  await waitFor("the joiner to own partitions", () => cluster.roles.coordinator!.assignments().some((a) => a.node.endsWith("-speed-joiner")));
  await cluster.waitForSpeedCaughtUp();
  const settledAt = q.seen.length;
  await q.until("a complete answer with every key after the join", settledAt, (r) => r.complete && r.answers.length === ARTICLES);
  await q.stop();

  const failed = q.seen.filter((o) => o.error);
  assert.deepEqual(failed.map((o) => o.error!.message), [], "no query fails in the default mode");
  const tally = { complete: 0, partial: 0 };
  for (const [i, o] of q.seen.entries()) tally[checkAnswer(ledger, o, `answer ${i}${i >= joinedAt ? " (join)" : i >= killedAt ? " (kill)" : ""}`)]++;
  for (const o of q.seen) for (const m of o.response!.missing) if (m.reason !== "replaying") assert.equal(m.countedThroughSeq, cutOf(m.partition));
  assert.ok(tally.partial > 0 && tally.complete > tally.partial, `answers: ${JSON.stringify(tally)}`);
  // Every partial answer named a partition the kill or the join moved.
  const moved = new Set(cluster.roles.coordinator!.assignments().filter((a) => a.generation > 1).map((a) => a.partition));
  for (const o of q.seen) for (const m of o.response!.missing) assert.ok(moved.has(m.partition), `partition ${m.partition} was missing but never moved`);
});

/** Every reply to one speed query on `partition` within `windowMs`: more than one actor may answer. */
async function allReplies(cluster: TestCluster, partition: number, q: SpeedQuery, windowMs: number): Promise<SpeedQueryReply[]> {
  const inbox = `_INBOX.probe.${partition}.${Date.now()}`;
  const replies: SpeedQueryReply[] = [];
  const sub = cluster.nc.subscribe(inbox, { callback: (_e, m) => void replies.push(decode<SpeedQueryReply>(m.data)) });
  cluster.nc.publish(cluster.names.speedQuerySubject(partition), encode(q), { reply: inbox });
  await cluster.nc.flush();
  // A window to hear from every actor still listening: how many answer is what is measured.
  await new Promise((r) => setTimeout(r, windowMs));
  sub.unsubscribe();
  return replies;
}

test("a speed node paused past the node timeout, then continued: its partitions moved, it stops answering and snapshotting them, nothing counted twice", { timeout: 180_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 4, speedNodes: 2 });
  const ledger = new Ledger(cluster);
  // Snapshot manifests as written, per partition: a stale generation must never replace a newer one.
  const kv = await new Kvm(cluster.nc).open(cluster.names.snapshotBucket);
  const manifests = new Map<number, number[]>();
  const watch = await kv.watch({ key: "manifest.*" });
  void (async () => {
    for await (const e of watch) {
      if (e.operation !== "PUT") continue;
      const p = Number(e.key.split(".")[1]);
      const gens = manifests.get(p) ?? [];
      gens.push(decode<{ generation: number }>(e.value).generation);
      manifests.set(p, gens);
    }
  })();

  const wm = await seed(cluster, ledger);
  const [victim, survivor] = [...cluster.speedNodes.keys()] as [string, string];
  const before = cluster.roles.coordinator!.assignments();
  const victimPartitions = before.filter((a) => a.node === victim).map((a) => a.partition);
  assert.ok(victimPartitions.length > 0);

  const node = cluster.speedNodes.get(victim)!;
  process.kill(node.pid, "SIGSTOP");
  let continued = false;
  try {
    await waitFor("the paused node's partitions to move", () => victimPartitions.every((p) => cluster.roles.coordinator!.assignments()[p]!.node === survivor), { timeoutMs: 30_000 });
    // Events while it is paused go to the new owner only.
    await ledger.publish(120, "above");
    await waitFor("strict answers to be complete and exact while the node is paused", async () => {
      for (const key of KEYS) if ((await queryRaw(cluster.grpc, { metric: "article_views", key, from: new Date(FROM), to: new Date(TO) })).answers[0]!.total !== ledger.total(key)) return false;
      return true;
    });
    process.kill(node.pid, "SIGCONT");
    continued = true;
  } finally {
    if (!continued) process.kill(node.pid, "SIGCONT");
  }

  // Only the actor of the current generation answers each partition (the node that came back
  // may be given partitions again, under a newer generation: rebalance on its return).
  const definition = definitionAt(cluster.catalog, wm, "article_views").fingerprint;
  const probe: SpeedQuery = { run: wm.run, metric: "article_views", definition, keys: null, fromMs: FROM, toMs: TO, series: false, generation: 0 };
  await waitFor(
    "one answering actor per partition, of the current generation",
    async () => {
      const owners = cluster.roles.coordinator!.assignments();
      for (let p = 0; p < cluster.cfg.partitions; p++) {
        const values = (await allReplies(cluster, p, probe, 300)).filter((r) => r.kind === "value");
        if (values.length !== 1 || values[0]!.generation !== owners[p]!.generation || values[0]!.node !== owners[p]!.node) return false;
      }
      return true;
    },
    { timeoutMs: 30_000 },
  );
  for (const p of victimPartitions) {
    const fenced = await allReplies(cluster, p, { ...probe, generation: cluster.roles.coordinator!.assignments()[p]!.generation + 1 }, 300);
    assert.ok(fenced.every((r) => r.kind === "not_owner"), `partition ${p}: an actor older than the generation asked answers not_owner, never its state`);
  }

  await ledger.publish(120, "above");
  await cluster.waitForSpeedCaughtUp();
  for (const key of KEYS) {
    const r = await queryRaw(cluster.grpc, { metric: "article_views", key, from: new Date(FROM), to: new Date(TO) });
    assert.equal(r.answers[0]!.total, ledger.total(key), `${key} after the paused node came back`);
    assert.ok(r.complete);
  }
  const wm2 = await cluster.roles.coordinator!.runNow();
  await waitFor(`serving to see watermark ${wm2.run}`, async () => (await getWatermark(cluster.grpc)).watermark?.run === wm2.run);
  for (const key of KEYS) {
    const r = await queryRaw(cluster.grpc, { metric: "article_views", key, from: new Date(FROM), to: new Date(TO) });
    assert.equal(r.answers[0]!.total, ledger.total(key), `${key} after run ${wm2.run}`);
  }
  watch.stop();
  for (const [p, gens] of manifests) {
    for (let i = 1; i < gens.length; i++) assert.ok(gens[i]! >= gens[i - 1]!, `partition ${p}: snapshot generations ${gens.join(", ")} went backwards`);
  }
  for (const p of victimPartitions) assert.ok(Math.max(...(manifests.get(p) ?? [0])) > before[p]!.generation, `partition ${p}: the new owner snapshotted`);
});
