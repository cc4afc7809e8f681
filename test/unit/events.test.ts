/**
 * Event validation and partitioning (src/core/events.ts): every refusal is an
 * InvalidEventError naming the field and why; accepted events are normalised the
 * same way whatever form their time took; the partition hash is FNV-1a.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCatalog } from "../../src/core/catalog.js";
import { InvalidEventError } from "../../src/core/errors.js";
import { fnv1a32, partitionOf, partitionOfKey, validateEvent } from "../../src/core/events.js";
import { prng } from "./prng.js";

// A fixed catalog, so these tests do not move when the example catalog grows.
const catalog = parseCatalog(
  {
    sources: {
      pageviews: { fields: { id: "string", article_id: "string", user_id: "string", ts: "timestamp" }, idField: "id", timeField: "ts", partitionKey: "article_id" },
    },
    metrics: { article_views: { source: "pageviews", groupBy: ["article_id"], window: "1m", aggregates: { views: "count" } } },
  },
  "events-test-catalog",
);
const T = Date.UTC(2026, 5, 8, 14, 23, 0);
const good = () => ({ id: "e1", article_id: "art-1", user_id: "u1", ts: "2026-06-08T14:23:00Z" }) as Record<string, unknown>;

function refusal(raw: unknown, source = "pageviews"): InvalidEventError {
  try {
    validateEvent(catalog, source, raw);
  } catch (err) {
    assert.ok(err instanceof InvalidEventError, `expected InvalidEventError, got ${String(err)}`);
    assert.equal(err.name, "InvalidEventError");
    return err;
  }
  assert.fail(`expected ${JSON.stringify(raw)} to be refused`);
}

/** Asserts the refusal names `field` in .field and in the message, with a reason matching `reason`. */
function assertRefused(raw: unknown, field: string, reason: RegExp, source = "pageviews") {
  const err = refusal(raw, source);
  assert.equal(err.field, field, `field of ${err.message}`);
  assert.match(err.reason, reason);
  assert.ok(err.message.includes(`field ${JSON.stringify(field)}`), `message names the field: ${err.message}`);
  assert.ok(err.message.includes(err.reason), `message gives the reason: ${err.message}`);
  return err;
}

test("a missing field is refused naming it", () => {
  for (const f of ["id", "article_id", "user_id", "ts"]) {
    const raw = good();
    delete raw[f];
    assertRefused(raw, f, /is missing/);
    assertRefused({ ...good(), [f]: null }, f, /is missing/);
  }
});

test("a field of the wrong type is refused naming the field, the expected and the actual type", () => {
  assertRefused({ ...good(), article_id: 42 }, "article_id", /expected string, got number/);
  assertRefused({ ...good(), user_id: ["u"] }, "user_id", /expected string, got array/);
  assertRefused({ ...good(), id: { a: 1 } }, "id", /expected string, got object/);
  assertRefused({ ...good(), ts: true }, "ts", /expected a timestamp .*got boolean/);
  assertRefused({ ...good(), ts: { at: 1 } }, "ts", /expected a timestamp .*got object/);
});

test("an empty string is refused", () => {
  assertRefused({ ...good(), article_id: "" }, "article_id", /is empty/);
  const err = assertRefused({ ...good(), id: "" }, "id", /is empty/);
  assert.equal(err.eventId, undefined, "a refused id names no event");
});

test("an unparsable time is refused with what was expected", () => {
  for (const ts of ["yesterday", "2026-06-08T14:23:00Q", "8/6/2026", "2026-6-8", "", "1780928580000"]) {
    assertRefused({ ...good(), ts }, "ts", /cannot parse .* as a time; expected ISO 8601/);
  }
  assertRefused({ ...good(), ts: "2026-13-01T00:00:00Z" }, "ts", /not a calendar date/);
  assertRefused({ ...good(), ts: 1.5 }, "ts", /whole epoch milliseconds/);
  assertRefused({ ...good(), ts: Number.NaN }, "ts", /not a finite number/);
  assertRefused({ ...good(), ts: Number.POSITIVE_INFINITY }, "ts", /not a finite number/);
});

