/**
 * Speed actor snapshots (src/actors/snapshot.ts): a round trip keeps every part
 * of the state a new owner resumes from, and anything else decodes to
 * "unusable" with a reason (the actor then rebuilds from the stream) instead of
 * throwing.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { MetricDef } from "../../src/core/catalog.js";
import { decode, encode, type StreamRecord } from "../../src/nats/codec.js";
import { decodeSnapshot, encodeSnapshot, SNAPSHOT_FORMAT } from "../../src/actors/snapshot.js";
import { applyRecord, applyWatermark, createSpeedState, querySpeed, type SpeedState } from "../../src/actors/speed_state.js";
import { prng } from "./prng.js";

const PV = "pageviews";
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 5, 8, 14, 0, 0);
const METRICS: ReadonlyMap<string, readonly MetricDef[]> = new Map([
  [
    PV,
    [
      { name: "article_views", source: PV, groupBy: ["article_id"], windowMs: MINUTE, window: "1m", aggregate: "count", description: "" },
      { name: "user_views", source: PV, groupBy: ["user_id"], windowMs: 5 * MINUTE, window: "5m", aggregate: "count", description: "" },
    ],
  ],
]);

function ev(id: string, article: string, ts: number, user = "u1"): StreamRecord {
  return { k: "e", s: PV, id, ts, v: { id, article_id: article, user_id: user, ts } };
}

/** A state with a dropped segment, two closed ones kept, an open one, skipped copies and ids in a known order. */
function busyState(partition: number, horizon: number): SpeedState {
  const s = createSpeedState(partition, horizon, 100);
  const records: StreamRecord[] = [
    ev("a", "x", T0),
    ev("b", "y", T0 + MINUTE, "u2"),
    { k: "b", r: 1 },
    ev("c", "x", T0 + 2 * MINUTE),
    ev("a", "x", T0), // skipped copy
    { k: "b", r: 2 },
    ev("d", "x", T0 + 7 * MINUTE, "u3"),
    ev("e", "z", T0),
    { k: "b", r: 3 },
    ev("f", "x", T0),
    ev("g", "y", T0 + 59_999),
  ];
  records.forEach((r, i) => applyRecord(s, 101 + 2 * i, r, METRICS));
  applyWatermark(s, 1);
  return s;
}

test("encodeSnapshot/decodeSnapshot round trip keeps segments, counts, sequences, watermark and ids in order", () => {
  const original = busyState(5, 1_000);
  assert.equal(original.segments.length, 3, "fixture: segments after runs 1, 2 and 3");
  const decoded = decodeSnapshot(encodeSnapshot(original, { partition: 5, generation: 7 }), 5, 1_000);
  assert.equal(decoded.kind, "state", JSON.stringify(decoded));
  if (decoded.kind !== "state") return;
  assert.equal(decoded.generation, 7);
  const s = decoded.state;
  // deepEqual compares Map contents but not their order: check the orders on their own.
  assert.deepEqual(s, original);
  assert.deepEqual([...s.seenIds], [...original.seenIds]);
  assert.deepEqual([...s.seenIds.keys()], ["a", "b", "c", "d", "e", "f", "g"].map((id) => `${PV}:${id}`));
  assert.equal(s.appliedSeq, original.appliedSeq);
  assert.equal(s.watermarkRun, 1);
  assert.equal(s.skippedDuplicates, 1);
  assert.deepEqual(
    s.segments.map((g) => [g.openedAfterRun, g.closedByRun, g.firstSeq, g.lastSeq, g.events]),
    original.segments.map((g) => [g.openedAfterRun, g.closedByRun, g.firstSeq, g.lastSeq, g.events]),
  );
  for (const [i, g] of s.segments.entries()) {
    const o = original.segments[i]!;
    assert.deepEqual([...g.counts.keys()], [...o.counts.keys()]);
    for (const [metric, byKey] of g.counts) {
      for (const [key, byWindow] of byKey) assert.deepEqual([...byWindow], [...o.counts.get(metric)!.get(key)!], `${metric}/${key}`);
    }
  }
  // And the restored actor answers as the original does, and goes on the same way.
  for (const run of [1, 2, 3]) {
    for (const key of ["x", "y", "z"]) {
      const q = { run, metric: "article_views", key, fromMs: T0 - MINUTE, toMs: T0 + 10 * MINUTE };
      assert.deepEqual(querySpeed(s, q), querySpeed(original, q));
    }
  }
  const next = original.appliedSeq + 1;
  assert.equal(applyRecord(s, next, ev("a", "x", T0), METRICS), "duplicate_id");
  assert.equal(applyRecord(s, next - 1, ev("new", "x", T0), METRICS), "redelivered");
});

