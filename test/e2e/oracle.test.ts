/**
 * The end-to-end oracle: random page views (late events, retried publishes,
 * copies that slip past the stream's duplicate window) interleaved with batch
 * runs; after every step every gRPC answer must equal an independent recount
 * of the events, each id counted once.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { validateEvent, partitionOf } from "../../src/core/events.js";
import { encodeEvent } from "../../src/nats/codec.js";
import { prng } from "../../src/ingest/synthetic.js";

/** The fields this test sets; the catalog's other page-view fields are optional. */
interface PageView {
  id: string;
  article_id: string;
  user_id: string;
  ts: number;
}
import { startTestCluster, type TestCluster } from "../harness/cluster.js";
import { getWatermark, query } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 5, 8, 12, 0, 0);
const ARTICLES = 30;

/** The oracle: the first copy of every id, kept apart from the runtime's code. */
class Recount {
  readonly firstCopies = new Map<string, PageView>();
  add(e: PageView) {
    if (!this.firstCopies.has(e.id)) this.firstCopies.set(e.id, e);
  }
  count(article: string, fromMs: number, toMs: number): number {
    let n = 0;
    for (const e of this.firstCopies.values()) {
      const w = e.ts - (e.ts % MINUTE);
      if (e.article_id === article && w >= fromMs && w < toMs) n++;
    }
    return n;
  }
}

function makeWorkload(seed: number) {
  const rand = prng(seed);
  const published: PageView[] = [];
  let n = 0;
  const article = () => `a-${Math.min(ARTICLES, 1 + Math.floor(ARTICLES * rand() ** 2))}`; // skewed
  return {
    rand,
    published,
    /** `count` new events in step `step`; a share are late (event time in the first 10 minutes). */
    fresh(step: number, count: number): PageView[] {
      return Array.from({ length: count }, () => {
        const late = rand() < 0.1;
        const ts = late ? T0 + Math.floor(rand() * 10 * MINUTE) : T0 + step * 5 * MINUTE + Math.floor(rand() * 5 * MINUTE);
        const e = { id: `e-${++n}`, article_id: article(), user_id: `u-${Math.floor(rand() * 100)}`, ts };
        published.push(e);
        return e;
      });
    },
    pickEarlier(count: number): PageView[] {
      return Array.from({ length: count }, () => published[Math.floor(rand() * published.length)]!);
    },
  };
}

/** Publishes copies that reach the stream: as if the producer retried after the duplicate window. */
async function publishLateCopies(cluster: TestCluster, copies: PageView[], tag: string) {
  const js = jetstream(cluster.nc);
  const source = cluster.catalog.sources.get("pageviews")!;
  for (const [i, c] of copies.entries()) {
    const e = validateEvent(cluster.catalog, "pageviews", c);
    await js.publish(cluster.names.eventSubject(partitionOf(source, e, cluster.cfg.partitions)), encodeEvent(e), { msgID: `copy:${tag}:${i}:${c.id}` });
  }
}

async function assertExact(cluster: TestCluster, recount: Recount, rand: () => number, label: string) {
  const ranges: [number, number][] = [[T0 - 60 * MINUTE, T0 + 120 * MINUTE]];
  for (let i = 0; i < 3; i++) {
    const a = Math.floor(rand() * 40);
    const b = a + 1 + Math.floor(rand() * 20);
    // Some bounds fall inside a window: windows count by their start.
    ranges.push([T0 + a * MINUTE + (i === 2 ? 30_000 : 0), T0 + b * MINUTE]);
  }
  let checked = 0;
  for (let k = 1; k <= ARTICLES; k++) {
    const key = `a-${k}`;
    for (const [from, to] of ranges) {
      const r = await query(cluster.grpc, "article_views", key, from, to);
      const expected = recount.count(key, from, to);
      assert.equal(r.total, expected, `${label}: ${key} [${new Date(from).toISOString()}, ${new Date(to).toISOString()}) at run ${r.watermarkRun}: batch ${r.batchPart} + speed ${r.speedPart}`);
      assert.equal(r.batchPart + r.speedPart, r.total, `${label}: parts add up`);
      checked++;
    }
  }
  return checked;
}

