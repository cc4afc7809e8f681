/**
 * The speed actor's pure state machine (src/actors/speed_state.ts): segments cut
 * by barriers, dropped by watermarks, queried above a cut, and deduplicated by
 * stream sequence and by event id. The last test checks the whole contract on
 * random streams against an independent recount.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { MetricDef } from "../../src/core/catalog.js";
import type { StreamRecord } from "../../src/nats/codec.js";
import {
  applyRecord,
  applyWatermark,
  createSpeedState,
  heldEvents,
  querySpeed,
  type RangeQuery,
  type SpeedState,
} from "../../src/actors/speed_state.js";
import { prng } from "./prng.js";

const PV = "pageviews";
/** A source with no metric: its events are deduplicated and held, but add to no count. */
const CLICKS = "clicks";
const MINUTE = 60_000;

const ARTICLE_VIEWS: MetricDef = { name: "article_views", source: PV, groupBy: ["article_id"], windowMs: MINUTE, window: "1m", aggregate: "count", description: "" };
const USER_VIEWS: MetricDef = { name: "user_views", source: PV, groupBy: ["user_id"], windowMs: 5 * MINUTE, window: "5m", aggregate: "count", description: "" };
const METRICS: ReadonlyMap<string, readonly MetricDef[]> = new Map([[PV, [ARTICLE_VIEWS, USER_VIEWS]]]);
const METRIC_DEFS = [ARTICLE_VIEWS, USER_VIEWS];

/** 2026-06-08T14:00:00Z, the start of a 1m and of a 5m window. */
const T0 = Date.UTC(2026, 5, 8, 14, 0, 0);
const HOUR = 60 * MINUTE;
const BIG_HORIZON = 1_000_000;

function ev(id: string, article: string, ts: number, user = "u1", source = PV): StreamRecord {
  return { k: "e", s: source, id, ts, v: { id, article_id: article, user_id: user, ts } };
}
const barrier = (r: number): StreamRecord => ({ k: "b", r });

/** The value of a query expected to be answered (not "moved on"). */
function value(state: SpeedState, q: Partial<RangeQuery> & { run: number; key: string }): { value: number; eventsAboveCut: number } {
  const a = querySpeed(state, { metric: ARTICLE_VIEWS.name, fromMs: T0 - HOUR, toMs: T0 + HOUR, ...q });
  assert.equal(a.kind, "value", `expected a value at run ${q.run}, got ${JSON.stringify(a)}`);
  if (a.kind !== "value") throw new Error("unreachable");
  return { value: a.value, eventsAboveCut: a.eventsAboveCut };
}

/** Applies records at consecutive sequences starting at `firstSeq`; returns the outcomes. */
function applyAll(state: SpeedState, firstSeq: number, records: StreamRecord[]): string[] {
  return records.map((r, i) => applyRecord(state, firstSeq + i, r, METRICS));
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
    seg.counts.get("article_views"),
    new Map([
      ["x", new Map([[T0, 2], [T0 + MINUTE, 1]])],
      ["y", new Map([[T0, 1], [T0 + 5 * MINUTE, 1]])],
    ]),
  );
  assert.deepEqual(
    seg.counts.get("user_views"),
    new Map([
      ["u1", new Map([[T0, 3], [T0 + 5 * MINUTE, 1]])],
      ["u2", new Map([[T0, 1]])],
    ]),
  );
  // Windows whose start lies in [from, to) count; the others do not.
  assert.equal(value(s, { run: 0, key: "x", fromMs: T0, toMs: T0 + MINUTE }).value, 2);
  assert.equal(value(s, { run: 0, key: "x", fromMs: T0 + 1, toMs: T0 + 2 * MINUTE }).value, 1);
  assert.equal(value(s, { run: 0, key: "x" }).value, 3);
  assert.equal(value(s, { run: 0, key: "u1", metric: "user_views", fromMs: T0, toMs: T0 + 5 * MINUTE }).value, 3);
  assert.equal(value(s, { run: 0, key: "nobody" }).value, 0);
  assert.equal(value(s, { run: 0, key: "x", metric: "no_such_metric" }).value, 0);
  assert.equal(heldEvents(s), 5);
  assert.equal(s.appliedSeq, 5);
});

