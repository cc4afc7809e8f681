/**
 * The speed actor's pure state machine (src/actors/speed_state.ts): segments cut
 * by barriers, dropped by watermarks, queried above a cut, and deduplicated by
 * stream sequence and by event id; and the aggregate states it keeps per
 * (metric, key, window): filters, every aggregate kind, group-by over 0, 1 and
 * 2 fields, ranges, key lists and series. The last test checks the whole
 * contract on random streams against an independent recount.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { metricFingerprint, parseCatalog, type MetricDef } from "../../src/core/catalog.js";
import type { FieldValue } from "../../src/core/events.js";
import { decodeState, finalize, type AggState, type EncodedState } from "../../src/core/aggregate.js";
import { canonicalString, createHllState, createQuantileState, hllAdd, quantileAdd, type HllState, type QuantileState } from "../../src/core/sketch.js";
import type { StreamRecord } from "../../src/nats/codec.js";
import {
  applyRecord,
  applyWatermark,
  createSpeedState,
  heldEvents,
  querySpeed,
  speedCatalogOf,
  idHash,
  type RangeQuery,
  type Segment,
  type SpeedAnswer,
  type SpeedState,
} from "../../src/actors/speed_state.js";
import { prng } from "./prng.js";

const PV = "pageviews";
/** A source with no metric: its events are deduplicated and held, but add to no count. */
const CLICKS = "clicks";
const MINUTE = 60_000;

const CATALOG = parseCatalog(
  {
    sources: {
      pageviews: {
        fields: { id: "string", article_id: "string", user_id: "string", ts: "timestamp", load_ms: "int?", score: "float?", country: "string?" },
        idField: "id",
        timeField: "ts",
        partitionKey: "article_id",
      },
      clicks: { fields: { id: "string", article_id: "string", user_id: "string", ts: "timestamp" }, idField: "id", timeField: "ts", partitionKey: "article_id" },
    },
    metrics: {
      article_views: { source: PV, groupBy: ["article_id"], window: "1m", aggregates: { views: "count" } },
      user_views: { source: PV, groupBy: ["user_id"], window: "5m", aggregates: { views: "count" } },
      /** A filter with and/or/not/in and comparisons on optional fields, and one aggregate of every kind but avg. */
      article_load: {
        source: PV,
        groupBy: ["article_id"],
        window: "1m",
        filter: {
          and: [{ or: [{ field: "load_ms", op: "ge", value: 100 }, { field: "country", op: "in", values: ["de", "fr"] }] }, { not: { field: "user_id", op: "eq", value: "u2" } }],
        },
        aggregates: {
          views: "count",
          load_total: { sum: "load_ms" },
          load_min: { min: "load_ms" },
          score_max: { max: "score" },
          users: { distinct: "user_id" },
          load_q: { quantiles: "load_ms" },
          score_q: { quantiles: "score" },
        },
      },
      /** A global metric (no group-by field) whose filter lets nulls through: not(load_ms > 300). */
      global_fast: {
        source: PV,
        window: "5m",
        filter: { not: { field: "load_ms", op: "gt", value: 300 } },
        aggregates: { views: "count", countries: { distinct: "country" }, load_max: { max: "load_ms" }, score_min: { min: "score" }, load_avg: { avg: "load_ms" } },
      },
      /** Two group-by fields. */
      article_user: { source: PV, groupBy: ["article_id", "user_id"], window: "1m", aggregates: { views: "count", load_total: { sum: "load_ms" } } },
    },
  },
  "speed-state.test",
);
const SC = speedCatalogOf(CATALOG);
/** metric name → definition fingerprint (speed states are kept per definition). */
const FPS: Record<string, string> = Object.fromEntries([...CATALOG.metrics.values()].map((m) => [m.name, metricFingerprint(m)]));
type Ask = Omit<RangeQuery, "definition">;
/** querySpeed for metric `q.metric` as the catalog defines it. */
const ask = (state: SpeedState, q: Ask): SpeedAnswer => querySpeed(state, SC, { ...q, definition: FPS[q.metric] ?? `no-such-definition` });
const metricDef = (name: string): MetricDef => CATALOG.metrics.get(name)!;

/** 2026-06-08T14:00:00Z, the start of a 1m and of a 5m window. */
const T0 = Date.UTC(2026, 5, 8, 14, 0, 0);
const HOUR = 60 * MINUTE;
const BIG_HORIZON = 1_000_000;

interface Extra {
  load_ms?: number | null;
  score?: number | null;
  country?: string | null;
}

/** An event record; optional fields null unless given (as ingest normalises them). */
function ev(id: string, article: string, ts: number, user = "u1", source = PV, extra: Extra = {}): StreamRecord {
  const v: Record<string, FieldValue> = { id, article_id: article, user_id: user, ts };
  if (source === PV) Object.assign(v, { load_ms: null, score: null, country: null }, extra);
  return { k: "e", s: source, id, ts, v };
}
const barrier = (r: number): StreamRecord => ({ k: "b", r });

/** The answer of a query expected to be answered (not "moved on"). */
function answered(a: SpeedAnswer, what: string): Extract<SpeedAnswer, { kind: "value" }> {
  assert.equal(a.kind, "value", `${what}: expected a value, got ${JSON.stringify(a)}`);
  if (a.kind !== "value") throw new Error("unreachable");
  return a;
}

