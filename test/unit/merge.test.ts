/**
 * serving/merge.ts: a key's answer from batch and speed states, with the batch side's sum kept
 * per map (the batch cache hands the same maps out again), must equal the merge made from
 * scratch on every call, for every kind of aggregate, and follow a speed side that moves.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { addEvent, emptyState, finalize, merged, type AggState } from "../../src/core/aggregate.js";
import { parseCatalog, type MetricDef } from "../../src/core/catalog.js";
import { groupOf, mergeKey } from "../../src/serving/merge.js";
import { prng } from "./prng.js";

const CATALOG = parseCatalog(
  {
    sources: { pv: { fields: { id: "string", article: "string", user: "string", ms: "float", ts: "timestamp" }, idField: "id", timeField: "ts", partitionKey: "article" } },
    metrics: {
      every_kind: {
        source: "pv",
        groupBy: ["article"],
        window: "1m",
        aggregates: { n: "count", total: { sum: "ms" }, low: { min: "ms" }, high: { max: "ms" }, mean: { avg: "ms" }, readers: { distinct: "user" }, p: { quantiles: "ms" } },
      },
      two_fields: { source: "pv", groupBy: ["article", "user"], window: "1m", aggregates: { n: "count" } },
    },
  },
  "merge.test",
);
const METRIC = CATALOG.metrics.get("every_kind")!;

function windows(metric: MetricDef, rnd: () => number, count: number, events: number): Map<number, AggState> {
  const out = new Map<number, AggState>();
  for (let w = 0; w < count; w++) {
    const st = emptyState(metric);
    for (let e = 0; e < events; e++) addEvent(metric, st, { article: "a", user: `u${Math.floor(rnd() * 50)}`, ms: Math.round(rnd() * 1000) / 10 });
    out.set(w * 60_000, st);
  }
  return out;
}

/** The answer's figures from scratch: every window of both sides merged anew. */
function expected(metric: MetricDef, i: number, batch: ReadonlyMap<number, AggState>, speed: ReadonlyMap<number, AggState>) {
  const b = merged(metric, ...batch.values());
  const s = merged(metric, ...speed.values());
  const t = merged(metric, b, s);
  return { total: finalize(t, i, 0.9), batchPart: finalize(b, i, 0.9), speedPart: finalize(s, i, 0.9), events: t.n };
}

test("a key's answer over the same batch map, asked again while its speed side grows, equals the merge from scratch for every aggregate", () => {
  const rnd = prng(7).next;
  const batchWindows = windows(METRIC, rnd, 30, 5);
  const batch = new Map([["a", batchWindows]]);
  const speedWindows = windows(METRIC, rnd, 2, 3);
  for (let call = 0; call < 6; call++) {
    const speed = new Map([["a", new Map(speedWindows)]]);
    for (let i = 0; i < METRIC.aggregates.length; i++) {
      const r = mergeKey({ metric: METRIC, aggregateIndex: i, quantile: 0.9, series: false }, "a", batch, speed);
      const want = expected(METRIC, i, batchWindows, speedWindows);
      assert.deepEqual({ total: r.total, batchPart: r.batchPart, speedPart: r.speedPart, events: r.events }, want, `call ${call}, aggregate ${METRIC.aggregates[i]!.name}`);
    }
    // The speed side moves between calls (new events above the cut); the batch map does not.
    const st = emptyState(METRIC);
    addEvent(METRIC, st, { article: "a", user: `v${call}`, ms: call });
    speedWindows.set((100 + call) * 60_000, st);
  }
  // The kept batch sum is not the caller's to change: a total merged from it leaves it as it was.
  const before = mergeKey({ metric: METRIC, aggregateIndex: 0, quantile: 0.9, series: false }, "a", batch, new Map());
  assert.equal(before.total, before.batchPart);
  assert.equal(before.batchPart, expected(METRIC, 0, batchWindows, new Map()).batchPart);
});

test("another batch map for the same key (another range, another run) is summed on its own", () => {
  const rnd = prng(11).next;
  const a = windows(METRIC, rnd, 10, 4);
  const b = windows(METRIC, rnd, 20, 2);
  const req = { metric: METRIC, aggregateIndex: 0, quantile: 0.5, series: false };
  assert.equal(mergeKey(req, "a", new Map([["a", a]]), new Map()).batchPart, 40);
  assert.equal(mergeKey(req, "a", new Map([["a", b]]), new Map()).batchPart, 40);
  assert.equal(mergeKey(req, "a", new Map([["a", new Map([...a].slice(0, 3))]]), new Map()).batchPart, 12);
  assert.equal(mergeKey(req, "absent", new Map([["a", a]]), new Map()).batchPart, 0);
});

test("groupOf names each group-by field's value, for one field and for several", () => {
  assert.deepEqual(groupOf(METRIC, "a-1"), { article: "a-1" });
  assert.deepEqual(groupOf(CATALOG.metrics.get("two_fields")!, "3:a-15:u.1:x"), { article: "a-1", user: "u.1:x" });
});
