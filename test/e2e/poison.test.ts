/**
 * Poison records on the raw stream: records published straight to partition subjects,
 * bypassing ingest, of every kind ingest would refuse (and some that are not stream records
 * at all), interleaved with good events and batch runs. Every answer must equal the recount of
 * the good events only, the seam must verify exact, every poison record must be in the
 * dead-letter stream with its partition, sequence and reason, and the speed actors must report
 * how many they skipped.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import type { SpeedStatus } from "../../src/actors/index.js";
import { partitionOf, partitionOfKey, validateEvent } from "../../src/core/events.js";
import { encode } from "../../src/nats/codec.js";
import { verifySeam } from "../../src/serving/verify.js";
import { deadLetters } from "../harness/dead_letters.js";
import { startTestCluster, type TestCluster } from "../harness/cluster.js";
import { getWatermark, query } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";
import { lambdactl, parseJson } from "../harness/cli.js";

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 5, 8, 12, 0, 0);
const ARTICLES = 12;
const P = 4;

interface Good {
  id: string;
  article_id: string;
  user_id: string;
  ts: number;
  load_ms: number;
}

/** What the test published as poison: where it landed and what the dead letter must say. */
interface Poison {
  kind: string;
  partition: number;
  seq: number;
  reason: RegExp;
}

let serial = 0;
const good = (n: number): Good[] =>
  Array.from({ length: n }, () => {
    const i = ++serial;
    return { id: `g-${i}`, article_id: `a-${1 + (i % ARTICLES)}`, user_id: `u-${i % 9}`, ts: T0 + (i % 50) * MINUTE + (i % 7) * 1000, load_ms: 100 + (i % 13) };
  });

/** Publishes one of every kind of poison record straight to the stream, as a raw client would. */
async function publishPoison(cluster: TestCluster, tag: string): Promise<Poison[]> {
  const js = jetstream(cluster.nc);
  const source = cluster.catalog.sources.get("pageviews")!;
  const out: Poison[] = [];
  const base = (i: number) => {
    const e = validateEvent(cluster.catalog, "pageviews", { id: `p-${tag}-${i}`, article_id: `a-${1 + (i % ARTICLES)}`, user_id: "u-x", ts: T0 + i * MINUTE, load_ms: 5 });
    return { e, home: partitionOf(source, e, P) };
  };
  const send = async (kind: string, partition: number, data: Uint8Array, reason: RegExp) => {
    const ack = await js.publish(cluster.names.eventSubject(partition), data, { msgID: `poison:${tag}:${kind}` });
    out.push({ kind, partition, seq: ack.seq, reason });
  };
  const record = (e: { source: string; id: string; ts: number; fields: Record<string, unknown> }, v: Record<string, unknown>, over: Record<string, unknown> = {}) =>
    encode({ k: "e", s: e.source, id: e.id, ts: e.ts, v, ...over });

  let i = 0;
  {
    const { e, home } = base(i++);
    await send("ts not a time", home, record(e, { ...e.fields, ts: "not a time" }), /ts cannot parse/);
  }
  {
    const { e, home } = base(i++);
    await send("load_ms Infinity", home, record(e, { ...e.fields, load_ms: Infinity }), /load_ms expected a finite number, got Infinity/);
  }
  {
    const { e, home } = base(i++);
    await send("load_ms NaN", home, record(e, { ...e.fields, load_ms: NaN }), /load_ms expected a finite number, got NaN/);
  }
  {
    // A numeric article_id, on the partition its string form hashes to (where speed used to count it under "12345").
    const { e } = base(i++);
    await send("numeric string field", partitionOfKey(12345, P), record(e, { ...e.fields, article_id: 12345 }), /article_id expected string, got number/);
  }
  {
    const { e, home } = base(i++);
    const { user_id: _u, ...rest } = e.fields;
    await send("missing required field", home, record(e, rest), /user_id is missing/);
  }
  {
    const { e, home } = base(i++);
    await send("unknown field", home, record(e, { ...e.fields, referrer: "x" }), /referrer is not in the schema/);
  }
  {
    const { e, home } = base(i++);
    await send("unknown source", home, record(e, e.fields, { s: "taps" }), /unknown source "taps"/);
  }
  {
    const { e, home } = base(i++);
    await send("wrong partition", (home + 1) % P, record(e, e.fields), new RegExp(`hashes to partition ${home}`));
  }
  {
    const { e, home } = base(i++);
    await send("id not the id field", home, record(e, e.fields, { id: "someone-else" }), /record id\) is "someone-else"/);
  }
  await send("not msgpack", i++ % P, Buffer.from([0xc1, 0xc1, 0xc1]), /not msgpack|not a stream record/);
  await send("msgpack array", i++ % P, encode([1, "e", 2]), /msgpack array/);
  return out;
}

/** The first copy of every good event; counts article_views windows by their start. */
class Recount {
  readonly events: Good[] = [];
  count(article: string, fromMs: number, toMs: number): number {
    return this.events.filter((e) => e.article_id === article && e.ts - (e.ts % MINUTE) >= fromMs && e.ts - (e.ts % MINUTE) < toMs).length;
  }
}