/** The count of one key (0 when the answer has no state for it) and the events above the cut. */
function value(state: SpeedState, q: Partial<Omit<Ask, "keys">> & { run: number; key: string }): { value: number; eventsAboveCut: number } {
  const { key, ...rest } = q;
  const metric = q.metric ?? "article_views";
  const a = answered(ask(state, { metric, fromMs: T0 - HOUR, toMs: T0 + HOUR, series: false, ...rest, keys: [key] }), `run ${q.run}`);
  assert.ok(a.keys.length <= 1, `one key asked, ${a.keys.length} answered`);
  const hit = a.keys.find(([k]) => k === key);
  const n = hit ? finalize(decodeState(metricDef(metric), hit[1]), 0, 0)! : 0;
  if (hit) assert.ok(n > 0, "a key is answered only when it has events in the range");
  return { value: n, eventsAboveCut: a.eventsAboveCut };
}

/** The event count per key and window of a metric in a segment. */
function counts(seg: Segment, metric: string): Map<string, Map<number, number>> | undefined {
  const byKey = seg.states.get(FPS[metric]!);
  return byKey && new Map([...byKey].map(([k, byW]) => [k, new Map([...byW].map(([w, st]) => [w, st.n]))]));
}

/** Applies records at consecutive sequences starting at `firstSeq`; returns the outcomes. */
function applyAll(state: SpeedState, firstSeq: number, records: StreamRecord[]): string[] {
  return records.map((r, i) => applyRecord(state, firstSeq + i, r, SC));
}

test("events count into the open segment per (metric, key, window)", () => {
  const s = createSpeedState(0, BIG_HORIZON);
  const outcomes = applyAll(s, 1, [
    ev("a", "x", T0, "u1"),
    ev("b", "x", T0 + 59_999, "u2"),
    ev("c", "x", T0 + MINUTE, "u1"),
    ev("d", "y", T0 + 1_000, "u1"),
    ev("e", "y", T0 + 5 * MINUTE, "u1"),
  ]);
  assert.deepEqual(outcomes, ["counted", "counted", "counted", "counted", "counted"]);
  assert.equal(s.segments.length, 1);
  const seg = s.segments[0]!;
  assert.equal(seg.events, 5);
  assert.equal(seg.firstSeq, 1);
  assert.equal(seg.lastSeq, 5);
  assert.equal(seg.closedByRun, null);
  assert.deepEqual(
    counts(seg, "article_views"),
    new Map([
      ["x", new Map([[T0, 2], [T0 + MINUTE, 1]])],
      ["y", new Map([[T0, 1], [T0 + 5 * MINUTE, 1]])],
    ]),
  );
  assert.deepEqual(
    counts(seg, "user_views"),
    new Map([
      ["u1", new Map([[T0, 3], [T0 + 5 * MINUTE, 1]])],
      ["u2", new Map([[T0, 1]])],
    ]),
  );
  // A count-only metric's state is its event count and nothing else.
  assert.deepEqual(seg.states.get(FPS.article_views!)!.get("x")!.get(T0), { n: 2, parts: [{ k: "count" }] } satisfies AggState);
  // article_load's filter wants load_ms ≥ 100 or a country in (de, fr): none of these events has either.
  assert.equal(seg.states.has(FPS.article_load!), false, "no state for a metric whose filter matched nothing");
  // global_fast's filter is not(load_ms > 300): true for a null load_ms.
  assert.deepEqual(counts(seg, "global_fast"), new Map([["", new Map([[T0, 4], [T0 + 5 * MINUTE, 1]])]]));
  // Windows whose start lies in [from, to) count; the others do not.
  assert.equal(value(s, { run: 0, key: "x", fromMs: T0, toMs: T0 + MINUTE }).value, 2);
  assert.equal(value(s, { run: 0, key: "x", fromMs: T0 + 1, toMs: T0 + 2 * MINUTE }).value, 1);
  assert.equal(value(s, { run: 0, key: "x" }).value, 3);
  assert.equal(value(s, { run: 0, key: "u1", metric: "user_views", fromMs: T0, toMs: T0 + 5 * MINUTE }).value, 3);
  assert.equal(value(s, { run: 0, key: "nobody" }).value, 0);
  // A definition the actor does not compute is answered as such (the caller says the actor must rebuild).
  assert.deepEqual(ask(s, { run: 0, metric: "no_such_metric", keys: ["x"], fromMs: T0, toMs: T0 + HOUR, series: false }), { kind: "missing_definition", definition: "no-such-definition" });
  assert.equal(heldEvents(s), 5);
  assert.equal(s.appliedSeq, 5);
});

/** The answer as key → [total, series], checking that no key is answered twice. */
function byKey(a: Extract<SpeedAnswer, { kind: "value" }>): Map<string, { total: EncodedState; series: [number, EncodedState][] | null }> {
  const out = new Map<string, { total: EncodedState; series: [number, EncodedState][] | null }>();
  for (const [k, total, series] of a.keys) {
    assert.ok(!out.has(k), `key ${JSON.stringify(k)} answered twice`);
    out.set(k, { total, series });
  }
  return out;
}
/** finalize() of aggregate `name` of an encoded state of `metric`. */
function fin(metric: string, e: EncodedState, name: string, q = 0.5): number | null {
  const def = metricDef(metric);
  return finalize(decodeState(def, e), def.aggregates.findIndex((a) => a.name === name), q);
}
/** The decoded part of aggregate `name`. */
function part(metric: string, e: EncodedState, name: string) {
  const def = metricDef(metric);
  return decodeState(def, e).parts[def.aggregates.findIndex((a) => a.name === name)];
}
const hllOf = (...texts: string[]): HllState => {
  const s = createHllState();
  for (const t of texts) hllAdd(s, t);
  return s;
};
const quantilesOf = (...xs: number[]): QuantileState => {
  const s = createQuantileState();
  for (const x of xs) quantileAdd(s, x);
  return s;
};