async function heldEvents(cluster: TestCluster): Promise<number> {
  return (await cluster.speedStatuses()).reduce((n, s) => n + s.heldEvents, 0);
}

/** Steps of publishing (late events, retries, copies past the duplicate window), batch runs between, every answer checked after each. */
async function runOracle(cluster: TestCluster, steps: number, seed: number) {
  const w = makeWorkload(seed);
  const recount = new Recount();
  let runs = 0;
  let copiesSkipped = 0;

  const publishStep = async (step: number) => {
    const fresh = w.fresh(step, 400);
    const retries = w.pickEarlier(20); // a producer retrying inside the duplicate window
    const res = await cluster.ingest.publishBatch("pageviews", [...fresh, ...retries]);
    assert.equal(res.refused.length, 0);
    for (const e of [...fresh, ...retries]) recount.add(e);
    assert.ok(res.duplicates >= 20, "retried publishes are dropped by the stream");
    const copies = w.pickEarlier(15);
    await publishLateCopies(cluster, copies, `s${step}`);
    copiesSkipped += copies.length;
  };

  for (let step = 0; step < steps; step++) {
    if (step === 4) {
      // Events arrive while a batch run cuts the stream: the barrier lands between them.
      const [wm] = await Promise.all([cluster.roles.coordinator!.runNow(), publishStep(step)]);
      runs++;
      assert.equal(wm.run, runs);
    } else {
      await publishStep(step);
    }
    await cluster.waitForSpeedCaughtUp();
    await assertExact(cluster, recount, w.rand, `step ${step}, before run`);

    if (step % 2 === 1) {
      const heldBefore = await heldEvents(cluster);
      const wm = await cluster.roles.coordinator!.runNow();
      runs++;
      assert.equal(wm.run, runs);
      assert.equal(wm.cuts.length, cluster.cfg.partitions);
      assert.equal(wm.eventsCovered, recount.firstCopies.size, "the batch view covers every distinct event below the cut");
      // The actors drop the segments the watermark covers.
      await waitFor(`actors to apply watermark ${wm.run}`, async () => (await cluster.speedStatuses()).every((s) => s.watermarkRun >= wm.run));
      const heldAfter = await heldEvents(cluster);
      assert.ok(heldBefore > 0, "speed held events before the run");
      assert.equal(heldAfter, 0, "nothing arrived after the barrier, so speed holds nothing after the watermark");
      await waitFor(`serving to see watermark ${wm.run}`, async () => (await getWatermark(cluster.grpc)).watermark?.run === wm.run);
      await assertExact(cluster, recount, w.rand, `step ${step}, after run ${wm.run}`);
      const r = await query(cluster.grpc, "article_views", "a-1", T0 - 60 * MINUTE, T0 + 120 * MINUTE);
      assert.equal(r.watermarkRun, wm.run);
      assert.equal(r.speedPart, 0);
      assert.equal(r.batchPart, recount.count("a-1", T0 - 60 * MINUTE, T0 + 120 * MINUTE));
    }
  }
  assert.ok(runs >= Math.floor(steps / 2));
  const statuses = await cluster.speedStatuses();
  assert.equal(
    statuses.reduce((n, s) => n + s.skippedDuplicates, 0),
    copiesSkipped,
    "every copy that reached the stream was skipped by the speed layer",
  );
}

test("every answer equals an independent recount, across batch runs, late events and duplicates", { timeout: 240_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 4, speedNodes: 2 });
  await runOracle(cluster, 7, 20260608);
});

test("the oracle on a 3-node NATS cluster with R3 streams and buckets", { timeout: 240_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 4, speedNodes: 2, natsNodes: 3 });
  const jsm = await jetstreamManager(cluster.nc);
  assert.equal((await jsm.streams.info(cluster.names.eventStream)).config.num_replicas, 3, "the event stream has 3 replicas");
  assert.equal((await jsm.streams.info(`KV_${cluster.names.watermarkBucket}`)).config.num_replicas, 3, "the watermark bucket has 3 replicas");
  await runOracle(cluster, 5, 20261204);
});