test("a barrier closes the open segment and opens the next", () => {
  const s = createSpeedState(0, BIG_HORIZON);
  applyAll(s, 1, [ev("a", "x", T0), ev("b", "x", T0)]);
  assert.equal(applyRecord(s, 3, barrier(1), METRICS), "barrier");
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
  assert.equal(applyRecord(s, 6, barrier(1), METRICS), "stale_barrier");
  assert.equal(applyRecord(s, 7, barrier(0), METRICS), "stale_barrier");
  assert.equal(s.segments.length, 2);
  assert.equal(s.appliedSeq, 7, "a stale barrier still advances the applied sequence");
  assert.equal(applyRecord(s, 8, barrier(2), METRICS), "barrier");
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
  assert.deepEqual(querySpeed(s, { run: 0, metric: "article_views", key: "x", fromMs: T0 - HOUR, toMs: T0 + HOUR }), { kind: "moved_on", run: 2 });
  assert.deepEqual(querySpeed(s, { run: 1, metric: "article_views", key: "x", fromMs: T0 - HOUR, toMs: T0 + HOUR }), { kind: "moved_on", run: 2 });
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
  assert.equal(applyRecord(s, 11, ev("zz", "x", T0), METRICS), "redelivered");
  assert.equal(applyRecord(s, 5, barrier(1), METRICS), "redelivered");
  assert.equal(applyRecord(s, 10, ev("a", "x", T0), METRICS), "redelivered");
  assert.equal(s.appliedSeq, 11);
  assert.equal(s.segments.length, 1);
  assert.equal(s.skippedDuplicates, 0, "a redelivery is not an id duplicate");
  assert.deepEqual(value(s, { run: 0, key: "x" }), { value: 2, eventsAboveCut: 2 });
  assert.equal(s.seenIds.has(`${PV}:zz`), false);
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
  assert.equal(applyRecord(s, 9, ev("a", "x", T0), METRICS), "duplicate_id");
  assert.deepEqual(value(s, { run: 1, key: "x" }), { value: 1, eventsAboveCut: 2 });
  assert.equal(s.skippedDuplicates, 4);
});

test("the dedupe horizon forgets the oldest id first: with horizon 2 a third id evicts the first", () => {
  const s = createSpeedState(0, 2);
  assert.deepEqual(applyAll(s, 1, [ev("a", "x", T0), ev("b", "x", T0)]), ["counted", "counted"]);
  assert.equal(applyRecord(s, 3, ev("a", "x", T0), METRICS), "duplicate_id", "a is still inside the horizon");
  assert.equal(applyRecord(s, 4, ev("c", "x", T0), METRICS), "counted");
  assert.deepEqual([...s.seenIds.keys()], [`${PV}:b`, `${PV}:c`]);
  // a fell out of the horizon: a late copy counts (the next batch run corrects it).
  assert.equal(applyRecord(s, 5, ev("a", "x", T0), METRICS), "counted");
  assert.deepEqual([...s.seenIds.keys()], [`${PV}:c`, `${PV}:a`]);
  assert.equal(applyRecord(s, 6, ev("c", "x", T0), METRICS), "duplicate_id");
  assert.equal(applyRecord(s, 7, ev("b", "x", T0), METRICS), "counted");
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

  assert.equal(applyRecord(s, 3, barrier(1), METRICS), "barrier");
  assert.deepEqual(s.segments.map((g) => [g.openedAfterRun, g.closedByRun]), [[1, null]], "segment closed by 1 ≤ watermark 2 is dropped at once");
  assert.equal(heldEvents(s), 0);
  applyAll(s, 4, [ev("c", "x", T0)]);
  assert.deepEqual(value(s, { run: 2, key: "x" }), { value: 0, eventsAboveCut: 0 }, "c is below cut 2");

  assert.equal(applyRecord(s, 5, barrier(2), METRICS), "barrier");
  assert.deepEqual(s.segments.map((g) => [g.openedAfterRun, g.closedByRun]), [[2, null]]);
  assert.equal(heldEvents(s), 0);
  applyAll(s, 6, [ev("d", "x", T0)]);
  assert.deepEqual(value(s, { run: 2, key: "x" }), { value: 1, eventsAboveCut: 1 });

  assert.equal(applyRecord(s, 7, barrier(3), METRICS), "barrier");
  assert.equal(s.segments.length, 2, "barrier 3 is past the watermark: its segment stays");
  assert.equal(heldEvents(s), 1);
});