test("filters and aggregates: hand-computed totals and series per key, for 0, 1 and 2 group-by fields", () => {
  const s = createSpeedState(0, BIG_HORIZON);
  applyAll(s, 1, [
    ev("a", "x", T0, "u1", PV, { load_ms: 120, score: 0.5 }), // article_load: load ≥ 100
    ev("b", "x", T0 + 1_000, "u2", PV, { load_ms: 500, country: "de" }), // article_load: excluded, user u2; global_fast: load > 300
    ev("c", "x", T0 + MINUTE, "u3", PV, { score: -1.25, country: "fr" }), // article_load: country in (de, fr); null load_ms
    ev("d", "x", T0 + MINUTE + 5, "u1", PV, { load_ms: 50, score: 2, country: "it" }), // article_load: neither
    ev("e", "y", T0, "u3", PV, { load_ms: 100 }), // article_load: load ≥ 100 (the bound)
    ev("f", "x", T0 + 2 * MINUTE, "u1", PV, { load_ms: 300, score: 0.25, country: "de" }), // article_load: both
    ev("g", "x", T0, "u1", CLICKS), // no metric reads clicks
  ]);
  const range = { run: 0, fromMs: T0, toMs: T0 + 3 * MINUTE };

  // One group-by field, every key, with series.
  const load = byKey(answered(ask(s, { ...range, metric: "article_load", keys: null, series: true }), "article_load"));
  assert.deepEqual([...load.keys()].sort(), ["x", "y"]);
  const x = load.get("x")!;
  assert.equal(fin("article_load", x.total, "views"), 3, "a, c, f");
  assert.equal(fin("article_load", x.total, "load_total"), 420, "120 + 300; c's null load is skipped");
  assert.equal(fin("article_load", x.total, "load_min"), 120);
  assert.equal(fin("article_load", x.total, "score_max"), 0.5);
  assert.deepEqual(part("article_load", x.total, "users"), { k: "distinct", hll: hllOf("u1", "u3") });
  assert.deepEqual(part("article_load", x.total, "load_q"), { k: "quantiles", b: quantilesOf(120, 300) });
  assert.deepEqual(part("article_load", x.total, "score_q"), { k: "quantiles", b: quantilesOf(0.5, -1.25, 0.25) });
  assert.ok(x.series, "series asked for");
  assert.deepEqual(
    x.series.map(([w, st]) => [w, fin("article_load", st, "views"), fin("article_load", st, "load_total"), fin("article_load", st, "load_min"), fin("article_load", st, "score_max")]),
    [
      [T0, 1, 120, 120, 0.5],
      [T0 + MINUTE, 1, 0, null, -1.25],
      [T0 + 2 * MINUTE, 1, 300, 300, 0.25],
    ],
    "windows ascending, one state each",
  );
  const y = load.get("y")!;
  assert.deepEqual(
    ["views", "load_total", "load_min", "score_max", "score_q"].map((n) => fin("article_load", y.total, n)),
    [1, 100, 100, null, null],
  );

  // A key list (with an unknown key and a repeat) and a narrower range, no series.
  const some = answered(ask(s, { run: 0, metric: "article_load", keys: ["x", "nope", "x"], fromMs: T0 + MINUTE, toMs: T0 + HOUR, series: false }), "key list");
  assert.equal(some.keys.length, 1);
  const [k, total, series] = some.keys[0]!;
  assert.equal(k, "x");
  assert.equal(series, null);
  assert.equal(fin("article_load", total, "views"), 2, "c, f");
  assert.deepEqual(part("article_load", total, "users"), { k: "distinct", hll: hllOf("u3", "u1") });

  // No group-by field: one key, "".
  const global = byKey(answered(ask(s, { ...range, metric: "global_fast", keys: null, series: false }), "global_fast"));
  assert.deepEqual([...global.keys()], [""]);
  const g = global.get("")!.total;
  assert.equal(fin("global_fast", g, "views"), 5, "all but b (load 500); c's null load passes not(load_ms > 300)");
  assert.deepEqual(part("global_fast", g, "countries"), { k: "distinct", hll: hllOf("fr", "it", "de") });
  assert.equal(fin("global_fast", g, "load_max"), 300);
  assert.equal(fin("global_fast", g, "score_min"), -1.25);
  assert.equal(fin("global_fast", g, "load_avg"), (120 + 50 + 100 + 300) / 4);

  // Two group-by fields: keys are length-prefixed values.
  const pairs = byKey(answered(ask(s, { ...range, metric: "article_user", keys: null, series: false }), "article_user"));
  assert.deepEqual(
    Object.fromEntries([...pairs].map(([key, st]) => [key, [fin("article_user", st.total, "views"), fin("article_user", st.total, "load_total")]])),
    { "1:x2:u1": [3, 470], "1:x2:u2": [1, 500], "1:x2:u3": [1, 0], "1:y2:u3": [1, 100] },
  );
  assert.equal(answered(ask(s, { ...range, metric: "article_user", keys: ["1:x2:u2"], series: false }), "pair").keys.length, 1);
  assert.equal(answered(ask(s, { ...range, metric: "article_views", keys: null, series: false }), "all").eventsAboveCut, 7, "clicks events are held too");
});

