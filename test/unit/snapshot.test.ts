/**
 * Speed actor snapshots (src/actors/snapshot.ts): a round trip keeps every part
 * of the state a new owner resumes from (segments with their aggregate states,
 * sequences, watermark, ids in order), and anything else decodes to "unusable"
 * with a reason (the actor then rebuilds from the stream) instead of throwing:
 * another format, another partition, another catalog, garbage, a malformed body.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { metricFingerprint, parseCatalog, type Catalog } from "../../src/core/catalog.js";
import { activeDefinitions } from "../../src/core/definitions.js";
import type { FieldValue } from "../../src/core/events.js";
import { decode, encode, type StreamRecord } from "../../src/nats/codec.js";
import { decodeSnapshot, encodeSnapshot, SNAPSHOT_FORMAT } from "../../src/actors/snapshot.js";
import { createSegmentStatesEncoder } from "../../src/actors/snapshot_states.js";
import {
  applyRecord,
  applyWatermark,
  createSpeedState,
  idHash,
  querySpeed,
  retainDefinitions,
  speedCatalog,
  speedCatalogOf,
  type SpeedCatalog,
  type SpeedState,
} from "../../src/actors/speed_state.js";
import { prng, type Prng } from "./prng.js";

const PV = "pageviews";
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 5, 8, 14, 0, 0);

/** The catalog document; tests that need another catalog change a copy. */
function catalogDoc() {
  return {
    sources: {
      pageviews: {
        fields: { id: "string", article_id: "string", user_id: "string", ts: "timestamp", load_ms: "int?", score: "float?" },
        idField: "id",
        timeField: "ts",
        partitionKey: "article_id",
      },
    },
    metrics: {
      article_views: { source: PV, groupBy: ["article_id"], window: "1m", aggregates: { views: "count" } } as Record<string, unknown>,
      user_views: { source: PV, groupBy: ["user_id"], window: "5m", aggregates: { views: "count" } } as Record<string, unknown>,
      article_load: {
        source: PV,
        groupBy: ["article_id", "user_id"],
        window: "1m",
        filter: { not: { field: "load_ms", op: "lt", value: 10 } },
        aggregates: { views: "count", total: { sum: "load_ms" }, low: { min: "load_ms" }, high: { max: "score" }, mean: { avg: "score" }, users: { distinct: "user_id" }, q: { quantiles: "load_ms" } },
      } as Record<string, unknown>,
      global: { source: PV, window: "1h", aggregates: { views: "count", articles: { distinct: "article_id" } } } as Record<string, unknown>,
    } as Record<string, Record<string, unknown>>,
  };
}
const CATALOG = parseCatalog(catalogDoc(), "snapshot.test");
const SC = speedCatalogOf(CATALOG);
/** metric name → definition fingerprint: speed states are kept per definition. */
const fingerprints = (c: Catalog) => Object.fromEntries([...c.metrics.values()].map((m) => [m.name, metricFingerprint(m)]));
const FPS = fingerprints(CATALOG);
const meta = (partition: number, generation: number, catalog = SC) => ({ partition, generation, catalog });

function ev(id: string, article: string, ts: number, user = "u1", load: number | null = null, score: number | null = null): StreamRecord {
  const v: Record<string, FieldValue> = { id, article_id: article, user_id: user, ts, load_ms: load, score };
  return { k: "e", s: PV, id, ts, v };
}

/**
 * Applies one random record after `at.seq` (moved on): now and then a barrier of the next run, otherwise an event
 * among `ids` ids on `keys` articles and `users` users, in a 20-minute span, with nulls now and then.
 */
function applyRandomRecord(s: SpeedState, rnd: Prng, at: { seq: number; run: number }, catalog: SpeedCatalog, o: { seqStep: number; barrierChance: number; ids: number; keys: number; users: number }) {
  at.seq += rnd.int(1, o.seqStep);
  if (rnd.chance(o.barrierChance)) {
    applyRecord(s, at.seq, { k: "b", r: ++at.run }, catalog);
    return;
  }
  const load = rnd.chance(0.3) ? null : rnd.int(0, 500);
  const score = rnd.chance(0.3) ? null : (rnd.next() - 0.5) * 100;
  applyRecord(s, at.seq, ev(`id${rnd.int(0, o.ids)}`, `k${rnd.int(0, o.keys)}`, T0 + rnd.int(0, 20 * MINUTE), `u${rnd.int(0, o.users)}`, load, score), catalog);
}

