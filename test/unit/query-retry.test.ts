/**
 * A query while a partition's actor is away (moving to another node, rebuilding from the cut,
 * paused) or replaying: serving asks again for a bounded time, then answers without that
 * partition's speed part and says so (or fails, in strict mode). The speed client is a fake
 * here: what is under test is how serving/query.ts treats its replies and errors.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { SpeedActorUnavailableError, SpeedUnavailableReasons, type SpeedClient, type SpeedQuery, type SpeedQueryReply } from "../../src/actors/index.js";
import { decodeState } from "../../src/core/aggregate.js";
import { parseCatalog } from "../../src/core/catalog.js";
import { definitionAt } from "../../src/core/definitions.js";
import type { Watermark } from "../../src/core/watermark.js";
import { answerQuery, answerTopK, IncompleteAnswerError, type MetricQuery, type QueryDeps } from "../../src/serving/query.js";
import { keyShard, type KeyStates } from "../../src/actors/speed_state.js";
import { UnavailableError } from "../../src/core/errors.js";

const CATALOG = parseCatalog(
  {
    sources: { pv: { fields: { id: "string", article: "string", ts: "timestamp" }, idField: "id", timeField: "ts", partitionKey: "article" } },
    metrics: { views: { source: "pv", groupBy: ["article"], window: "1m", aggregates: { n: "count" } } },
  },
  "query-retry.test",
);
const Q: MetricQuery = { metric: "views", key: "a", keys: [], group: {}, aggregate: "", quantile: 0, series: false, fromMs: 0, toMs: 60_000 };
const ANSWER: SpeedQueryReply = { kind: "value", keys: [["a", [5, 0], null]], eventsAboveCut: 3, heldEvents: 3, partition: 0, node: "n-1", generation: 2, appliedSeq: 9, phase: "live" };
const REBUILDING: SpeedQueryReply = { kind: "missing_definition", definition: "x", partition: 0, node: "n-1", generation: 2, appliedSeq: 0 };
const FORMER_OWNER: SpeedQueryReply = { kind: "not_owner", partition: 0, node: "n-0", generation: 1, appliedSeq: 7 };
const away = (reason: (typeof SpeedUnavailableReasons)[keyof typeof SpeedUnavailableReasons]) => new SpeedActorUnavailableError(0, "query", reason, 1);

/** A speed client that answers with `replies` in turn (an Error is thrown), counting calls and keeping what was asked. */
function scripted(replies: (SpeedQueryReply | Error)[]): SpeedClient & { calls: number; asked: SpeedQuery[] } {
  const client = {
    calls: 0,
    asked: [] as SpeedQuery[],
    async query(_p: number, q: SpeedQuery) {
      client.asked.push(q);
      const r = replies[Math.min(client.calls++, replies.length - 1)]!;
      if (r instanceof Error) throw r;
      return r;
    },
    status: () => Promise.reject(new Error("not asked")),
    close: () => {},
  };
  return client;
}

/** Run 4 with its cut of partition 0 at 100; the partition is assigned to n-1 in generation 2; 17 records follow any position. */
const VIEWS = definitionAt(CATALOG, null, "views");
const WATERMARK: Watermark = {
  run: 4,
  cuts: [100],
  viewVersion: 4,
  coveredFromMs: null,
  coveredToMs: null,
  eventsCovered: 0,
  startedAtMs: 0,
  publishedAtMs: 0,
  coordinator: "c",
  timings: { barrierMs: 0, archiverFlushMs: 0, recomputeMs: 0 },
  metrics: { views: VIEWS.fingerprint },
  definitions: { views: VIEWS.metric },
};
const deps = (speed: SpeedClient, actorRetryMs?: number, recordsAfter: QueryDeps["recordsAfter"] = async () => 17): QueryDeps => ({
  catalog: CATALOG,
  partitions: 1,
  speed,
  watermarks: { current: () => WATERMARK, refresh: async () => WATERMARK },
  maxPayloadBytes: () => 1_048_576,
  readBatch: async () => new Map([["a", new Map([[0, decodeState(VIEWS.metric, [2, 0])]])]]),
  actorRetryMs,
  assignmentOf: () => ({ node: "n-1", generation: 2 }),
  recordsAfter,
});

test("no actor listening, a former owner, or one still rebuilding: asked again until it answers, with the owner's generation", async () => {
  const speed = scripted([away(SpeedUnavailableReasons.noResponders), FORMER_OWNER, REBUILDING, ANSWER]);
  const r = await answerQuery(deps(speed), Q);
  assert.equal(speed.calls, 4);
  assert.deepEqual(r.missing, []);
  assert.equal(r.answers[0]!.total, 7, "batch 2 + speed 5");
  assert.deepEqual(r.partitions.map((p) => [p.partition, p.generation]), [[0, 2]]);
  assert.ok(speed.asked.every((q) => q.generation === 2 && q.run === 4), "every ask carries the assigned generation and the run");
});