test("a barrier closes the open segment and opens the next", () => {
  const s = createSpeedState(0, BIG_HORIZON);
  applyAll(s, 1, [ev("a", "x", T0), ev("b", "x", T0)]);
  assert.equal(applyRecord(s, 3, barrier(1), SC), "barrier");
  assert.equal(s.segments.length, 2);
  assert.deepEqual(
    s.segments.map((g) => [g.openedAfterRun, g.closedByRun, g.events]),
    [
      [0, 1, 2],
      [1, null, 0],
    ],
  );
  applyAll(s, 4, [ev("c", "x", T0), ev("d", "y", T0)]);
  assert.deepEqual(
    s.segments.map((g) => [g.openedAfterRun, g.closedByRun, g.events, g.firstSeq, g.lastSeq]),
    [
      [0, 1, 2, 1, 2],
      [1, null, 2, 4, 5],
    ],
  );
  // A second copy of barrier 1 (or an older run) opens nothing.
  assert.equal(applyRecord(s, 6, barrier(1), SC), "stale_barrier");
  assert.equal(applyRecord(s, 7, barrier(0), SC), "stale_barrier");
  assert.equal(s.segments.length, 2);
  assert.equal(s.appliedSeq, 7, "a stale barrier still advances the applied sequence");
  assert.equal(applyRecord(s, 8, barrier(2), SC), "barrier");
  assert.deepEqual(
    s.segments.map((g) => [g.openedAfterRun, g.closedByRun]),
    [
      [0, 1],
      [1, 2],
      [2, null],
    ],
  );
});

/** Three closed segments of 2, 3 and 1 events and an open one of 4. */
function threeBarriers(): SpeedState {
  const s = createSpeedState(0, BIG_HORIZON);
  applyAll(s, 1, [
    ev("a1", "x", T0),
    ev("a2", "y", T0),
    barrier(1),
    ev("b1", "x", T0),
    ev("b2", "x", T0 + MINUTE),
    ev("b3", "y", T0),
    barrier(2),
    ev("c1", "x", T0),
    barrier(3),
    ev("d1", "x", T0),
    ev("d2", "x", T0),
    ev("d3", "x", T0 + 2 * MINUTE),
    ev("d4", "y", T0),
  ]);
  return s;
}

test("applyWatermark drops exactly the segments closed at or before its run", () => {
  const s = threeBarriers();
  assert.equal(heldEvents(s), 10);
  assert.equal(applyWatermark(s, 2), 2);
  assert.equal(s.watermarkRun, 2);
  assert.deepEqual(
    s.segments.map((g) => [g.openedAfterRun, g.closedByRun, g.events]),
    [
      [2, 3, 1],
      [3, null, 4],
    ],
  );
  assert.equal(heldEvents(s), 5);
  // Applying it again, or an older one, changes nothing.
  assert.equal(applyWatermark(s, 2), 0);
  assert.equal(applyWatermark(s, 1), 0);
  assert.equal(s.watermarkRun, 2);
  assert.equal(heldEvents(s), 5);
  assert.equal(applyWatermark(s, 3), 1);
  assert.deepEqual(
    s.segments.map((g) => [g.openedAfterRun, g.closedByRun, g.events]),
    [[3, null, 4]],
  );
  assert.equal(heldEvents(s), 4);
  // The open segment is never dropped, even by a watermark ahead of every barrier read.
  assert.equal(applyWatermark(s, 9), 0);
  assert.equal(s.segments.length, 1);
  assert.equal(heldEvents(s), 4);
});

test("querySpeed at run N counts only segments opened at or after barrier N, and answers moved_on once the watermark is past N", () => {
  const s = threeBarriers();
  // x: a1 | b1 b2 | c1 | d1 d2 d3 ; every segment counts above cut 0.
  assert.deepEqual(value(s, { run: 0, key: "x" }), { value: 7, eventsAboveCut: 10 });
  assert.deepEqual(value(s, { run: 1, key: "x" }), { value: 6, eventsAboveCut: 8 });
  assert.deepEqual(value(s, { run: 2, key: "x" }), { value: 4, eventsAboveCut: 5 });
  assert.deepEqual(value(s, { run: 3, key: "x" }), { value: 3, eventsAboveCut: 4 });
  assert.deepEqual(value(s, { run: 3, key: "y" }), { value: 1, eventsAboveCut: 4 });

  applyWatermark(s, 2);
  assert.deepEqual(ask(s, { run: 0, metric: "article_views", keys: ["x"], fromMs: T0 - HOUR, toMs: T0 + HOUR, series: false }), { kind: "moved_on", run: 2 });
  assert.deepEqual(ask(s, { run: 1, metric: "article_views", keys: null, fromMs: T0 - HOUR, toMs: T0 + HOUR, series: true }), { kind: "moved_on", run: 2 });
  // At and above the watermark the answers are what they were before the drop.
  assert.deepEqual(value(s, { run: 2, key: "x" }), { value: 4, eventsAboveCut: 5 });
  assert.deepEqual(value(s, { run: 3, key: "x" }), { value: 3, eventsAboveCut: 4 });
});

test("an actor that has not read barrier N yet answers 0 above cut N", () => {
  const s = createSpeedState(0, BIG_HORIZON);
  applyAll(s, 1, [ev("a", "x", T0), ev("b", "x", T0)]);
  // Barrier 1 is in the stream but not applied: everything held is below cut 1.
  assert.deepEqual(value(s, { run: 1, key: "x" }), { value: 0, eventsAboveCut: 0 });
  assert.deepEqual(value(s, { run: 0, key: "x" }), { value: 2, eventsAboveCut: 2 });
  // Same once the watermark of run 1 has arrived ahead of the barrier.
  applyWatermark(s, 1);
  assert.deepEqual(value(s, { run: 1, key: "x" }), { value: 0, eventsAboveCut: 0 });
  assert.equal(heldEvents(s), 2, "the events below the unread barrier are kept until the barrier is read");
});

