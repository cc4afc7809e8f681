/**
 * The stream-record validator (src/core/events.ts validateStreamEvent): a record on a partition
 * subject is valid only as ingest would have written it. Each rule is shown failing alone, with
 * the problem naming the field; the record ingest writes passes. Also: validateEvent reports
 * every bad field of an event at once.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCatalog } from "../../src/core/catalog.js";
import { InvalidEventError } from "../../src/core/errors.js";
import { partitionOf, validateEvent, validateStreamEvent, type StreamEventInput } from "../../src/core/events.js";
import { readStreamRecord, encode, encodeEvent } from "../../src/nats/codec.js";

const catalog = parseCatalog(
  {
    sources: {
      views: {
        fields: { id: "string", article_id: "string", load_ms: "float", n: "int", bot: "bool", ref: "string?", ts: "timestamp" },
        idField: "id",
        timeField: "ts",
        partitionKey: "article_id",
      },
    },
    metrics: { v: { source: "views", groupBy: ["article_id"], window: "1m", aggregates: { views: "count" } } },
  },
  "stream-events-test",
);
const P = 4;
const T = Date.UTC(2026, 5, 8, 14, 23, 0);
const views = catalog.sources.get("views")!;
const event = validateEvent(catalog, "views", { id: "e1", article_id: "art-1", load_ms: 12.5, n: 3, bot: false, ts: T });
const home = partitionOf(views, event, P);
/** The record ingest writes for `event`, read back as the layers read it. */
type Mutable = { s: unknown; id: unknown; ts: unknown; v: Record<string, unknown> };
const written = (): Mutable => {
  const r = readStreamRecord(encodeEvent(event));
  assert.equal(r.kind, "event");
  if (r.kind !== "event") throw new Error("unreachable");
  return { s: r.s, id: r.id, ts: r.ts, v: { ...(r.v as Record<string, unknown>) } };
};

function problemsOf(rec: StreamEventInput, partition = home) {
  const c = validateStreamEvent(catalog, rec, partition, P);
  assert.equal(c.kind, "invalid", `expected ${JSON.stringify(rec)} to be invalid`);
  if (c.kind !== "invalid") throw new Error("unreachable");
  return c;
}

test("the record ingest writes is valid and comes back normalised", () => {
  const c = validateStreamEvent(catalog, written(), home, P);
  assert.equal(c.kind, "valid");
  if (c.kind === "valid") assert.deepEqual(c.event, event);
});

test("an optional field absent (an older catalog version wrote the event) is valid, read as null", () => {
  const rec = written();
  delete rec.v.ref;
  const c = validateStreamEvent(catalog, rec, home, P);
  assert.equal(c.kind, "valid");
  if (c.kind === "valid") assert.equal(c.event.fields.ref, null);
});

test("each rule alone makes the record invalid, naming the field", () => {
  const cases: [string, (r: ReturnType<typeof written>) => void, string, RegExp][] = [
    ["unparsable time", (r) => (r.v.ts = "not a time"), "ts", /cannot parse/],
    ["time as a string ingest would have turned into ms", (r) => (r.v.ts = "2026-06-08T14:23:00Z"), "ts", /not in the form ingest writes/],
    ["time with a fraction of a ms", (r) => (r.v.ts = T + 0.5), "ts", /whole epoch milliseconds/],
    ["time outside the range", (r) => (r.v.ts = -1), "ts", /outside/],
    ["float Infinity", (r) => (r.v.load_ms = Infinity), "load_ms", /finite/],
    ["float NaN", (r) => (r.v.load_ms = NaN), "load_ms", /finite/],
    ["int not safe", (r) => (r.v.n = 2 ** 60), "n", /integer/],
    ["int with a fraction", (r) => (r.v.n = 1.5), "n", /integer/],
    ["numeric string field", (r) => (r.v.article_id = 12345), "article_id", /expected string, got number/],
    ["empty string", (r) => (r.v.article_id = ""), "article_id", /empty/],
    ["lone surrogate", (r) => (r.v.article_id = "a\uD800"), "article_id", /Unicode/],
    ["bool as a number", (r) => (r.v.bot = 0), "bot", /boolean/],
    ["missing required field", (r) => delete r.v.n, "n", /is missing/],
    ["unknown field", (r) => (r.v.extra = 1), "extra", /not in the schema/],
    ["unknown source", (r) => (r.s = "nope"), "source", /unknown source/],
    ["source not a string", (r) => (r.s = 7), "source", /source name/],
    ["id not the id field", (r) => (r.id = "other"), "(record id)", /not the id field/],
    ["ts not the time field", (r) => (r.ts = T + 1), "(record ts)", /not the time field/],
    ["fields not an object", (r) => ((r as { v: unknown }).v = [1, 2]), "(event)", /expected an object/],
  ];
  for (const [what, spoil, field, reason] of cases) {
    const rec = written();
    spoil(rec);
    const c = problemsOf(rec);
    assert.equal(c.problems.length, 1, `${what}: one problem, got ${JSON.stringify(c.problems)}`);
    assert.equal(c.problems[0]!.field, field, what);
    assert.match(c.problems[0]!.reason, reason, what);
    assert.equal(c.unknownName, field === "extra" || (field === "source" && what === "unknown source"), `${what}: only an unknown name may be fixed by a newer catalog`);
  }
});

test("a record on another partition than its key hashes to is invalid", () => {
  const c = problemsOf(written(), (home + 1) % P);
  assert.equal(c.problems[0]!.field, "article_id");
  assert.match(c.problems[0]!.reason, new RegExp(`hashes to partition ${home}, but the record is on partition ${(home + 1) % P}`));
});

test("every problem of a record is listed", () => {
  const rec = written();
  rec.v.ts = "not a time";
  rec.v.load_ms = Infinity;
  rec.v.extra = true;
  assert.deepEqual(problemsOf(rec).problems.map((p) => p.field).sort(), ["extra", "load_ms", "ts"]);
});

test("readStreamRecord tells what is not a stream record", () => {
  assert.match(String((readStreamRecord(Buffer.from("{not msgpack")) as { reason: string }).reason), /not a stream record|not msgpack/);
  assert.equal(readStreamRecord(Buffer.from([0xc1])).kind, "unreadable", "0xc1 is never msgpack");
  assert.match((readStreamRecord(encode([1, 2, 3])) as { reason: string }).reason, /msgpack array/);
  assert.equal(readStreamRecord(encode({ k: "x" })).kind, "unreadable");
  assert.deepEqual(readStreamRecord(encode({ k: "b", r: 3 })), { kind: "barrier", run: 3 });
});

test("validateEvent reports every bad field at once; field/reason are the first", () => {
  try {
    validateEvent(catalog, "views", { id: "e1", article_id: 5, load_ms: "x", n: 3, bot: "no", ts: "not a time", extra: 1 });
    assert.fail("expected a refusal");
  } catch (err) {
    assert.ok(err instanceof InvalidEventError);
    assert.deepEqual(err.problems.map((p) => p.field), ["extra", "article_id", "load_ms", "bot", "ts"]);
    assert.equal(err.field, "extra");
    assert.equal(err.reason, err.problems[0]!.reason);
    for (const p of err.problems) assert.ok(err.message.includes(`field ${JSON.stringify(p.field)} ${p.reason}`), err.message);
    assert.equal(err.eventId, "e1");
  }
});