test("an impossible calendar date is refused, not rolled over into the next month", () => {
  // Date.parse reads 2026-02-30 as 2026-03-02: the event would land two days off.
  const got = (() => {
    try {
      return validateEvent(catalog, "pageviews", { ...good(), ts: "2026-02-30T00:00:00Z" }).ts;
    } catch (err) {
      return err;
    }
  })();
  assert.ok(got instanceof InvalidEventError, `accepted as ${typeof got === "number" ? new Date(got).toISOString() : String(got)}`);
  assert.equal(got.field, "ts");
});

test("a time outside 1970..2200 is refused", () => {
  assertRefused({ ...good(), ts: -1 }, "ts", /outside 1970\.\.2200/);
  assertRefused({ ...good(), ts: Date.UTC(2200, 0, 1) + 1 }, "ts", /outside 1970\.\.2200/);
  assertRefused({ ...good(), ts: "2300-01-01T00:00:00Z" }, "ts", /outside 1970\.\.2200/);
  assertRefused({ ...good(), ts: "1969-12-31T23:59:59Z" }, "ts", /outside 1970\.\.2200/);
  // The bounds themselves are in.
  assert.equal(validateEvent(catalog, "pageviews", { ...good(), ts: 0 }).ts, 0);
  assert.equal(validateEvent(catalog, "pageviews", { ...good(), ts: Date.UTC(2200, 0, 1) }).ts, Date.UTC(2200, 0, 1));
});

test("a field the schema does not have is refused naming it and the schema", () => {
  const err = assertRefused({ ...good(), referrer: "x" }, "referrer", /is not in the schema of pageviews \(fields: id, article_id, user_id, ts\)/);
  assert.equal(err.eventId, "e1");
});

test("a field named like an Object.prototype member is refused like any unknown field", () => {
  // `k in source.fields` also finds inherited members: these slip through and are dropped silently.
  for (const f of ["toString", "constructor", "hasOwnProperty", "__proto__"]) {
    const raw = JSON.parse(JSON.stringify({ ...good(), [f]: "x" })) as Record<string, unknown>;
    assert.ok(Object.keys(raw).includes(f), `fixture has an own ${f}`);
    assertRefused(raw, f, /is not in the schema/);
  }
});

test("an unknown source is refused as field \"source\" naming the known ones", () => {
  const err = assertRefused(good(), "source", /unknown source "clicks"; known: pageviews/, "clicks");
  assert.equal(err.source, "clicks");
  assert.equal(err.eventId, "e1");
});

test("a value that is not an object is refused", () => {
  for (const [raw, kind] of [
    [null, "null"],
    ["e1", "string"],
    [42, "number"],
    [[good()], "array"],
    [undefined, "undefined"],
  ] as const) {
    const err = assertRefused(raw, "(event)", new RegExp(`expected an object, got ${kind}`));
    assert.equal(err.source, "pageviews");
  }
});

test("the refusal carries the event id once the id is known", () => {
  const err = assertRefused({ ...good(), id: "evt-7", user_id: 3 }, "user_id", /expected string/);
  assert.equal(err.eventId, "evt-7");
  assert.equal(err.source, "pageviews");
  assert.match(err.message, /^invalid event "evt-7" of source "pageviews": field "user_id" expected string, got number/);
});

test("ISO times with any offset and epoch milliseconds normalise to the same instant", () => {
  const forms = [
    "2026-06-08T14:23:00Z",
    "2026-06-08T14:23:00.000Z",
    "2026-06-08T16:23:00+02:00",
    "2026-06-08T09:23:00-0500",
    "2026-06-08 14:23:00Z",
    "2026-06-08T14:23Z",
    T,
  ];
  for (const ts of forms) {
    const e = validateEvent(catalog, "pageviews", { ...good(), ts });
    assert.equal(e.ts, T, `${JSON.stringify(ts)}`);
    assert.equal(e.fields.ts, T);
  }
  assert.equal(validateEvent(catalog, "pageviews", { ...good(), ts: "2026-06-08T14:23:00.123Z" }).ts, T + 123);
  assert.equal(validateEvent(catalog, "pageviews", { ...good(), ts: "2026-06-08" }).ts, Date.UTC(2026, 5, 8));
});