test("a redelivered sequence is ignored", () => {
  const s = createSpeedState(0, BIG_HORIZON);
  applyAll(s, 10, [ev("a", "x", T0), ev("b", "x", T0)]);
  // An old sequence with an unseen id and a barrier: both are redeliveries, neither applies.
  assert.equal(applyRecord(s, 11, ev("zz", "x", T0), SC), "redelivered");
  assert.equal(applyRecord(s, 5, barrier(1), SC), "redelivered");
  assert.equal(applyRecord(s, 10, ev("a", "x", T0), SC), "redelivered");
  assert.equal(s.appliedSeq, 11);
  assert.equal(s.segments.length, 1);
  assert.equal(s.skippedDuplicates, 0, "a redelivery is not an id duplicate");
  assert.deepEqual(value(s, { run: 0, key: "x" }), { value: 2, eventsAboveCut: 2 });
  assert.equal(s.seenIds.has(idHash(PV, "zz")), false);
});

test("a copy of an id is skipped whether its first copy came before or after a barrier", () => {
  const s = createSpeedState(0, BIG_HORIZON);
  assert.deepEqual(
    applyAll(s, 1, [
      ev("a", "x", T0),
      ev("a", "x", T0), // copy in the same segment
      ev("b", "x", T0),
      barrier(1),
      ev("b", "x", T0), // copy above the cut of a first copy below it
      ev("c", "x", T0),
      ev("c", "x", T0 + MINUTE), // copy above the cut of a first copy above it (other window)
      ev("a", "x", T0, "u1", CLICKS), // same id, other source: a different event
    ]),
    ["counted", "duplicate_id", "counted", "barrier", "duplicate_id", "counted", "duplicate_id", "counted"],
  );
  assert.equal(s.skippedDuplicates, 3);
  assert.deepEqual(value(s, { run: 0, key: "x" }), { value: 3, eventsAboveCut: 4 });
  assert.deepEqual(value(s, { run: 1, key: "x" }), { value: 1, eventsAboveCut: 2 });
  assert.equal(value(s, { run: 1, key: "x", fromMs: T0 + MINUTE, toMs: T0 + 2 * MINUTE }).value, 0, "the skipped copy adds to no window");

  // The segment of the first copies is dropped; the ids are still remembered.
  applyWatermark(s, 1);
  assert.equal(applyRecord(s, 9, ev("a", "x", T0), SC), "duplicate_id");
  assert.deepEqual(value(s, { run: 1, key: "x" }), { value: 1, eventsAboveCut: 2 });
  assert.equal(s.skippedDuplicates, 4);
});

test("the dedupe horizon forgets the oldest id first: with horizon 2 a third id evicts the first", () => {
  const s = createSpeedState(0, 2);
  assert.deepEqual(applyAll(s, 1, [ev("a", "x", T0), ev("b", "x", T0)]), ["counted", "counted"]);
  assert.equal(applyRecord(s, 3, ev("a", "x", T0), SC), "duplicate_id", "a is still inside the horizon");
  assert.equal(applyRecord(s, 4, ev("c", "x", T0), SC), "counted");
  assert.deepEqual([...s.seenIds], [idHash(PV, "b"), idHash(PV, "c")]);
  // a fell out of the horizon: a late copy counts (the next batch run corrects it).
  assert.equal(applyRecord(s, 5, ev("a", "x", T0), SC), "counted");
  assert.deepEqual([...s.seenIds], [idHash(PV, "c"), idHash(PV, "a")]);
  assert.equal(applyRecord(s, 6, ev("c", "x", T0), SC), "duplicate_id");
  assert.equal(applyRecord(s, 7, ev("b", "x", T0), SC), "counted");
  assert.deepEqual(value(s, { run: 0, key: "x" }), { value: 5, eventsAboveCut: 5 });
  assert.equal(s.skippedDuplicates, 2);
});

test("with a dedupe horizon of 0 every copy counts", () => {
  const s = createSpeedState(0, 0);
  assert.deepEqual(applyAll(s, 1, [ev("a", "x", T0), ev("a", "x", T0)]), ["counted", "counted"]);
  assert.equal(s.seenIds.size, 0);
  assert.equal(value(s, { run: 0, key: "x" }).value, 2);
});

test("a watermark read before its barrier (actor lagging) drops the segment when the barrier arrives", () => {
  const s = createSpeedState(0, BIG_HORIZON);
  applyAll(s, 1, [ev("a", "x", T0), ev("b", "x", T0)]);
  assert.equal(applyWatermark(s, 2), 0, "nothing is closed yet, so nothing drops");
  assert.equal(s.watermarkRun, 2);
  assert.equal(heldEvents(s), 2);

  assert.equal(applyRecord(s, 3, barrier(1), SC), "barrier");
  assert.deepEqual(s.segments.map((g) => [g.openedAfterRun, g.closedByRun]), [[1, null]], "segment closed by 1 ≤ watermark 2 is dropped at once");
  assert.equal(heldEvents(s), 0);
  applyAll(s, 4, [ev("c", "x", T0)]);
  assert.deepEqual(value(s, { run: 2, key: "x" }), { value: 0, eventsAboveCut: 0 }, "c is below cut 2");

  assert.equal(applyRecord(s, 5, barrier(2), SC), "barrier");
  assert.deepEqual(s.segments.map((g) => [g.openedAfterRun, g.closedByRun]), [[2, null]]);
  assert.equal(heldEvents(s), 0);
  applyAll(s, 6, [ev("d", "x", T0)]);
  assert.deepEqual(value(s, { run: 2, key: "x" }), { value: 1, eventsAboveCut: 1 });

  assert.equal(applyRecord(s, 7, barrier(3), SC), "barrier");
  assert.equal(s.segments.length, 2, "barrier 3 is past the watermark: its segment stays");
  assert.equal(heldEvents(s), 1);
});