/** A state with a dropped segment, two closed ones kept, an open one, skipped copies and ids in a known order. */
function busyState(partition: number, horizon: number, catalog: SpeedCatalog = SC): SpeedState {
  const s = createSpeedState(partition, horizon, 100);
  const records: StreamRecord[] = [
    ev("a", "x", T0, "u1", 120, 0.5),
    ev("b", "y", T0 + MINUTE, "u2", 5, -1.5),
    { k: "b", r: 1 },
    ev("c", "x", T0 + 2 * MINUTE, "u1", null, 2.25),
    ev("a", "x", T0), // skipped copy
    { k: "b", r: 2 },
    ev("d", "x", T0 + 7 * MINUTE, "u3", 40),
    ev("e", "z", T0, "u1", 1_000_000, 1e-9),
    { k: "b", r: 3 },
    ev("f", "x", T0, "u1", 77, null),
    ev("g", "y", T0 + 59_999, "u2", 300, 3),
  ];
  records.forEach((r, i) => applyRecord(s, 101 + 2 * i, r, catalog));
  applyWatermark(s, 1);
  return s;
}

/** The state with its dedupe horizon as the list of its ids, oldest first: what a restore must keep. */
const comparable = (s: SpeedState) => ({ ...s, seenIds: [...s.seenIds] });

/** querySpeed of `a` and `b` agree for every definition of `fps` (metric → fingerprint), run and a few ranges, with series. */
function assertAnswersAlike(a: SpeedState, b: SpeedState, what: string, fps = FPS, ca = SC, cb = SC) {
  for (const [metric, definition] of Object.entries(fps)) {
    for (const run of [1, 2, 3]) {
      for (const [fromMs, toMs] of [
        [T0 - MINUTE, T0 + 10 * MINUTE],
        [T0 + MINUTE, T0 + 3 * MINUTE],
      ] as const) {
        const q = { run, metric, definition, keys: null, fromMs, toMs, series: true };
        const answer = querySpeed(a, ca, q);
        assert.equal(answer.kind, "value", `${what}: ${JSON.stringify(q)}`);
        assert.deepEqual(answer, querySpeed(b, cb, q), `${what}: ${JSON.stringify(q)}`);
      }
    }
  }
}

test("encodeSnapshot/decodeSnapshot round trip keeps segments, aggregate states, sequences, watermark and ids in order", () => {
  const original = busyState(5, 1_000);
  assert.equal(original.segments.length, 3, "fixture: segments after runs 1, 2 and 3");
  assert.ok(original.segments.some((g) => g.states.has(FPS.article_load!)), "fixture: a segment holds sketch states");
  const decoded = decodeSnapshot(encodeSnapshot(original, meta(5, 7)), 5, 1_000, SC);
  assert.equal(decoded.kind, "state", JSON.stringify(decoded));
  if (decoded.kind !== "state") return;
  assert.equal(decoded.generation, 7);
  const s = decoded.state;
  // deepEqual compares Map contents but not their order: check the orders on their own. The dedupe
  // horizon is compared by its ids in order (its ring may start elsewhere after a restore).
  assert.deepEqual(comparable(s), comparable(original));
  assert.deepEqual([...s.seenIds], [...original.seenIds]);
  assert.deepEqual([...s.seenIds], ["a", "b", "c", "d", "e", "f", "g"].map((id) => idHash(PV, id)));
  assert.equal(s.appliedSeq, original.appliedSeq);
  assert.equal(s.watermarkRun, 1);
  assert.equal(s.skippedDuplicates, 1);
  assert.deepEqual(
    s.segments.map((g) => [g.openedAfterRun, g.closedByRun, g.firstSeq, g.lastSeq, g.events]),
    original.segments.map((g) => [g.openedAfterRun, g.closedByRun, g.firstSeq, g.lastSeq, g.events]),
  );
  for (const [i, g] of s.segments.entries()) {
    const o = original.segments[i]!;
    assert.deepEqual([...g.states.keys()], [...o.states.keys()]);
    for (const [metric, byKey] of g.states) {
      assert.deepEqual([...byKey.keys()], [...o.states.get(metric)!.keys()], metric);
      for (const [key, byWindow] of byKey) assert.deepEqual([...byWindow], [...o.states.get(metric)!.get(key)!], `${metric}/${key}`);
    }
  }
  // And the restored actor answers as the original does, and goes on the same way.
  assertAnswersAlike(s, original, "restored");
  const next = original.appliedSeq + 1;
  assert.equal(applyRecord(s, next, ev("a", "x", T0), SC), "duplicate_id");
  assert.equal(applyRecord(s, next - 1, ev("new", "x", T0), SC), "redelivered");
  assert.equal(applyRecord(s, next + 1, ev("h", "x", T0, "u9", 11, 4), SC), "counted");
  assert.equal(applyRecord(original, next + 1, ev("h", "x", T0, "u9", 11, 4), SC), "counted");
  assertAnswersAlike(s, original, "restored, then one more event");
});