for (const [what, reply, reason] of [
  ["nobody listens", away(SpeedUnavailableReasons.noResponders), "moving"],
  ["only a former owner answers", FORMER_OWNER, "moving"],
  ["the actor is rebuilding", REBUILDING, "rebuilding"],
] as const) {
  test(`${what} past the retry time: the batch part alone, the partition named as missing (${reason}), strict fails`, async () => {
    const speed = scripted([reply]);
    const r = await answerQuery(deps(speed, 150), Q);
    assert.ok(speed.calls > 1, `asked ${speed.calls} times`);
    assert.equal(r.answers[0]!.total, 2, "the batch part, no speed part");
    assert.equal(r.answers[0]!.speedPart, 0);
    assert.deepEqual(r.partitions, []);
    assert.equal(r.missing.length, 1);
    assert.deepEqual({ ...r.missing[0]!, detail: "" }, { partition: 0, reason, countedThroughSeq: 100, eventsNotCounted: 17, node: "n-1", detail: "" });
    await assert.rejects(answerQuery(deps(scripted([reply]), 150), { ...Q, strict: true }), (e: unknown) => e instanceof IncompleteAnswerError && /partition 0 \(/.test(e.message));
  });
}

test("an actor that does not answer in time is not asked again: the query has waited long enough", async () => {
  const speed = scripted([away(SpeedUnavailableReasons.timeout), ANSWER]);
  const r = await answerQuery(deps(speed), Q);
  assert.equal(speed.calls, 1);
  assert.deepEqual(r.missing.map((m) => [m.reason, m.countedThroughSeq]), [["timeout", 100]]);
  await assert.rejects(answerQuery(deps(scripted([away(SpeedUnavailableReasons.timeout)])), { ...Q, strict: true }), IncompleteAnswerError);
});

test("a replaying actor's part is in the answer, flagged as behind from where it is (never below the cut)", async () => {
  const behind: SpeedQueryReply = { ...ANSWER, phase: "replaying", appliedSeq: 140 } as SpeedQueryReply;
  const asked: [number, number][] = [];
  const r = await answerQuery(deps(scripted([behind]), undefined, async (p, seq) => (asked.push([p, seq]), 5)), Q);
  assert.equal(r.answers[0]!.total, 7);
  assert.deepEqual(r.missing.map((m) => [m.partition, m.reason, m.countedThroughSeq, m.eventsNotCounted]), [[0, "replaying", 140, 5]]);
  assert.deepEqual(asked, [[0, 140]]);
  const warming: SpeedQueryReply = { ...ANSWER, phase: "replaying", appliedSeq: 60 } as SpeedQueryReply;
  const w = await answerQuery(deps(scripted([warming])), Q);
  assert.equal(w.missing[0]!.countedThroughSeq, 100, "replaying below the cut: the batch part has everything up to it");
});

test("a stalled actor's part is in the answer, flagged stalled from its applied sequence; strict fails", async () => {
  const stalled: SpeedQueryReply = { ...ANSWER, appliedSeq: 150, stalled: true } as SpeedQueryReply;
  const r = await answerQuery(deps(scripted([stalled])), Q);
  assert.equal(r.answers[0]!.total, 7);
  assert.deepEqual(r.missing.map((m) => [m.partition, m.reason, m.countedThroughSeq, m.eventsNotCounted]), [[0, "stalled", 150, 17]]);
  await assert.rejects(answerQuery(deps(scripted([stalled])), { ...Q, strict: true }), (e: unknown) => e instanceof IncompleteAnswerError && /stopped receiving/.test(e.message));
});

test("a stream that cannot count leaves events_not_counted unknown, the answer still partial", async () => {
  const r = await answerQuery(deps(scripted([away(SpeedUnavailableReasons.timeout)]), undefined, async () => Promise.reject(new Error("JetStream down"))), Q);
  assert.deepEqual(r.missing.map((m) => [m.reason, m.eventsNotCounted]), [["timeout", null]]);
});


test("an answer too large for one NATS message is asked for in halves and merged; one that cannot shrink is UNAVAILABLE", async () => {
  // The actor holds 5 events for each of 40 keys and answers at most 8 keys per reply.
  const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
  const asked: SpeedQuery[] = [];
  const speed: SpeedClient = {
    async query(_p, q) {
      asked.push(q);
      const held = (q.keys ?? keys).filter((k) => !q.shard || keyShard(k, q.shard.count) === q.shard.index);
      if (held.length > 8) return { kind: "too_large", bytes: 9_999, limitBytes: 1_000, partition: 0, node: "n-1", generation: 2, appliedSeq: 9 };
      return { ...ANSWER, keys: held.map((k): KeyStates => [k, [5, 0], null]) } as SpeedQueryReply;
    },
    status: () => Promise.reject(new Error("not asked")),
    close: () => {},
  };
  const r = await answerQuery(deps(speed), { ...Q, key: "", keys });
  assert.deepEqual(r.answers.map((a) => [a.key, a.total]), keys.map((k) => [k, 5 + (k === "a" ? 2 : 0)]));
  assert.ok(asked.length >= 7, `asked ${asked.length} times`);
  const top = await answerTopK(deps(speed), { metric: "views", k: 1_000, aggregate: "", quantile: 0, where: {}, fromMs: 0, toMs: 60_000 });
  assert.equal(top.answers.length, 41, "every key once: 40 from speed shards, a from the batch view");
  assert.ok(asked.some((q) => q.shard && q.shard.count >= 8), "every-key answers went by key shards");

  const neverSmall: SpeedClient = { ...speed, query: async () => ({ kind: "too_large", bytes: 9_999, limitBytes: 1_000, partition: 0, node: "n-1", generation: 2, appliedSeq: 9 }) };
  await assert.rejects(answerQuery(deps(neverSmall), Q), (e: unknown) => e instanceof UnavailableError && /stays larger than NATS max_payload \(9999 > 1000 bytes\) after 12 splits/.test(e.message));
});