test("a state restored at a cut starts from that cut's barrier", () => {
  // host.ts: no snapshot, watermark 4 with cut 20 → replay from seq 20, the barrier itself.
  const s = createSpeedState(3, BIG_HORIZON, 19);
  applyWatermark(s, 4);
  assert.equal(applyRecord(s, 19, ev("old", "x", T0), SC), "redelivered");
  assert.equal(applyRecord(s, 20, barrier(4), SC), "barrier");
  applyAll(s, 21, [ev("n1", "x", T0), ev("n2", "x", T0)]);
  assert.deepEqual(s.segments.map((g) => [g.openedAfterRun, g.closedByRun, g.events]), [[4, null, 2]]);
  assert.deepEqual(value(s, { run: 4, key: "x" }), { value: 2, eventsAboveCut: 2 });
});

// ---------------------------------------------------------------------------
// Property: on random streams the speed answer is an independent recount.

interface Applied {
  readonly seq: number;
  readonly record: StreamRecord;
}
type Ev = StreamRecord & { k: "e" };

const ARTICLES = ["a0", "a:1", "日本", "12"];
const USERS = ["u0", "u1", "u2"];
const COUNTRIES = ["de", "fr", "it", "日本"];
const SOURCES = [PV, PV, PV, CLICKS];

const get = (e: Ev, field: string): FieldValue => e.v[field] ?? null;
const lengthPrefixed = (...values: string[]) => values.map((v) => `${Buffer.byteLength(v, "utf8")}:${v}`).join("");

/**
 * Each metric of CATALOG as this test reads it, written out by hand: which
 * events count (the filter, with a comparison on a null value false), the key,
 * and the window size.
 */
interface Spec {
  readonly windowMs: number;
  match(e: Ev): boolean;
  key(e: Ev): string;
  /** Keys a query may ask for. */
  readonly keys: readonly string[];
}
const SPECS: Record<string, Spec> = {
  article_views: { windowMs: MINUTE, match: () => true, key: (e) => String(e.v.article_id), keys: ARTICLES },
  user_views: { windowMs: 5 * MINUTE, match: () => true, key: (e) => String(e.v.user_id), keys: USERS },
  article_load: {
    windowMs: MINUTE,
    match: (e) => {
      const load = get(e, "load_ms") as number | null;
      const country = get(e, "country");
      return ((load !== null && load >= 100) || country === "de" || country === "fr") && e.v.user_id !== "u2";
    },
    key: (e) => String(e.v.article_id),
    keys: ARTICLES,
  },
  global_fast: {
    windowMs: 5 * MINUTE,
    match: (e) => {
      const load = get(e, "load_ms") as number | null;
      return !(load !== null && load > 300);
    },
    key: () => "",
    keys: [""],
  },
  article_user: {
    windowMs: MINUTE,
    match: () => true,
    key: (e) => lengthPrefixed(String(e.v.article_id), String(e.v.user_id)),
    keys: ARTICLES.flatMap((a) => USERS.map((u) => lengthPrefixed(a, u))),
  },
};
assert.deepEqual(Object.keys(SPECS).sort(), [...CATALOG.metrics.keys()].sort(), "fixture: a spec per metric");

/** First applied copy of every (source, id), by position in `applied`. */
function firstCopies(applied: readonly Applied[]): Map<number, Ev> {
  const seen = new Set<string>();
  const firsts = new Map<number, Ev>();
  applied.forEach(({ record }, i) => {
    if (record.k !== "e") return;
    const key = `${record.s}:${record.id}`;
    if (seen.has(key)) return;
    seen.add(key);
    firsts.set(i, record);
  });
  return firsts;
}

/** Position of the first applied barrier of `run` (-1 for run 0, the stream start); undefined when not applied. */
function cutPosition(applied: readonly Applied[], run: number): number | undefined {
  if (run === 0) return -1;
  const i = applied.findIndex(({ record }) => record.k === "b" && record.r === run);
  return i < 0 ? undefined : i;
}

interface Expected {
  readonly eventsAboveCut: number;
  /** key → window → the first copies it holds, in stream order */
  readonly keys: Map<string, Map<number, Ev[]>>;
}

function expectedAnswer(applied: readonly Applied[], q: Ask): Expected {
  const keys = new Map<string, Map<number, Ev[]>>();
  const cut = cutPosition(applied, q.run);
  if (cut === undefined) return { eventsAboveCut: 0, keys };
  const spec = SPECS[q.metric]!;
  const wanted = q.keys ? new Set(q.keys) : null;
  let eventsAboveCut = 0;
  for (const [i, e] of firstCopies(applied)) {
    if (i <= cut) continue;
    eventsAboveCut++;
    if (e.s !== PV || !spec.match(e)) continue;
    const key = spec.key(e);
    if (wanted && !wanted.has(key)) continue;
    const w = Math.floor(e.ts / spec.windowMs) * spec.windowMs;
    if (w < q.fromMs || w >= q.toMs) continue;
    let byWindow = keys.get(key);
    if (!byWindow) keys.set(key, (byWindow = new Map()));
    byWindow.set(w, [...(byWindow.get(w) ?? []), e]);
  }
  return { eventsAboveCut, keys };
}