async function assertExact(cluster: TestCluster, recount: Recount, label: string) {
  const ranges: [number, number][] = [
    [T0 - 60 * MINUTE, T0 + 120 * MINUTE],
    [T0 + 10 * MINUTE, T0 + 31 * MINUTE],
  ];
  // "12345": the numeric article_id must be counted nowhere.
  for (const key of [...Array.from({ length: ARTICLES }, (_, k) => `a-${k + 1}`), "12345"]) {
    for (const [from, to] of ranges) {
      const expected = recount.count(key, from, to);
      const r = await query(cluster.grpc, "article_views", key, from, to);
      assert.equal(r.total, expected, `${label}: article_views ${key}: batch ${r.batchPart} + speed ${r.speedPart} at run ${r.watermarkRun}`);
    }
    // The metric whose quantiles an Infinity load_ms used to break: its view count is the same recount
    // (no good event is a bot), over whole 5-minute windows.
    const e = await query(cluster.grpc, "article_engagement", key, T0 - 60 * MINUTE, T0 + 120 * MINUTE);
    assert.equal(e.total, recount.count(key, T0 - 60 * MINUTE, T0 + 120 * MINUTE), `${label}: article_engagement ${key}`);
  }
}


test("poison records on the raw stream are skipped by both layers alike and dead-lettered; answers stay exact", { timeout: 240_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: P, speedNodes: 2 });
  const recount = new Recount();
  const poison: Poison[] = [];
  const publishGood = async (n: number) => {
    const evs = good(n);
    const r = await cluster.ingest.publishBatch("pageviews", evs);
    assert.equal(r.accepted, n);
    recount.events.push(...evs);
  };
  const runBatch = async () => {
    const wm = await cluster.roles.coordinator!.runNow();
    assert.equal(wm.eventsCovered, recount.events.length, "the batch view covers the good events only");
    await waitFor(`serving to see watermark ${wm.run}`, async () => (await getWatermark(cluster.grpc)).watermark?.run === wm.run);
    await waitFor(`actors to apply watermark ${wm.run}`, async () => (await cluster.speedStatuses()).every((s) => s.watermarkRun >= wm.run));
    return wm;
  };

  // Good events with poison between them, answered by speed alone, then by batch + speed.
  await publishGood(150);
  // Partitions settled on their owners first: an actor counts the records it skipped since it started.
  const actorOf = (s: SpeedStatus) => `${s.node}/${s.generation} from ${JSON.stringify(s.restoredFrom)}`;
  const actorsAtFirstPoison = (await cluster.waitForSpeedCaughtUp()).map(actorOf);
  poison.push(...(await publishPoison(cluster, "1")));
  await publishGood(150);
  await cluster.waitForSpeedCaughtUp();
  await assertExact(cluster, recount, "before any run");
  await runBatch();
  await assertExact(cluster, recount, "after run 1");

  // More poison after the run, then more good events, then another run.
  poison.push(...(await publishPoison(cluster, "2")));
  await publishGood(120);
  await cluster.waitForSpeedCaughtUp();
  await assertExact(cluster, recount, "after run 1, more poison");
  const wm2 = await runBatch();
  await publishGood(40);
  await cluster.waitForSpeedCaughtUp();
  await assertExact(cluster, recount, "after run 2");

  const v = await verifySeam(
    { ch: cluster.roles.ch!.client, database: cluster.cfg.database, catalog: cluster.catalog, partitions: P, speed: cluster.speed },
    wm2,
  );
  assert.ok(v.exact, `watermark verify: ${JSON.stringify(v)}`);

  // Every poison record is dead-lettered once, with its partition, sequence and reason; nothing else is.
  const letters = await waitFor("a dead letter for every poison record", async () => {
    const all = await deadLetters(cluster);
    return all.length >= poison.length && all;
  });
  assert.equal(letters.length, poison.length, "one dead letter per poison record");
  for (const p of poison) {
    const d = letters.find((l) => l.partition === p.partition && l.seq === p.seq);
    assert.ok(d, `dead letter of ${p.kind} at partition ${p.partition} seq ${p.seq}`);
    assert.equal(d.stage, "stream", p.kind);
    const text = d.problems.map((x) => `${x.field} ${x.reason}`).join("; ");
    assert.match(text, p.reason, `${p.kind}: ${text}`);
  }

  // The speed actors skipped exactly the poison records of their partitions. A partition whose
  // actor moved or restarted meanwhile (a node timeout under load) has a new actor, counting
  // only what it replayed since its snapshot or cut.
  const statuses = await cluster.speedStatuses();
  statuses.forEach((s, q) => {
    const expected = poison.filter((p) => p.partition === q).length;
    if (actorOf(s) === actorsAtFirstPoison[q]) assert.equal(s.skippedInvalid, expected, `partition ${q}: records skipped`);
    else assert.ok(s.skippedInvalid <= expected, `partition ${q} has a new actor (${actorOf(s)}): skipped ${s.skippedInvalid} of ${expected}`);
  });
  assert.ok(statuses.some((s, q) => actorOf(s) === actorsAtFirstPoison[q]), "at least one partition kept its actor, so a count was checked");
  // ... and an operator sees the same counts in `lambdactl status`.
  const status = parseJson<{ partitions: { partition: number; speedSkippedInvalid: number }[] }>(
    await lambdactl(["status", "--json", "--grpc", cluster.roles.serving!.address], { cwd: process.cwd() }),
  );
  assert.deepEqual(
    status.partitions.map((p) => p.speedSkippedInvalid),
    statuses.map((s) => s.skippedInvalid),
    "status shows each partition's skipped records",
  );
});