test("a format-4 snapshot (before the per-window encoding of format 5) is unusable, naming its format: the actor rebuilds from the stream", () => {
  // Written by the code of commit 1afce15 from busyState(5, 5) with generation 7.
  const old = new Uint8Array(readFileSync("test/golden/snapshots/format4-set-horizon.msgpack"));
  const d = decodeSnapshot(old, 5, 5, SC);
  assert.deepEqual(d, { kind: "unusable", reason: `format 4, expected ${SNAPSHOT_FORMAT}` });
});

test("random states survive a round trip", () => {
  for (let seed = 1; seed <= 50; seed++) {
    const rnd = prng(seed);
    const s = createSpeedState(2, 64);
    const at = { seq: 0, run: 0 };
    for (let i = 0; i < 300; i++) {
      applyRandomRecord(s, rnd, at, SC, { seqStep: 4, barrierChance: 0.05, ids: 120, keys: 9, users: 4 });
      if (at.run > 0 && rnd.chance(0.03)) applyWatermark(s, rnd.int(1, at.run));
    }
    const d = decodeSnapshot(encodeSnapshot(s, meta(2, seed)), 2, 64, SC);
    assert.equal(d.kind, "state", `seed ${seed}: ${JSON.stringify(d)}`);
    if (d.kind !== "state") return;
    assert.deepEqual(comparable(d.state), comparable(s), `seed ${seed}`);
    assert.deepEqual([...d.state.seenIds], [...s.seenIds], `seed ${seed}: id order`);
    assert.equal(d.generation, seed);
  }
});

test("snapshots that reuse the states encoded by the previous one are byte for byte a fresh encoding, and restore exactly", () => {
  // An actor keeps one states encoder for all its snapshots; what it copies from the last one must be what changed nothing.
  const doc = catalogDoc();
  delete doc.metrics.user_views;
  const narrower = speedCatalogOf(parseCatalog(doc, "user_views removed"));
  let reused = 0;
  for (let seed = 1; seed <= 30; seed++) {
    const rnd = prng(seed);
    const s = createSpeedState(1, 200);
    const states = createSegmentStatesEncoder();
    let catalog = SC;
    const at = { seq: 0, run: 0 };
    let previous: Uint8Array | undefined;
    for (let snapshot = 0; snapshot < 40; snapshot++) {
      // Between two snapshots: nothing, a few events on a few of many keys, barriers, watermarks, a definition dropped.
      for (let i = rnd.int(0, 1) * rnd.int(1, 12); i > 0; i--) applyRandomRecord(s, rnd, at, catalog, { seqStep: 3, barrierChance: 0.04, ids: 400, keys: 40, users: 6 });
      if (at.run > 0 && rnd.chance(0.05)) applyWatermark(s, rnd.int(1, at.run));
      if (catalog === SC && rnd.chance(0.02)) retainDefinitions(s, (catalog = narrower));
      const cached = encodeSnapshot(s, meta(1, seed, catalog), states);
      const fresh = encodeSnapshot(s, meta(1, seed, catalog));
      assert.ok(Buffer.from(cached).equals(Buffer.from(fresh)), `seed ${seed}, snapshot ${snapshot}: the cached encoding differs from a fresh one`);
      if (previous && Buffer.from(previous).equals(Buffer.from(cached))) reused++;
      previous = cached;
      const d = decodeSnapshot(cached, 1, 200, catalog);
      assert.equal(d.kind, "state", `seed ${seed}, snapshot ${snapshot}: ${JSON.stringify(d)}`);
      if (d.kind === "state") assert.deepEqual(d.state, s, `seed ${seed}, snapshot ${snapshot}`);
    }
  }
  assert.ok(reused > 100, `fixture: snapshots with nothing new between them (${reused})`);
});