/** Sorted [key, value] pairs of an encoded sketch part: equal states, whatever order their maps were filled in. */
/** A sketch part of an encoded state (two parallel sorted arrays) as sorted [key, value] pairs. */
const sortedPairs = (encoded: unknown): [number, number][] => {
  const [keys, values] = encoded as [number[], number[]];
  return keys.map((k, i): [number, number] => [k, values[i]!]);
};
const pairsOf = (pairs: [number, number][]): [number, number][] => [...pairs].sort(([a], [b]) => a - b);

/**
 * An encoded state against the events it should hold: count, sum, min, max and
 * avg as plain numbers computed here; distinct and quantiles as states built
 * straight from core/sketch over the same values, compared register by register
 * and bucket by bucket.
 */
function assertState(metric: MetricDef, enc: EncodedState, events: readonly Ev[], what: string) {
  const st = decodeState(metric, enc);
  assert.equal(st.n, events.length, `${what}: n`);
  metric.aggregates.forEach((a, i) => {
    const where = `${what}: ${a.name}`;
    const values = a.field === null ? [] : events.map((e) => get(e, a.field!)).filter((v): v is string | number | boolean => v !== null);
    const nums = values as number[];
    const sum = nums.reduce((x, y) => x + y, 0);
    switch (a.kind) {
      case "count":
        assert.equal(finalize(st, i, 0), events.length, where);
        break;
      case "sum":
        assert.equal(finalize(st, i, 0), sum, where);
        break;
      case "min":
        assert.equal(finalize(st, i, 0), nums.length ? Math.min(...nums) : null, where);
        break;
      case "max":
        assert.equal(finalize(st, i, 0), nums.length ? Math.max(...nums) : null, where);
        break;
      case "avg":
        assert.equal(finalize(st, i, 0), nums.length ? sum / nums.length : null, where);
        break;
      case "distinct": {
        const hll: HllState = new Map();
        for (const v of values) hllAdd(hll, canonicalString(v));
        assert.deepEqual(sortedPairs(enc[i + 1]), pairsOf([...hll]), where);
        break;
      }
      case "quantiles": {
        const b: QuantileState = new Map();
        for (const v of nums) quantileAdd(b, v);
        assert.deepEqual(sortedPairs(enc[i + 1]), pairsOf([...b]), where);
        break;
      }
    }
  });
}

function assertAnswer(got: SpeedAnswer, q: Ask, want: Expected, what: string) {
  const a = answered(got, what);
  assert.equal(a.eventsAboveCut, want.eventsAboveCut, `${what}: eventsAboveCut`);
  const keys = byKey(a);
  assert.deepEqual([...keys.keys()].sort(), [...want.keys.keys()].sort(), `${what}: keys answered`);
  const metric = metricDef(q.metric);
  for (const [key, windows] of want.keys) {
    const g = keys.get(key)!;
    assertState(metric, g.total, [...windows.values()].flat(), `${what}: total of ${JSON.stringify(key)}`);
    if (!q.series) {
      assert.equal(g.series, null, `${what}: no series asked for`);
      continue;
    }
    assert.ok(g.series, `${what}: series asked for`);
    assert.deepEqual(g.series.map(([w]) => w), [...windows.keys()].sort((x, y) => x - y), `${what}: windows of ${JSON.stringify(key)}`);
    for (const [w, st] of g.series) assertState(metric, st, windows.get(w)!, `${what}: window ${w} of ${JSON.stringify(key)}`);
  }
}

/** Events held: first copies after the newest applied barrier whose run the watermark covers. */
function expectedHeld(applied: readonly Applied[], watermark: number): number {
  let cut = -1;
  let best = 0;
  applied.forEach(({ record }, i) => {
    if (record.k === "b" && record.r <= watermark && record.r > best) {
      best = record.r;
      cut = i;
    }
  });
  let n = 0;
  for (const i of firstCopies(applied).keys()) if (i > cut) n++;
  return n;
}

/** Random optional fields: sometimes null, sometimes absent, values on both sides of the filters' bounds. */
function randomExtra(rnd: ReturnType<typeof prng>): Extra & Record<string, unknown> {
  const extra: Extra & Record<string, unknown> = {
    load_ms: rnd.chance(0.2) ? null : rnd.pick([0, 50, 99, 100, 101, 300, 301, rnd.int(0, 2000)]),
    score: rnd.chance(0.25) ? null : rnd.pick([(rnd.next() - 0.5) * 10, rnd.int(-3, 3), 0.5]),
    country: rnd.chance(0.3) ? null : rnd.pick(COUNTRIES),
  };
  return extra;
}
function randomEvent(rnd: ReturnType<typeof prng>, id: string, article: string, ts: number, user: string, source: string): StreamRecord {
  const r = ev(id, article, ts, user, source, randomExtra(rnd)) as Ev;
  // An absent optional field reads as null.
  if (source === PV && rnd.chance(0.1)) delete r.v[rnd.pick(["load_ms", "score", "country"])];
  return r;
}

