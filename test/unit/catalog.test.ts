/**
 * The catalog (src/core/catalog.ts, catalog_parse.ts): the repository's catalog
 * loads; a valid document parses into typed sources (optional fields), metrics
 * with 0..n group-by fields, a typed filter tree and a list of aggregates; and
 * every malformed one is refused with a CatalogError naming the file, the path
 * of the bad entry and the problem (what was wrong and what is allowed).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { aggregateOf, catalogFingerprint, loadCatalog, metricFingerprint, metricsOf, parseCatalog, parseWindow, windowStart, type MetricDef } from "../../src/core/catalog.js";
import { MAX_NAME_LENGTH, NAME_PATTERN } from "../../src/core/catalog_parse.js";
import { CatalogError } from "../../src/core/errors.js";

const FILE = "test-catalog.json";

type Obj = Record<string, unknown>;
/** A valid catalog document; each test breaks one thing in a fresh copy. */
function doc() {
  return {
    sources: {
      pageviews: {
        fields: {
          id: "string",
          article_id: "string",
          user_id: "string",
          ts: "timestamp",
          n: "int",
          score: "float",
          ok: "bool",
          load: "int?",
          country: "string?",
          seen: "timestamp?",
          flag: "bool?",
          ratio: "float?",
        } as Obj,
        idField: "id",
        timeField: "ts",
        partitionKey: "article_id",
        description: "views",
      } as Obj,
    } as Record<string, Obj>,
    metrics: {
      article_views: { source: "pageviews", groupBy: ["article_id"], window: "1m", aggregates: { views: "count" }, description: "per article" } as Obj,
    } as Record<string, Obj>,
  } as { sources: Record<string, Obj>; metrics: Record<string, Obj> } & Obj;
}
/** doc() with the metric article_views changed by `over`. */
function withMetric(over: Obj) {
  const d = doc();
  Object.assign(d.metrics.article_views!, over);
  return d;
}
const withFilter = (filter: unknown) => withMetric({ filter });
const withAggregates = (aggregates: unknown) => withMetric({ aggregates });

function refusal(d: unknown, file = FILE): CatalogError {
  try {
    parseCatalog(d, file);
  } catch (err) {
    assert.ok(err instanceof CatalogError, `expected CatalogError, got ${String(err)}`);
    assert.equal(err.name, "CatalogError");
    return err;
  }
  assert.fail(`expected the catalog to be refused: ${JSON.stringify(d)}`);
}

/** The error names the file, the path and the problem, in its fields and in its message. */
function assertRefused(d: unknown, path: string, problem: RegExp) {
  const err = refusal(d);
  assert.equal(err.file, FILE);
  assert.equal(err.path, path, err.message);
  assert.match(err.reason, problem);
  assert.equal(err.message, `${FILE}: ${path}: ${err.reason}`);
}

const M = "metrics.article_views";

test("the repository's catalog loads", () => {
  const file = join(process.cwd(), "catalog/catalog.json");
  const c = loadCatalog(file);
  const pv = c.sources.get("pageviews");
  assert.ok(pv, "source pageviews");
  assert.equal(pv.idField, "id");
  assert.equal(pv.timeField, "ts");
  assert.equal(pv.partitionKey, "article_id");
  assert.deepEqual(pv.fields.ts, { type: "timestamp", optional: false });
  const m = c.metrics.get("article_views");
  assert.ok(m, "metric article_views");
  assert.deepEqual(
    { source: m.source, groupBy: m.groupBy, window: m.window, windowMs: m.windowMs, filter: m.filter, aggregates: m.aggregates },
    { source: "pageviews", groupBy: ["article_id"], window: "1m", windowMs: 60_000, filter: null, aggregates: [{ name: "views", kind: "count", field: null, fieldType: null }] },
  );
  // metricsOf partitions the metrics by source.
  assert.ok(metricsOf(c, "pageviews").some((x) => x.name === "article_views"));
  for (const x of c.metrics.values()) assert.ok(c.sources.has(x.source), `${x.name}: its source is defined`);
  assert.deepEqual([...c.sources.keys()].flatMap((s) => metricsOf(c, s).map((x) => x.name)).sort(), [...c.metrics.keys()].sort());
  assert.deepEqual(metricsOf(c, "nothing"), []);
});