test("a smaller dedupe horizon on restore keeps the newest ids", () => {
  const original = busyState(0, 1_000);
  const d = decodeSnapshot(encodeSnapshot(original, meta(0, 1)), 0, 3, SC);
  assert.equal(d.kind, "state");
  if (d.kind !== "state") return;
  assert.equal(d.state.dedupeHorizonIds, 3);
  assert.deepEqual([...d.state.seenIds], ["e", "f", "g"].map((id) => idHash(PV, id)));
});

function assertUnusable(data: Uint8Array, partition: number, why: RegExp, what: string, catalog = SC) {
  let d;
  try {
    d = decodeSnapshot(data, partition, 100, catalog);
  } catch (err) {
    assert.fail(`${what}: decodeSnapshot threw instead of answering "unusable": ${(err as Error).message}`);
  }
  assert.equal(d.kind, "unusable", `${what}: ${JSON.stringify(d)}`);
  if (d.kind !== "unusable") return;
  assert.match(d.reason, why, what);
}

test("a snapshot of another partition is unusable and says whose it is", () => {
  const data = encodeSnapshot(busyState(3, 100), meta(3, 1));
  assertUnusable(data, 4, /partition 3/, "partition 3 read as 4");
});

test("a snapshot lacking a definition the actor computes is unusable and names it", () => {
  // Every change to what a metric's states mean changes its fingerprint: the new definition starts from the cut.
  const variants: [string, (d: ReturnType<typeof catalogDoc>) => void, string][] = [
    ["a metric added", (d) => (d.metrics.extra = { source: PV, window: "1m", aggregates: { views: "count" } }), "extra"],
    ["a window changed", (d) => (d.metrics.article_views!.window = "5m"), "article_views"],
    ["a filter value changed", (d) => (d.metrics.article_load!.filter = { not: { field: "load_ms", op: "lt", value: 11 } }), "article_load"],
    ["an aggregate added", (d) => (d.metrics.global!.aggregates = { views: "count", articles: { distinct: "article_id" }, users: { distinct: "user_id" } }), "global"],
    ["aggregates reordered", (d) => (d.metrics.global!.aggregates = { articles: { distinct: "article_id" }, views: "count" }), "global"],
  ];
  const data = encodeSnapshot(busyState(0, 100), meta(0, 1));
  for (const [what, change, metric] of variants) {
    const doc = catalogDoc();
    change(doc);
    const next = parseCatalog(doc, what);
    assert.notEqual(fingerprints(next)[metric], FPS[metric], `${what}: another fingerprint`);
    // Read by an actor of the new catalog alone...
    assertUnusable(data, 0, new RegExp(`does not compute ${metric}@${fingerprints(next)[metric]} \\(added or redefined since\\)`), `${what}: old snapshot, new catalog`, speedCatalogOf(next));
    // ...while an actor that computes both the watermark's definitions and the new catalog's writes
    // a snapshot that an actor of either reads, keeping the states each computes.
    const both = speedCatalog([...activeDefinitions(CATALOG, null), ...activeDefinitions(next, null)]);
    const wide = busyState(0, 100, both);
    for (const [c, name] of [[CATALOG, "old"], [next, "new"]] as const) {
      const sc = speedCatalogOf(c);
      const d = decodeSnapshot(encodeSnapshot(wide, meta(0, 1, both)), 0, 100, sc);
      assert.equal(d.kind, "state", `${what}: wide snapshot read by the ${name} catalog: ${JSON.stringify(d)}`);
      if (d.kind === "state") assertAnswersAlike(d.state, wide, `${what}, ${name} catalog`, fingerprints(c), sc, both);
    }
  }
});

