/**
 * A query while a partition's actor is briefly away (moving to another node, rebuilding from
 * the cut): serving asks again for a bounded time instead of failing at once. The speed client
 * is a fake here: what is under test is how serving/query.ts treats its replies and errors.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { SpeedActorUnavailableError, SpeedUnavailableReasons, type SpeedClient, type SpeedQueryReply } from "../../src/actors/index.js";
import { parseCatalog } from "../../src/core/catalog.js";
import { answerQuery, type MetricQuery, type QueryDeps } from "../../src/serving/query.js";

const CATALOG = parseCatalog(
  {
    sources: { pv: { fields: { id: "string", article: "string", ts: "timestamp" }, idField: "id", timeField: "ts", partitionKey: "article" } },
    metrics: { views: { source: "pv", groupBy: ["article"], window: "1m", aggregates: { n: "count" } } },
  },
  "query-retry.test",
);
const Q: MetricQuery = { metric: "views", key: "a", keys: [], group: {}, aggregate: "", quantile: 0, series: false, fromMs: 0, toMs: 60_000 };
const ANSWER: SpeedQueryReply = { kind: "value", keys: [], eventsAboveCut: 3, heldEvents: 3, partition: 0, node: "n-1", generation: 2, appliedSeq: 9 };
const away = (reason: (typeof SpeedUnavailableReasons)[keyof typeof SpeedUnavailableReasons]) => new SpeedActorUnavailableError(0, "query", reason, 1);

/** A speed client that answers with `replies` in turn (an Error is thrown), counting calls. */
function scripted(replies: (SpeedQueryReply | Error)[]): SpeedClient & { calls: number } {
  const client = {
    calls: 0,
    async query() {
      const r = replies[Math.min(client.calls++, replies.length - 1)]!;
      if (r instanceof Error) throw r;
      return r;
    },
    status: () => Promise.reject(new Error("not asked")),
    close: () => {},
  };
  return client;
}

const deps = (speed: SpeedClient, actorRetryMs?: number): QueryDeps => ({
  catalog: CATALOG,
  partitions: 1,
  speed,
  watermarks: { current: () => null, refresh: async () => null },
  maxPayloadBytes: () => 1_048_576,
  readBatch: async () => new Map(),
  actorRetryMs,
});

test("no actor listening, or one still rebuilding: asked again until it answers", async () => {
  const speed = scripted([away(SpeedUnavailableReasons.noResponders), { kind: "missing_definition", definition: "x", partition: 0, node: "n-1", generation: 2, appliedSeq: 0 }, ANSWER]);
  const r = await answerQuery(deps(speed), Q);
  assert.equal(speed.calls, 3);
  assert.equal(r.speedEventsHeld, 3);
  assert.deepEqual(r.partitions.map((p) => [p.partition, p.generation]), [[0, 2]]);
});

test("an actor away for longer than the retry time: UNAVAILABLE naming the partition", async () => {
  const speed = scripted([away(SpeedUnavailableReasons.noResponders)]);
  await assert.rejects(answerQuery(deps(speed, 150), Q), (e: unknown) => e instanceof SpeedActorUnavailableError && /no speed actor listens for partition 0/.test(e.message));
  assert.ok(speed.calls > 1, `asked ${speed.calls} times`);
  const rebuilding = scripted([{ kind: "missing_definition", definition: "x", partition: 0, node: "n-1", generation: 2, appliedSeq: 0 }]);
  await assert.rejects(answerQuery(deps(rebuilding, 150), Q), /does not compute views as batch run 0 defined it/);
});

test("an actor that does not answer in time is not asked again: the query has waited long enough", async () => {
  const speed = scripted([away(SpeedUnavailableReasons.timeout), ANSWER]);
  await assert.rejects(answerQuery(deps(speed), Q), (e: unknown) => e instanceof SpeedActorUnavailableError && e.reason === "timeout");
  assert.equal(speed.calls, 1);
});