test("a time without an offset means the same instant whatever the process time zone", () => {
  // Date.parse reads "2026-06-08T14:23:00" as local time: two ingest processes in different
  // zones would put one event in different windows.
  const saved = process.env.TZ;
  const outcome = (tz: string) => {
    process.env.TZ = tz;
    try {
      return validateEvent(catalog, "pageviews", { ...good(), ts: "2026-06-08T14:23:00" }).ts;
    } catch (err) {
      return err instanceof InvalidEventError ? `refused: ${err.field}` : String(err);
    }
  };
  try {
    const inUtc = outcome("UTC");
    const inNewYork = outcome("America/New_York");
    const inTokyo = outcome("Asia/Tokyo");
    assert.deepEqual([inNewYork, inTokyo], [inUtc, inUtc], `UTC: ${String(inUtc)}`);
  } finally {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
});

test("a valid event is normalised: id as string, every field kept, the source named", () => {
  const e = validateEvent(catalog, "pageviews", { id: "e9", article_id: "a", user_id: "u", ts: T });
  assert.deepEqual(e, { source: "pageviews", id: "e9", ts: T, fields: { id: "e9", article_id: "a", user_id: "u", ts: T } });
});

/** FNV-1a 32 straight from the spec, in BigInt arithmetic mod 2^32. */
function referenceFnv1a32(text: string): number {
  let h = 0x811c9dc5n;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= BigInt(byte);
    h = (h * 0x01000193n) % 0x1_0000_0000n;
  }
  return Number(h);
}

test("fnv1a32 matches the FNV-1a spec", () => {
  // Published test vectors.
  assert.equal(fnv1a32(""), 0x811c9dc5);
  assert.equal(fnv1a32("a"), 0xe40c292c);
  assert.equal(fnv1a32("foobar"), 0xbf9cf968);
  assert.equal(referenceFnv1a32("a"), 0xe40c292c, "the reference itself");
  // By hand: "" → 0x811c9dc5; ^0x61 = 0x811c9da4; × 0x01000193 mod 2^32 = 0xe40c292c.
  assert.equal(Number((0x811c9da4n * 0x01000193n) % 0x1_0000_0000n), 0xe40c292c);
  const rnd = prng(7);
  const samples = ["art-1", "héllo", "日本語", "🙂", "a".repeat(1000)];
  for (let i = 0; i < 300; i++) samples.push(String.fromCodePoint(...Array.from({ length: rnd.int(0, 12) }, () => rnd.int(32, 0x2fff))));
  for (const s of samples) {
    const h = fnv1a32(s);
    assert.equal(h, referenceFnv1a32(s), JSON.stringify(s));
    assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff);
  }
});

test("partitionOfKey is the hash mod P, in range and stable for every key type", () => {
  const rnd = prng(11);
  for (const partitions of [1, 2, 3, 8, 13, 1024]) {
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const key = rnd.pick([`k${rnd.int(0, 1e6)}`, rnd.int(-1e9, 1e9), rnd.chance(0.5)]);
      const p = partitionOfKey(key, partitions);
      assert.ok(Number.isInteger(p) && p >= 0 && p < partitions, `${String(key)} → ${p} of ${partitions}`);
      assert.equal(p, referenceFnv1a32(String(key)) % partitions);
      assert.equal(partitionOfKey(key, partitions), p);
      seen.add(p);
    }
    if (partitions <= 13) assert.equal(seen.size, partitions, `every one of ${partitions} partitions is used`);
  }
  // An int key and its string form land together (the stream and a query by key agree).
  assert.equal(partitionOfKey(42, 8), partitionOfKey("42", 8));
  const source = catalog.sources.get("pageviews")!;
  const e = validateEvent(catalog, "pageviews", good());
  assert.equal(partitionOf(source, e, 8), partitionOfKey("art-1", 8));
});