test("a snapshot holding definitions no longer computed is usable; their states are dropped", () => {
  const doc = catalogDoc();
  delete doc.metrics.user_views;
  const narrower = speedCatalogOf(parseCatalog(doc, "user_views removed"));
  const original = busyState(0, 100);
  assert.ok(original.segments.some((g) => g.states.has(FPS.user_views!)), "fixture: user_views has states");
  const d = decodeSnapshot(encodeSnapshot(original, meta(0, 1)), 0, 100, narrower);
  assert.equal(d.kind, "state", JSON.stringify(d));
  if (d.kind !== "state") return;
  assert.ok(d.state.segments.every((g) => !g.states.has(FPS.user_views!)), "user_views states dropped");
  for (const metric of CATALOG.metrics.keys()) {
    if (metric === "user_views") continue;
    const q = { run: 1, metric, definition: FPS[metric]!, keys: null, fromMs: T0 - MINUTE, toMs: T0 + 10 * MINUTE, series: true };
    assert.deepEqual(querySpeed(d.state, narrower, q), querySpeed(original, SC, q), metric);
  }
  // The same catalog with its metrics listed in another order computes the same definitions.
  const same = catalogDoc();
  const reordered = { sources: same.sources, metrics: Object.fromEntries(Object.entries(same.metrics).reverse()) };
  assert.equal(decodeSnapshot(encodeSnapshot(original, meta(0, 1)), 0, 100, speedCatalogOf(parseCatalog(reordered, "reordered"))).kind, "state");
});

test("a snapshot of another format is unusable and names both formats", () => {
  const data = encodeSnapshot(busyState(0, 100), meta(0, 1));
  const other = { ...decodeAsObject(data), format: SNAPSHOT_FORMAT + 1 };
  assertUnusable(encode(other), 0, new RegExp(`format ${SNAPSHOT_FORMAT + 1}, expected ${SNAPSHOT_FORMAT}`), "newer format");
  assertUnusable(encode({ ...other, format: SNAPSHOT_FORMAT - 1 }), 0, new RegExp(`format ${SNAPSHOT_FORMAT - 1}, expected ${SNAPSHOT_FORMAT}`), "older format (counts only)");
  assertUnusable(encode({ hello: "world" }), 0, /format undefined/, "an object with no format");
  assertUnusable(encode(42), 0, /format/, "a number");
  assertUnusable(encode(null), 0, /format/, "nil");
});

test("garbage bytes are unusable, never an exception", () => {
  assertUnusable(new Uint8Array(0), 0, /./, "empty");
  assertUnusable(Uint8Array.from([0x92, 0x01]), 0, /not msgpack/, "truncated array");
  const good = encodeSnapshot(busyState(0, 100), meta(0, 1));
  assertUnusable(good.subarray(0, good.length - 5), 0, /./, "truncated snapshot");
  const rnd = prng(99);
  for (let i = 0; i < 500; i++) {
    const bytes = Uint8Array.from({ length: rnd.int(1, 64) }, () => rnd.int(0, 255));
    assertUnusable(bytes, 0, /./, `random bytes ${Buffer.from(bytes).toString("hex")}`);
  }
});

test("a snapshot with no open segment is unusable", () => {
  const obj = decodeAsObject(encodeSnapshot(busyState(0, 100), meta(0, 1)));
  const segments = obj.segments as { c: number | null }[];
  segments[segments.length - 1]!.c = 9;
  assertUnusable(encode(obj), 0, /no open segment/, "last segment closed");
  assertUnusable(encode({ ...obj, segments: [] }), 0, /no open segment/, "no segments");
});

/** The raw encoded segments of a snapshot with their states decoded: [metric, [key, [window, state][]][]][] per segment. */
type RawSegments = { m: [string, [string, [number, unknown[]][]][]][] }[];

/** Decodes each segment's state blocks (msgpack inside msgpack) in place, to tamper with them. */
function openStates(obj: Record<string, unknown>): RawSegments {
  const segs = obj.segments as { m: [string, unknown][] }[];
  for (const g of segs) g.m = g.m.map(([fp, block]) => [fp, decode(block as Uint8Array)]);
  return segs as unknown as RawSegments;
}

/** Encodes a snapshot whose states openStates decoded, each block encoded back on its own. */
function encodeWithStates(obj: Record<string, unknown>): Uint8Array {
  const segs = obj.segments as { m: [string, unknown][] }[];
  return encode({ ...obj, segments: segs.map((g) => ({ ...g, m: g.m.map(([fp, keys]) => [fp, encode(keys)]) })) });
}