test("a valid document parses with every field type, required and optional", () => {
  const c = parseCatalog(doc(), FILE);
  const req = (type: string) => ({ type, optional: false });
  const opt = (type: string) => ({ type, optional: true });
  assert.deepEqual(c.sources.get("pageviews")!.fields, {
    id: req("string"),
    article_id: req("string"),
    user_id: req("string"),
    ts: req("timestamp"),
    n: req("int"),
    score: req("float"),
    ok: req("bool"),
    load: opt("int"),
    country: opt("string"),
    seen: opt("timestamp"),
    flag: opt("bool"),
    ratio: opt("float"),
  });
  assert.equal(c.metrics.get("article_views")!.description, "per article");
});

test("a metric with every aggregate kind, every filter form and 0 or 2 group-by fields parses into typed values", () => {
  const d = doc();
  d.metrics.full = {
    source: "pageviews",
    groupBy: ["article_id", "ok"],
    window: "5m",
    filter: {
      and: [
        { field: "n", op: "ge", value: 3 },
        { or: [{ field: "country", op: "in", values: ["de", "日本"] }, { not: { field: "seen", op: "lt", value: "2026-06-08T14:00:00Z" } }] },
        { field: "score", op: "ne", value: -0 },
        { field: "flag", op: "eq", value: false },
      ],
    },
    aggregates: {
      views: "count",
      total: { sum: "n" },
      first_seen: { min: "seen" },
      high: { max: "score" },
      mean: { avg: "load" },
      users: { distinct: "user_id" },
      flags: { distinct: "flag" },
      q: { quantiles: "ratio" },
    },
  };
  d.metrics.global = { source: "pageviews", window: "1d", aggregates: { views: "count" } };
  d.metrics.global_explicit = { source: "pageviews", groupBy: [], window: "1h", aggregates: { n_total: { sum: "n" } } };
  const c = parseCatalog(d, FILE);
  const full = c.metrics.get("full")!;
  assert.deepEqual(full, {
    name: "full",
    source: "pageviews",
    groupBy: ["article_id", "ok"],
    windowMs: 300_000,
    window: "5m",
    filter: {
      kind: "and",
      filters: [
        { kind: "cmp", field: "n", op: "ge", value: 3 },
        {
          kind: "or",
          filters: [
            { kind: "in", field: "country", values: ["de", "日本"] },
            // Timestamps are normalised to epoch ms, as events are.
            { kind: "not", filter: { kind: "cmp", field: "seen", op: "lt", value: Date.UTC(2026, 5, 8, 14) } },
          ],
        },
        // -0 is normalised to 0, as in events (deepStrictEqual tells them apart).
        { kind: "cmp", field: "score", op: "ne", value: 0 },
        { kind: "cmp", field: "flag", op: "eq", value: false },
      ],
    },
    aggregates: [
      { name: "views", kind: "count", field: null, fieldType: null },
      { name: "total", kind: "sum", field: "n", fieldType: "int" },
      { name: "first_seen", kind: "min", field: "seen", fieldType: "timestamp" },
      { name: "high", kind: "max", field: "score", fieldType: "float" },
      { name: "mean", kind: "avg", field: "load", fieldType: "int" },
      { name: "users", kind: "distinct", field: "user_id", fieldType: "string" },
      { name: "flags", kind: "distinct", field: "flag", fieldType: "bool" },
      { name: "q", kind: "quantiles", field: "ratio", fieldType: "float" },
    ],
    description: "",
  } satisfies MetricDef);
  assert.deepEqual(c.metrics.get("global")!.groupBy, [], "no groupBy: a global metric");
  assert.equal(c.metrics.get("global")!.filter, null);
  assert.deepEqual(c.metrics.get("global_explicit")!.groupBy, []);
  assert.equal(aggregateOf(full, "")?.name, "views", "the first aggregate is the default");
  assert.equal(aggregateOf(full, "mean")?.kind, "avg");
  assert.equal(aggregateOf(full, "nope"), undefined);
  assert.deepEqual(metricsOf(c, "pageviews").map((m) => m.name), ["article_views", "full", "global", "global_explicit"]);
});