test("property: on random streams, querySpeed equals a recount of first copies above the cut, for every metric, aggregate, key list and series", () => {
  const TRIALS = 150;
  const STEPS = 250;
  const metrics = [...Object.keys(SPECS), "unknown_metric"];
  for (let trial = 1; trial <= TRIALS; trial++) {
    const rnd = prng(trial);
    const state = createSpeedState(0, BIG_HORIZON);
    /** What the stream holds, written ahead of the actor. */
    const stream: Applied[] = [];
    const applied: Applied[] = [];
    const barrierRuns: number[] = [];
    let lastSeq = 0;
    let lastRun = 0;
    let nextId = 0;
    let watermark = 0;
    const ctx = (step: number, what: string) => `seed ${trial}, step ${step}: ${what}`;

    for (let step = 0; step < STEPS; step++) {
      const dice = rnd.next();
      if (dice < 0.4) {
        // The producer writes an event: a new id, or a late copy of an old one (maybe with another time and other values).
        lastSeq += rnd.int(1, 3);
        const olds = stream.filter((a) => a.record.k === "e");
        let record: StreamRecord;
        if (olds.length > 0 && rnd.chance(0.25)) {
          const orig = rnd.pick(olds).record as Ev;
          record = rnd.chance(0.5) ? orig : randomEvent(rnd, orig.id, String(orig.v.article_id), orig.ts + rnd.int(0, 3) * MINUTE, String(orig.v.user_id), orig.s);
        } else {
          record = randomEvent(rnd, `e${nextId++}`, rnd.pick(ARTICLES), T0 + rnd.int(0, 12 * MINUTE), rnd.pick(USERS), rnd.pick(SOURCES));
        }
        stream.push({ seq: lastSeq, record });
      } else if (dice < 0.48) {
        // The coordinator writes a barrier: usually the next run, sometimes skipping one, sometimes a stale repeat.
        lastSeq += 1;
        if (lastRun > 0 && rnd.chance(0.15)) {
          stream.push({ seq: lastSeq, record: barrier(rnd.int(1, lastRun)) });
        } else {
          lastRun += rnd.chance(0.2) ? 2 : 1;
          barrierRuns.push(lastRun);
          stream.push({ seq: lastSeq, record: barrier(lastRun) });
        }
      } else if (dice < 0.85) {
        // The actor reads the next record.
        const next = stream[applied.length];
        if (next) {
          const outcome = applyRecord(state, next.seq, next.record, SC);
          assert.notEqual(outcome, "redelivered", ctx(step, "a new sequence is never a redelivery"));
          applied.push(next);
        }
      } else if (dice < 0.92) {
        // A redelivery of something already applied changes nothing.
        if (applied.length > 0) {
          const again = rnd.pick(applied);
          const before = { seq: state.appliedSeq, held: heldEvents(state), dup: state.skippedDuplicates, segs: state.segments.length };
          assert.equal(applyRecord(state, again.seq, again.record, SC), "redelivered", ctx(step, `redelivery of seq ${again.seq}`));
          assert.deepEqual({ seq: state.appliedSeq, held: heldEvents(state), dup: state.skippedDuplicates, segs: state.segments.length }, before, ctx(step, "redelivery"));
        }
      } else if (barrierRuns.length > 0) {
        // A watermark of a run whose barrier is written (maybe not yet read), sometimes an old one.
        const run = rnd.pick(barrierRuns);
        applyWatermark(state, run);
        watermark = Math.max(watermark, run);
      }

      assert.equal(state.watermarkRun, watermark, ctx(step, "watermark run"));
      assert.equal(state.appliedSeq, applied.at(-1)?.seq ?? 0, ctx(step, "applied sequence"));
      assert.equal(heldEvents(state), expectedHeld(applied, watermark), ctx(step, "held events"));

      for (let k = 0; k < 3; k++) {
        const run = rnd.pick([0, watermark, watermark, ...barrierRuns]);
        const metric = rnd.pick(metrics);
        const pool = [...(SPECS[metric]?.keys ?? ["x"]), "nope"];
        const keys = rnd.chance(0.3) ? null : Array.from({ length: rnd.int(1, 4) }, () => rnd.pick(pool));
        const fromMs = T0 + rnd.int(-2, 12) * MINUTE + (rnd.chance(0.2) ? rnd.int(1, 59_999) : 0);
        const toMs = fromMs + rnd.int(1, 15) * MINUTE;
        const q: Ask = { run, metric, keys, fromMs, toMs, series: rnd.chance(0.5) };
        const what = ctx(step, `query ${JSON.stringify(q)}`);
        if (run < watermark) {
          assert.deepEqual(ask(state, q), { kind: "moved_on", run: watermark }, what);
        } else if (!SPECS[metric]) {
          assert.deepEqual(ask(state, q), { kind: "missing_definition", definition: "no-such-definition" }, what);
        } else {
          assertAnswer(ask(state, q), q, expectedAnswer(applied, q), what);
        }
      }
    }
  }
});

test("idHash: 53-bit, stable across builds (snapshots keep it), distinct for distinct ids", () => {
  // Snapshots store these hashes: a change here must bump SNAPSHOT_FORMAT (actors/snapshot.ts).
  assert.equal(idHash("pageviews", "a"), 4960362655571016);
  assert.equal(idHash("pageviews", "é-1"), 154070578437757);
  const seen = new Set<number>();
  for (let i = 0; i < 300_000; i++) {
    const h = idHash(i % 2 === 0 ? "pageviews" : "orders", `id-${i >> 1}`);
    assert.ok(Number.isSafeInteger(h) && h >= 0 && h < 2 ** 53, `hash ${h}`);
    seen.add(h);
  }
  assert.equal(seen.size, 300_000, "no two of 300k ids (the same id in two sources among them) share a hash");
});