test("a state restored at a cut starts from that cut's barrier", () => {
  // host.ts: no snapshot, watermark 4 with cut 20 → replay from seq 20, the barrier itself.
  const s = createSpeedState(3, BIG_HORIZON, 19);
  applyWatermark(s, 4);
  assert.equal(applyRecord(s, 19, ev("old", "x", T0), METRICS), "redelivered");
  assert.equal(applyRecord(s, 20, barrier(4), METRICS), "barrier");
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

const ARTICLES = ["a0", "a1", "a2", "a3"];
const USERS = ["u0", "u1", "u2"];
const SOURCES = [PV, PV, PV, CLICKS];

/** First applied copy of every (source, id), by position in `applied`. */
function firstCopies(applied: readonly Applied[]): Map<number, StreamRecord & { k: "e" }> {
  const seen = new Set<string>();
  const firsts = new Map<number, StreamRecord & { k: "e" }>();
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

function expectedAnswer(applied: readonly Applied[], q: RangeQuery): { value: number; eventsAboveCut: number } {
  const cut = cutPosition(applied, q.run);
  if (cut === undefined) return { value: 0, eventsAboveCut: 0 };
  const metric = METRIC_DEFS.find((m) => m.name === q.metric);
  let value = 0;
  let eventsAboveCut = 0;
  for (const [i, e] of firstCopies(applied)) {
    if (i <= cut) continue;
    eventsAboveCut++;
    if (!metric || e.s !== metric.source || String(e.v[metric.groupBy[0]!]) !== q.key) continue;
    const w = Math.floor(e.ts / metric.windowMs) * metric.windowMs;
    if (w >= q.fromMs && w < q.toMs) value++;
  }
  return { value, eventsAboveCut };
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

test("property: on random streams, querySpeed equals a recount of first copies above the cut", () => {
  const TRIALS = 150;
  const STEPS = 250;
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
        // The producer writes an event: a new id, or a late copy of an old one (maybe with another time).
        lastSeq += rnd.int(1, 3);
        const olds = stream.filter((a) => a.record.k === "e");
        let record: StreamRecord;
        if (olds.length > 0 && rnd.chance(0.25)) {
          const orig = rnd.pick(olds).record as StreamRecord & { k: "e" };
          record = rnd.chance(0.5) ? orig : ev(orig.id, String(orig.v.article_id), orig.ts + rnd.int(0, 3) * MINUTE, String(orig.v.user_id), orig.s);
        } else {
          record = ev(`e${nextId++}`, rnd.pick(ARTICLES), T0 + rnd.int(0, 12 * MINUTE), rnd.pick(USERS), rnd.pick(SOURCES));
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
          const outcome = applyRecord(state, next.seq, next.record, METRICS);
          assert.notEqual(outcome, "redelivered", ctx(step, "a new sequence is never a redelivery"));
          applied.push(next);
        }
      } else if (dice < 0.92) {
        // A redelivery of something already applied changes nothing.
        if (applied.length > 0) {
          const again = rnd.pick(applied);
          const before = { seq: state.appliedSeq, held: heldEvents(state), dup: state.skippedDuplicates, segs: state.segments.length };
          assert.equal(applyRecord(state, again.seq, again.record, METRICS), "redelivered", ctx(step, `redelivery of seq ${again.seq}`));
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
        const metric = rnd.pick(["article_views", "user_views", "unknown_metric"]);
        const key = rnd.pick(metric === "user_views" ? USERS : ARTICLES);
        const fromMs = T0 + rnd.int(-2, 12) * MINUTE + (rnd.chance(0.2) ? rnd.int(1, 59_999) : 0);
        const toMs = fromMs + rnd.int(1, 15) * MINUTE;
        const q: RangeQuery = { run, metric, key, fromMs, toMs };
        const got = querySpeed(state, q);
        if (run < watermark) {
          assert.deepEqual(got, { kind: "moved_on", run: watermark }, ctx(step, `query ${JSON.stringify(q)}`));
        } else {
          assert.deepEqual(got, { kind: "value", ...expectedAnswer(applied, q) }, ctx(step, `query ${JSON.stringify(q)}`));
        }
      }
    }
  }
});