test("fingerprints: equal definitions are equal, any change to a metric changes its own and the catalog's", () => {
  const base = parseCatalog(doc(), FILE);
  const again = parseCatalog(doc(), "another-file.json");
  assert.equal(catalogFingerprint(again), catalogFingerprint(base), "the file name is not part of the definition");
  assert.equal(metricFingerprint(again.metrics.get("article_views")!), metricFingerprint(base.metrics.get("article_views")!));
  const changes: Obj[] = [{ window: "5m" }, { groupBy: ["user_id"] }, { aggregates: { clicks: "count" } }, { filter: { field: "n", op: "gt", value: 1 } }];
  for (const change of changes) {
    const other = parseCatalog(withMetric(change), FILE);
    assert.notEqual(metricFingerprint(other.metrics.get("article_views")!), metricFingerprint(base.metrics.get("article_views")!), JSON.stringify(change));
    assert.notEqual(catalogFingerprint(other), catalogFingerprint(base), JSON.stringify(change));
  }
  // Adding a metric changes the catalog but not the other metrics.
  const d = doc();
  d.metrics.other = { source: "pageviews", window: "1m", aggregates: { views: "count" } };
  const more = parseCatalog(d, FILE);
  assert.notEqual(catalogFingerprint(more), catalogFingerprint(base));
  assert.equal(metricFingerprint(more.metrics.get("article_views")!), metricFingerprint(base.metrics.get("article_views")!));
});

test("group-by: unknown, optional, float, timestamp and repeated fields are refused; it must be a list", () => {
  assertRefused(withMetric({ groupBy: ["article"] }), `${M}.groupBy[0]`, /unknown field "article" of source pageviews; fields: id, article_id/);
  assertRefused(withMetric({ groupBy: ["article_id", "nope"] }), `${M}.groupBy[1]`, /unknown field "nope"/);
  assertRefused(withMetric({ groupBy: "article_id" }), `${M}.groupBy`, /expected a list of field names \(empty for a global metric\)/);
  assertRefused(withMetric({ groupBy: ["load"] }), `${M}.groupBy[0]`, /cannot group by optional field load/);
  assertRefused(withMetric({ groupBy: ["article_id", "country"] }), `${M}.groupBy[1]`, /cannot group by optional field country/);
  assertRefused(withMetric({ groupBy: ["score"] }), `${M}.groupBy[0]`, /cannot group by score \(float\); group-by fields are string, int, bool/);
  assertRefused(withMetric({ groupBy: ["ratio"] }), `${M}.groupBy[0]`, /cannot group by ratio \(float\)/);
  assertRefused(withMetric({ groupBy: ["ts"] }), `${M}.groupBy[0]`, /cannot group by ts \(timestamp\)/);
  assertRefused(withMetric({ groupBy: ["article_id", "user_id", "article_id"] }), `${M}.groupBy`, /a field appears twice/);
  // The accepted types, and none at all.
  for (const groupBy of [[], ["n"], ["ok"], ["article_id", "user_id", "n", "ok"]]) parseCatalog(withMetric({ groupBy }), FILE);
});

test("a bad window is refused with examples of good ones", () => {
  for (const w of ["1w", "0m", "m", "1.5m", "", 60, null]) {
    assertRefused(withMetric({ window: w }), `${M}.window`, new RegExp(`bad window ${JSON.stringify(w)?.replace(/\./g, "\\.") ?? "undefined"}; expected e\\.g\\. 30s, 1m`));
  }
  const d = doc();
  delete d.metrics.article_views!.window;
  assertRefused(d, `${M}.window`, /bad window undefined/);
});

