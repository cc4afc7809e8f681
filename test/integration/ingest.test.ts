/**
 * Ingest against a real cluster: refused events are reported to the caller and
 * kept in the dead-letter stream with the reason; valid ones reach the stream
 * and the speed actors once, also when published twice.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { InvalidEventError } from "../../src/core/errors.js";
import { deadLetters } from "../harness/dead_letters.js";
import { startTestCluster, type TestCluster } from "../harness/cluster.js";
import { query } from "../harness/grpc.js";

const T = Date.UTC(2026, 5, 8, 14, 23, 0);
const FROM = T - 3_600_000;
const TO = T + 3_600_000;


async function eventsStored(cluster: TestCluster): Promise<number> {
  const jsm = await jetstreamManager(cluster.nc);
  return (await jsm.streams.info(cluster.names.eventStream)).state.messages;
}

test("publish of an invalid event throws InvalidEventError naming the field, and dead-letters it", async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 1 });
  const raw = { id: "bad-1", article_id: "a", user_id: "u", ts: "last tuesday" };
  let reason = "";
  await assert.rejects(cluster.ingest.publish("pageviews", raw), (err: unknown) => {
    assert.ok(err instanceof InvalidEventError, String(err));
    reason = err.reason;
    assert.equal(err.field, "ts");
    assert.equal(err.eventId, "bad-1");
    assert.match(err.message, /field "ts" cannot parse "last tuesday" as a time/);
    return true;
  });
  const unknownSource = { id: "bad-2", article_id: "a" };
  await assert.rejects(cluster.ingest.publish("taps", unknownSource), (err: unknown) => err instanceof InvalidEventError && err.field === "source");

  const dl = await deadLetters(cluster);
  assert.equal(dl.length, 2);
  assert.deepEqual({ ...dl[0]!, refusedAt: "(time)" }, {
    stage: "ingest",
    source: "pageviews",
    raw,
    field: "ts",
    reason,
    problems: [{ field: "ts", reason }],
    eventId: "bad-1",
    partition: null,
    seq: null,
    refusedAt: "(time)",
  });
  assert.ok(Number.isFinite(Date.parse(dl[0]!.refusedAt)), `refusedAt ${dl[0]!.refusedAt}`);
  assert.equal(dl[1]!.source, "taps");
  assert.deepEqual(dl[1]!.raw, unknownSource);
  assert.equal(dl[1]!.field, "source");
  assert.match(dl[1]!.reason, /unknown source "taps"/);
  assert.equal(await eventsStored(cluster), 0, "nothing refused reaches the event stream");
});

test("publishBatch with valid and invalid events: the valid go in, the invalid are reported and dead-lettered", async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 1 });
  const ok = (i: number, article: string) => ({ id: `ok-${i}`, article_id: article, user_id: `u${i}`, ts: T + i * 1_000 });
  const batch: unknown[] = [
    ok(0, "x"),
    ok(1, "y"),
    { id: "bad-2", article_id: "x", user_id: "u" }, // ts missing
    ok(3, "x"),
    ok(4, "z"),
    { id: "bad-5", article_id: 5, user_id: "u", ts: T }, // wrong type
    ok(6, "y"),
    { id: "bad-7", article_id: "x", user_id: "u", ts: T, referrer: "r" }, // unknown field
    ok(8, "x"),
    "not an event",
  ];
  const r = await cluster.ingest.publishBatch("pageviews", batch);
  assert.equal(r.accepted, 6);
  assert.equal(r.duplicates, 0);
  assert.deepEqual(
    r.refused.map(({ index, field, eventId }) => ({ index, field, eventId })),
    [
      { index: 2, field: "ts", eventId: "bad-2" },
      { index: 5, field: "article_id", eventId: "bad-5" },
      { index: 7, field: "referrer", eventId: "bad-7" },
      { index: 9, field: "(event)", eventId: undefined },
    ],
  );
  assert.match(r.refused[0]!.reason, /is missing/);
  assert.match(r.refused[1]!.reason, /expected string, got number/);

  // The stream holds exactly the accepted events, the dead-letter stream exactly the refused ones.
  assert.equal(await eventsStored(cluster), 6);
  const dl = await deadLetters(cluster);
  assert.deepEqual(
    dl.map((d) => ({ source: d.source, field: d.field, eventId: d.eventId, raw: d.raw })),
    [2, 5, 7, 9].map((i, k) => ({ source: "pageviews", field: r.refused[k]!.field, eventId: r.refused[k]!.eventId ?? null, raw: batch[i] })),
  );
  assert.deepEqual(
    dl.map((d) => d.reason),
    r.refused.map((x) => x.reason),
  );

  // Every bad field of an event, not only the first.
  const twoBad = await cluster.ingest.publishBatch("pageviews", [{ id: "bad-9", article_id: 9, user_id: "", ts: T }]);
  assert.deepEqual(twoBad.refused[0]!.problems.map((p) => p.field), ["article_id", "user_id"]);
  const twoBadLetter = (await deadLetters(cluster)).find((d) => d.eventId === "bad-9");
  assert.deepEqual(twoBadLetter?.problems, twoBad.refused[0]!.problems);

  // The speed actors counted exactly the accepted events, per key.
  await cluster.waitForSpeedCaughtUp();
  const totals: Record<string, number> = {};
  for (const key of ["x", "y", "z"]) {
    const q = await query(cluster.grpc, "article_views", key, FROM, TO);
    assert.equal(q.batchPart, 0, "no batch run yet");
    totals[key] = q.total;
  }
  assert.deepEqual(totals, { x: 3, y: 2, z: 1 });
});

test("the same valid event published twice is stored and counted once", async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 1 });
  const e = { id: "dup-1", article_id: "x", user_id: "u", ts: T };
  const r = await cluster.ingest.publishBatch("pageviews", [e, { ...e }]);
  assert.deepEqual({ accepted: r.accepted, duplicates: r.duplicates, refused: r.refused }, { accepted: 1, duplicates: 1, refused: [] });

  // A producer retry of the same event, one at a time: JetStream answers with the stored copy.
  const again = await cluster.ingest.publish("pageviews", { ...e });
  assert.equal(again.duplicate, true);
  const jsm = await jetstreamManager(cluster.nc);
  const stored = await jsm.streams.getMessage(cluster.names.eventStream, { seq: again.seq });
  assert.ok(stored, `message ${again.seq} is stored`);
  assert.equal(stored.subject, cluster.names.eventSubject(again.partition));

  assert.equal(await eventsStored(cluster), 1);
  await cluster.waitForSpeedCaughtUp();
  const q = await query(cluster.grpc, "article_views", "x", FROM, TO);
  assert.equal(q.total, 1);
  assert.equal(q.speedPart, 1);
  const statuses = await cluster.speedStatuses();
  assert.equal(statuses.reduce((n, s) => n + s.skippedDuplicates, 0), 0, "the copies never reached an actor");
  assert.equal((await deadLetters(cluster)).length, 0);
});