test("a snapshot with the right header but a malformed body is unusable, never an exception", () => {
  // A partial write or a bug in an older build: the actor must rebuild from the stream, not crash on start.
  const obj = decodeAsObject(encodeSnapshot(busyState(0, 100), meta(0, 1)));
  const { segments: _s, ...noSegments } = obj;
  assertUnusable(encode(noSegments), 0, /./, "segments missing");
  assertUnusable(encode({ ...obj, segments: "x" }), 0, /./, "segments not a list");
  assertUnusable(encode({ ...obj, segments: [{ o: 0, c: null, f: 0, l: 0, n: 0 }] }), 0, /./, "segment without states");
  assertUnusable(encode({ ...obj, segments: [{ o: 0, c: null, f: 0, l: 0, n: 0, m: [[FPS.global, "x"]] }] }), 0, /malformed/, "states not bytes");
  assertUnusable(encode({ ...obj, segments: [{ o: 0, c: null, f: 0, l: 0, n: 0, m: [[FPS.global, encode(7)]] }] }), 0, /malformed/, "states not a list");
  assertUnusable(encode({ ...obj, segments: [{ o: 0, c: null, f: 0, l: 0, n: 0, m: [[FPS.global, Uint8Array.of(0x92, 0x01)]] }] }), 0, /malformed/, "states truncated");
  assertUnusable(encode({ ...obj, ids: 7 }), 0, /ids is not a list of 8-byte hashes/, "ids not bytes");
  assertUnusable(encode({ ...obj, ids: new Uint8Array(12) }), 0, /ids is not a list of 8-byte hashes/, "ids not a whole number of hashes");
  // States that do not fit their definition: a state of another shape.
  const tamper = (change: (segments: RawSegments) => void) => {
    const copy = decodeAsObject(encodeSnapshot(busyState(0, 100), meta(0, 1)));
    change(openStates(copy));
    return encodeWithStates(copy);
  };
  assertUnusable(encode({ ...obj, defs: "x" }), 0, /defs is not a list/, "defs not a list");
  assertUnusable(
    tamper((segs) => {
      const st = segs.at(-1)!.m.find(([m]) => m === FPS.article_load)![1][0]![1][0]![1];
      st.pop();
    }),
    0,
    /malformed/,
    "a state one part short",
  );
  assertUnusable(tamper((segs) => (segs.at(-1)!.m.find(([m]) => m === FPS.global)![1][0]![1][0]![1] = "x" as unknown as unknown[])), 0, /malformed/, "a state that is not a list");
});

test("a snapshot whose states hold values of the wrong type is unusable", () => {
  // The shape fits (one entry per aggregate) but the values cannot come from any add or merge.
  const tamper = (aggregate: string, value: unknown) => {
    const copy = decodeAsObject(encodeSnapshot(busyState(0, 100), meta(0, 1)));
    const segs = openStates(copy);
    const i = CATALOG.metrics.get("article_load")!.aggregates.findIndex((a) => a.name === aggregate);
    segs.at(-1)!.m.find(([m]) => m === FPS.article_load)![1][0]![1][0]![1][i + 1] = value;
    return encodeWithStates(copy);
  };
  assertUnusable(tamper("total", "12"), 0, /malformed/, "a sum that is a string");
  assertUnusable(tamper("mean", 3), 0, /malformed/, "an avg that is not [sum, count]");
  assertUnusable(tamper("users", [[9999, 1]]), 0, /malformed/, "an HLL register out of range");
  assertUnusable(tamper("q", [[1, -2]]), 0, /malformed/, "a negative bucket count");
});

/** The raw msgpack map of a snapshot, to tamper with. */
function decodeAsObject(data: Uint8Array): Record<string, unknown> {
  return decode<Record<string, unknown>>(data);
}

test("a compact dedupe horizon (the default size's form) survives a round trip whole, one generation over its capacity", () => {
  // 8192 ids and up take the compact form (dedupe_horizon.ts), which forgets whole generations
  // and so may hold up to a generation more than its capacity: a restore that kept only the
  // newest `capacity` would forget ids the snapshotted actor still dropped copies of.
  const capacity = 10_000;
  const original = createSpeedState(0, capacity);
  for (let i = 0; i < 23_456; i++) original.seenIds.add(idHash(PV, `id-${i}`));
  assert.ok(original.seenIds.size > capacity);
  const d = decodeSnapshot(encodeSnapshot(original, meta(0, 1)), 0, capacity, SC);
  assert.equal(d.kind, "state");
  if (d.kind !== "state") return;
  assert.deepEqual([...d.state.seenIds], [...original.seenIds]);
  for (let i = 0; i < 5_000; i++) {
    const h = idHash(PV, `id-${23_456 - 12_000 + i * 3}`);
    assert.equal(d.state.seenIds.add(h), original.seenIds.add(h), `id ${i}`);
  }
});