test("aggregates: empty or missing, an unknown kind, a malformed entry and a field of the wrong type are refused", () => {
  const A = `${M}.aggregates`;
  for (const aggregates of [{}, [], "count", null, undefined]) assertRefused(withAggregates(aggregates), A, /expected an object of name → aggregate/);
  const d = doc();
  delete d.metrics.article_views!.aggregates;
  assertRefused(d, A, /expected an object of name → aggregate/);
  // Unknown kinds, naming the allowed ones.
  assertRefused(withAggregates({ views: "count", p50: { median: "n" } }), `${A}.p50`, /unknown aggregate "median"; allowed: count, sum, avg, min, max, distinct, quantiles/);
  assertRefused(withAggregates({ views: "sum" }), `${A}.views`, /expected "count" or one of \{"sum": field/);
  assertRefused(withAggregates({ views: { sum: "n", max: "n" } }), `${A}.views`, /expected "count" or one of/);
  assertRefused(withAggregates({ views: 1 }), `${A}.views`, /expected "count" or one of/);
  // Fields: unknown, and of a type the aggregate cannot take.
  assertRefused(withAggregates({ total: { sum: "nope" } }), `${A}.total.sum`, /unknown field "nope" of source pageviews/);
  assertRefused(withAggregates({ total: { sum: "user_id" } }), `${A}.total.sum`, /sum needs a field of type int or float; user_id is string/);
  assertRefused(withAggregates({ total: { sum: "country" } }), `${A}.total.sum`, /sum needs a field of type int or float; country is string/);
  assertRefused(withAggregates({ total: { sum: "ts" } }), `${A}.total.sum`, /sum needs a field of type int or float; ts is timestamp/);
  assertRefused(withAggregates({ mean: { avg: "ok" } }), `${A}.mean.avg`, /avg needs a field of type int or float; ok is bool/);
  assertRefused(withAggregates({ low: { min: "user_id" } }), `${A}.low.min`, /min needs a field of type int or float or timestamp; user_id is string/);
  assertRefused(withAggregates({ high: { max: "flag" } }), `${A}.high.max`, /max needs a field of type int or float or timestamp; flag is bool/);
  assertRefused(withAggregates({ d: { distinct: "score" } }), `${A}.d.distinct`, /distinct needs a field of type string or int or bool; score is float/);
  assertRefused(withAggregates({ d: { distinct: "ratio" } }), `${A}.d.distinct`, /distinct needs a field of type string or int or bool; ratio is float/);
  assertRefused(withAggregates({ d: { distinct: "ts" } }), `${A}.d.distinct`, /distinct needs .*; ts is timestamp/);
  assertRefused(withAggregates({ q: { quantiles: "country" } }), `${A}.q.quantiles`, /quantiles needs a field of type int or float; country is string/);
  assertRefused(withAggregates({ q: { quantiles: "seen" } }), `${A}.q.quantiles`, /quantiles needs a field of type int or float; seen is timestamp/);
  // Names.
  assertRefused(withAggregates({ Views: "count" }), `${A}.Views`, /lower_snake_case/);
});

test("filters: an unknown field, an ordering operator on a string or bool, a value of the wrong type are refused, nested paths named", () => {
  const F = `${M}.filter`;
  // Unknown fields, at the top and nested.
  assertRefused(withFilter({ field: "nope", op: "eq", value: 1 }), `${F}.field`, /unknown field "nope" of source pageviews/);
  assertRefused(withFilter({ field: "nope", op: "in", values: [1] }), `${F}.field`, /unknown field "nope"/);
  assertRefused(
    withFilter({ and: [{ field: "n", op: "gt", value: 1 }, { or: [{ not: { field: "missing", op: "eq", value: "x" } }] }] }),
    `${F}.and[1].or[0].not.field`,
    /unknown field "missing"/,
  );
  // Ordering needs an ordered field; eq and ne are fine everywhere.
  assertRefused(withFilter({ field: "user_id", op: "lt", value: "m" }), `${F}.op`, /lt needs an ordered field \(int, float, timestamp\); user_id is string/);
  assertRefused(withFilter({ field: "country", op: "ge", value: "m" }), `${F}.op`, /ge needs an ordered field .*; country is string/);
  assertRefused(withFilter({ not: { field: "ok", op: "gt", value: false } }), `${F}.not.op`, /gt needs an ordered field .*; ok is bool/);
  for (const op of ["eq", "ne"]) parseCatalog(withFilter({ and: [{ field: "user_id", op, value: "u" }, { field: "ok", op, value: true }] }), FILE);
  // Values must be of the field's type.
  assertRefused(withFilter({ field: "n", op: "eq", value: "3" }), `${F}.value`, /expected an integer, got string "3" \(field n is int\)/);
  assertRefused(withFilter({ field: "n", op: "eq", value: 1.5 }), `${F}.value`, /expected an integer, got number 1\.5 \(field n is int\)/);
  assertRefused(withFilter({ field: "load", op: "lt", value: null }), `${F}.value`, /expected an integer, got null.*\(field load is int\)/);
  assertRefused(withFilter({ field: "user_id", op: "eq", value: 7 }), `${F}.value`, /expected string, got number \(field user_id is string\)/);
  assertRefused(withFilter({ field: "user_id", op: "eq", value: "" }), `${F}.value`, /is empty \(field user_id is string\)/);
  assertRefused(withFilter({ field: "ok", op: "eq", value: "true" }), `${F}.value`, /expected boolean, got string \(field ok is bool\)/);
  assertRefused(withFilter({ field: "score", op: "gt", value: "0.5" }), `${F}.value`, /expected a finite number, got string \(field score is float\)/);
  assertRefused(withFilter({ field: "seen", op: "lt", value: "yesterday" }), `${F}.value`, /cannot parse "yesterday" as a time.*\(field seen is timestamp\)/);
  assertRefused(withFilter({ field: "country", op: "in", values: ["de", 5] }), `${F}.values[1]`, /expected string, got number \(field country is string\)/);
  assertRefused(withFilter({ or: [{ field: "n", op: "eq", value: 1 }, { field: "n", op: "in", values: [1, 2, "3"] }] }), `${F}.or[1].values[2]`, /expected an integer, got string "3"/);
});

test("filters: malformed shapes are refused naming the allowed forms", () => {
  const F = `${M}.filter`;
  assertRefused(withFilter("n > 3"), F, /expected a filter object: \{field, op, value\}, \{field, op: "in", values\}, \{and: \[\.\.\.\]\}, \{or: \[\.\.\.\]\} or \{not: \.\.\.\}/);
  assertRefused(withFilter([{ field: "n", op: "eq", value: 1 }]), F, /expected a filter object/);
  assertRefused(withFilter(null), F, /expected a filter object/);
  assertRefused(withFilter({ field: "n", op: "like", value: 1 }), `${F}.op`, /unknown operator "like"; allowed: eq, ne, lt, le, gt, ge, in/);
  assertRefused(withFilter({ field: "n", value: 1 }), `${F}.op`, /unknown operator undefined/);
  assertRefused(withFilter({ field: "n", op: "in", value: [1] }), `${F}.value`, /unknown key; allowed: field, op, values/);
  assertRefused(withFilter({ field: "n", op: "eq", values: [1] }), `${F}.values`, /unknown key; allowed: field, op, value/);
  assertRefused(withFilter({ field: "n", op: "in", values: [] }), `${F}.values`, /expected a non-empty list/);
  assertRefused(withFilter({ and: [] }), `${F}.and`, /expected a non-empty list of filters/);
  assertRefused(withFilter({ or: { field: "n", op: "eq", value: 1 } }), `${F}.or`, /expected a non-empty list of filters/);
  assertRefused(withFilter({ and: [{ field: "n", op: "eq", value: 1 }], not: { field: "n", op: "eq", value: 2 } }), `${F}.not`, /unknown key; allowed: and/);
  assertRefused(withFilter({ not: { field: "n", op: "eq", value: 2 }, field: "n" }), `${F}.field`, /unknown key; allowed: not/);
  assertRefused(withFilter({ not: [] }), `${F}.not`, /expected a filter object/);
});

test("an unknown source of a metric is refused naming the defined ones", () => {
  assertRefused(withMetric({ source: "clicks" }), `${M}.source`, /unknown source "clicks"; defined: pageviews/);
});

test("an unknown field type is refused naming the allowed ones and the optional marker", () => {
  for (const t of ["text", "int??", "?", "?int", "String", 5]) {
    const d = doc();
    d.sources.pageviews!.fields = { ...(d.sources.pageviews!.fields as Obj), user_id: t };
    assertRefused(
      d,
      "sources.pageviews.fields.user_id",
      typeof t === "string" ? new RegExp(`unknown type ${JSON.stringify(t).replace(/\?/g, "\\?")}; allowed: string, int, float, bool, timestamp \\(add "\\?" for optional\\)`) : /expected a type name, got 5/,
    );
  }
});

test("idField, timeField and partitionKey must name a required field of a fitting type", () => {
  const source = (over: Obj) => {
    const d = doc();
    Object.assign(d.sources.pageviews!, over);
    return d;
  };
  const S = "sources.pageviews";
  assertRefused(source({ idField: "uuid" }), `${S}.idField`, /unknown field "uuid"/);
  assertRefused(source({ idField: "ts" }), `${S}.idField`, /field "ts" is timestamp; expected string or int/);
  assertRefused(source({ timeField: "user_id" }), `${S}.timeField`, /field "user_id" is string; expected timestamp/);
  assertRefused(source({ timeField: 3 }), `${S}.timeField`, /expected a field name/);
  assertRefused(source({ partitionKey: "score" }), `${S}.partitionKey`, /field "score" is float; expected string or int or bool/);
  // Optional fields cannot play these roles: every event needs them.
  assertRefused(source({ idField: "country" }), `${S}.idField`, /field "country" is optional; it must be required/);
  assertRefused(source({ idField: "load" }), `${S}.idField`, /field "load" is optional; it must be required/);
  assertRefused(source({ timeField: "seen" }), `${S}.timeField`, /field "seen" is optional; it must be required/);
  assertRefused(source({ partitionKey: "flag" }), `${S}.partitionKey`, /field "flag" is optional; it must be required/);
  // An int id and a bool partition key are fine.
  parseCatalog(source({ idField: "n", partitionKey: "ok" }), FILE);
});

test("an unknown key is refused where it is, naming the allowed keys", () => {
  assertRefused(withMetric({ windw: "1m" }), `${M}.windw`, /unknown key; allowed: source, groupBy, window, filter, aggregates, description/);
  assertRefused(withMetric({ aggregate: "count" }), `${M}.aggregate`, /unknown key; allowed: .*aggregates/);
  let d = doc();
  d.sources.pageviews!.primaryKey = "id";
  assertRefused(d, "sources.pageviews.primaryKey", /unknown key; allowed: fields, idField, timeField, partitionKey, description/);
  d = doc();
  d.version = 2;
  assertRefused(d, "(root).version", /unknown key; allowed: sources, metrics/);
});

test("names, shapes and the root are checked", () => {
  assertRefused([], "(root)", /expected an object with sources and metrics/);
  assertRefused({ sources: [], metrics: {} }, "sources", /expected an object/);
  assertRefused({ sources: {} }, "sources", /expected an object/);
  assertRefused({ sources: doc().sources }, "metrics", /expected an object/);
  let d = doc();
  d.sources.PageViews = d.sources.pageviews!;
  assertRefused(d, "sources.PageViews", /lower_snake_case/);
  d = doc();
  d.metrics["article-views"] = d.metrics.article_views!;
  assertRefused(d, "metrics.article-views", /lower_snake_case/);
  d = doc();
  d.sources.pageviews!.fields = {};
  assertRefused(d, "sources.pageviews.fields", /expected an object of field name → type/);
  d = doc();
  d.sources.pageviews!.fields = { ...(d.sources.pageviews!.fields as Obj), Bad: "int" };
  assertRefused(d, "sources.pageviews.fields.Bad", /lower_snake_case/);
  assertRefused(withMetric({ description: 5 }), `${M}.description`, /expected a string/);
});

/** Names that must never reach DDL or SQL text: quotes, a backtick, a statement, a space, a look-alike, too long, empty. */
const HOSTILE_NAMES = ["it's", 'say"hi', "back`tick", "x; DROP TABLE x", "x`; DROP TABLE lambda.master_pageviews; --", "page views", "p\u0430geviews", "a".repeat(MAX_NAME_LENGTH + 1), "", "tab\tname", "new\nline", "nul\u0000"];

test("hostile names are refused wherever a name is declared, naming the path, the name and the pattern", () => {
  assert.notEqual("p\u0430geviews", "pageviews", "the look-alike differs from the real name in one letter");
  const declared: [string, (name: string) => unknown, (name: string) => string][] = [
    [
      "source",
      (n) => {
        const d = doc();
        d.sources = { [n]: d.sources.pageviews! };
        d.metrics.article_views!.source = n;
        return d;
      },
      (n) => `sources.${n}`,
    ],
    [
      "field",
      (n) => {
        const d = doc();
        (d.sources.pageviews!.fields as Obj)[n] = "int";
        return d;
      },
      (n) => `sources.pageviews.fields.${n}`,
    ],
    [
      "metric",
      (n) => {
        const d = doc();
        d.metrics[n] = d.metrics.article_views!;
        return d;
      },
      (n) => `metrics.${n}`,
    ],
    ["aggregate", (n) => withAggregates({ views: "count", [n]: "count" }), (n) => `${M}.aggregates.${n}`],
  ];
  for (const [what, build, path] of declared) {
    for (const name of HOSTILE_NAMES) {
      const err = refusal(build(name));
      assert.equal(err.path, path(name), `${what} ${JSON.stringify(name)}`);
      assert.ok(err.reason.startsWith(`${what} name ${JSON.stringify(name)}`), `${what} ${JSON.stringify(name)}: ${err.reason}`);
      assert.ok(err.reason.includes(NAME_PATTERN.source), `names the pattern: ${err.reason}`);
    }
    // The longest name allowed still parses: the limit is where it says.
    assert.doesNotThrow(() => parseCatalog(build("a".repeat(MAX_NAME_LENGTH)), FILE), what);
  }
  assert.match(refusal(withAggregates({ ["a".repeat(MAX_NAME_LENGTH + 1)]: "count" })).reason, new RegExp(`\\(${MAX_NAME_LENGTH + 1} characters\\)`));
});

test("names used, not declared (group-by, filter, aggregate and role fields), must be declared fields, so a hostile one is unknown", () => {
  for (const name of HOSTILE_NAMES) {
    assertRefused(withMetric({ groupBy: [name] }), `${M}.groupBy[0]`, /unknown field/);
    assertRefused(withFilter({ field: name, op: "eq", value: 1 }), `${M}.filter.field`, /unknown field/);
    assertRefused(withAggregates({ total: { sum: name } }), `${M}.aggregates.total.sum`, /unknown field/);
    const d = doc();
    d.sources.pageviews!.partitionKey = name;
    assertRefused(d, "sources.pageviews.partitionKey", /unknown field/);
  }
});

test("names inherited from Object.prototype are not types, aggregates, fields or operators", () => {
  // `x in FieldTypes`, `x in Aggregates` and `g in source.fields` also find inherited members.
  const d = doc();
  d.sources.pageviews!.fields = { ...(d.sources.pageviews!.fields as Obj), user_id: "toString" };
  assertRefused(d, "sources.pageviews.fields.user_id", /unknown type "toString"/);
  assertRefused(withAggregates({ views: { constructor: "n" } }), `${M}.aggregates.views`, /unknown aggregate "constructor"/);
  assertRefused(withAggregates({ total: { sum: "valueOf" } }), `${M}.aggregates.total.sum`, /unknown field "valueOf"/);
  assertRefused(withMetric({ groupBy: ["hasOwnProperty"] }), `${M}.groupBy[0]`, /unknown field "hasOwnProperty"/);
  assertRefused(withFilter({ field: "toString", op: "eq", value: 1 }), `${M}.filter.field`, /unknown field "toString"/);
  assertRefused(withFilter({ field: "n", op: "toString", value: 1 }), `${M}.filter.op`, /unknown operator "toString"/);
  const s = doc();
  s.sources.pageviews!.idField = "constructor";
  assertRefused(s, "sources.pageviews.idField", /unknown field "constructor"/);
  assertRefused(withMetric({ source: "toString" }), `${M}.source`, /unknown source "toString"/);
});

test("loadCatalog names the file it could not read or parse, and the file of a bad entry", () => {
  const dir = mkdtempSync(join(tmpdir(), "catalog-test-"));
  try {
    const missing = join(dir, "missing.json");
    assert.throws(() => loadCatalog(missing), (err: unknown) => err instanceof CatalogError && err.file === missing && err.path === "(file)" && /cannot read/.test(err.message) && err.message.startsWith(missing));
    const broken = join(dir, "broken.json");
    writeFileSync(broken, "{ not json");
    assert.throws(() => loadCatalog(broken), (err: unknown) => err instanceof CatalogError && err.file === broken && /not valid JSON/.test(err.reason));
    const bad = join(dir, "bad.json");
    const d = doc();
    d.metrics.article_views!.window = "1y";
    writeFileSync(bad, JSON.stringify(d));
    assert.throws(
      () => loadCatalog(bad),
      (err: unknown) => err instanceof CatalogError && err.message === `${bad}: metrics.article_views.window: bad window "1y"; expected e.g. 30s, 1m, 5m, 1h, 1d`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("parseWindow reads a positive whole number and one unit of s, m, h or d", () => {
  const cases: [string, number | undefined][] = [
    ["30s", 30_000],
    ["1s", 1_000],
    ["1m", 60_000],
    ["5m", 300_000],
    ["90m", 5_400_000],
    ["1h", 3_600_000],
    ["24h", 86_400_000],
    ["1d", 86_400_000],
    ["7d", 604_800_000],
    ["0s", undefined],
    ["01m", undefined],
    ["-1m", undefined],
    ["1.5m", undefined],
    ["1M", undefined],
    ["1w", undefined],
    ["1ms", undefined],
    ["m", undefined],
    ["1", undefined],
    [" 1m", undefined],
    ["1m ", undefined],
    ["", undefined],
  ];
  for (const [text, ms] of cases) assert.equal(parseWindow(text), ms, JSON.stringify(text));
});

test("windowStart floors to the window", () => {
  assert.equal(windowStart(0, 60_000), 0);
  assert.equal(windowStart(59_999, 60_000), 0);
  assert.equal(windowStart(60_000, 60_000), 60_000);
  const t = Date.UTC(2026, 5, 8, 14, 23, 45, 678);
  assert.equal(windowStart(t, 60_000), Date.UTC(2026, 5, 8, 14, 23));
  assert.equal(windowStart(t, 3_600_000), Date.UTC(2026, 5, 8, 14));
  assert.equal(windowStart(t, 86_400_000), Date.UTC(2026, 5, 8));
});