test("random states survive a round trip", () => {
  for (let seed = 1; seed <= 50; seed++) {
    const rnd = prng(seed);
    const s = createSpeedState(2, 64);
    let seq = 0;
    let run = 0;
    for (let i = 0; i < 300; i++) {
      seq += rnd.int(1, 4);
      if (rnd.chance(0.05)) applyRecord(s, seq, { k: "b", r: ++run }, METRICS);
      else applyRecord(s, seq, ev(`id${rnd.int(0, 120)}`, `k${rnd.int(0, 9)}`, T0 + rnd.int(0, 20 * MINUTE), `u${rnd.int(0, 4)}`), METRICS);
      if (run > 0 && rnd.chance(0.03)) applyWatermark(s, rnd.int(1, run));
    }
    const d = decodeSnapshot(encodeSnapshot(s, { partition: 2, generation: seed }), 2, 64);
    assert.equal(d.kind, "state", `seed ${seed}: ${JSON.stringify(d)}`);
    if (d.kind !== "state") return;
    assert.deepEqual(d.state, s, `seed ${seed}`);
    assert.deepEqual([...d.state.seenIds.keys()], [...s.seenIds.keys()], `seed ${seed}: id order`);
    assert.equal(d.generation, seed);
  }
});

test("a smaller dedupe horizon on restore keeps the newest ids", () => {
  const original = busyState(0, 1_000);
  const d = decodeSnapshot(encodeSnapshot(original, { partition: 0, generation: 1 }), 0, 3);
  assert.equal(d.kind, "state");
  if (d.kind !== "state") return;
  assert.equal(d.state.dedupeHorizonIds, 3);
  assert.deepEqual([...d.state.seenIds.keys()], ["e", "f", "g"].map((id) => `${PV}:${id}`));
});

function assertUnusable(data: Uint8Array, partition: number, why: RegExp, what: string) {
  let d;
  try {
    d = decodeSnapshot(data, partition, 100);
  } catch (err) {
    assert.fail(`${what}: decodeSnapshot threw instead of answering "unusable": ${(err as Error).message}`);
  }
  assert.equal(d.kind, "unusable", `${what}: ${JSON.stringify(d)}`);
  if (d.kind !== "unusable") return;
  assert.match(d.reason, why, what);
}

test("a snapshot of another partition is unusable and says whose it is", () => {
  const data = encodeSnapshot(busyState(3, 100), { partition: 3, generation: 1 });
  assertUnusable(data, 4, /partition 3/, "partition 3 read as 4");
});

test("a snapshot of another format is unusable and names both formats", () => {
  const data = encodeSnapshot(busyState(0, 100), { partition: 0, generation: 1 });
  const other = { ...decodeAsObject(data), format: SNAPSHOT_FORMAT + 1 };
  assertUnusable(encode(other), 0, new RegExp(`format ${SNAPSHOT_FORMAT + 1}, expected ${SNAPSHOT_FORMAT}`), "newer format");
  assertUnusable(encode({ hello: "world" }), 0, /format undefined/, "an object with no format");
  assertUnusable(encode(42), 0, /format/, "a number");
  assertUnusable(encode(null), 0, /format/, "nil");
});

test("garbage bytes are unusable, never an exception", () => {
  assertUnusable(new Uint8Array(0), 0, /./, "empty");
  assertUnusable(Uint8Array.from([0x92, 0x01]), 0, /not msgpack/, "truncated array");
  const good = encodeSnapshot(busyState(0, 100), { partition: 0, generation: 1 });
  assertUnusable(good.subarray(0, good.length - 5), 0, /./, "truncated snapshot");
  const rnd = prng(99);
  for (let i = 0; i < 500; i++) {
    const bytes = Uint8Array.from({ length: rnd.int(1, 64) }, () => rnd.int(0, 255));
    assertUnusable(bytes, 0, /./, `random bytes ${Buffer.from(bytes).toString("hex")}`);
  }
});

test("a snapshot with no open segment is unusable", () => {
  const obj = decodeAsObject(encodeSnapshot(busyState(0, 100), { partition: 0, generation: 1 }));
  const segments = obj.segments as { c: number | null }[];
  segments[segments.length - 1]!.c = 9;
  assertUnusable(encode(obj), 0, /no open segment/, "last segment closed");
  assertUnusable(encode({ ...obj, segments: [] }), 0, /no open segment/, "no segments");
});

test("a snapshot with the right header but a malformed body is unusable, never an exception", () => {
  // A partial write or a bug in an older build: the actor must rebuild from the stream, not crash on start.
  const obj = decodeAsObject(encodeSnapshot(busyState(0, 100), { partition: 0, generation: 1 }));
  const { segments: _s, ...noSegments } = obj;
  assertUnusable(encode(noSegments), 0, /./, "segments missing");
  assertUnusable(encode({ ...obj, segments: "x" }), 0, /./, "segments not a list");
  assertUnusable(encode({ ...obj, segments: [{ o: 0, c: null, f: 0, l: 0, n: 0 }] }), 0, /./, "segment without counts");
  assertUnusable(encode({ ...obj, ids: 7 }), 0, /./, "ids not a list");
});

/** The raw msgpack map of a snapshot, to tamper with. */
function decodeAsObject(data: Uint8Array): Record<string, unknown> {
  return decode<Record<string, unknown>>(data);
}
