/**
 * The catalog (src/core/catalog.ts): the repository's catalog loads, and every
 * malformed one is refused with a CatalogError naming the file, the path of the
 * bad entry and the problem.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadCatalog, metricsOf, parseCatalog, parseWindow, windowStart } from "../../src/core/catalog.js";
import { CatalogError } from "../../src/core/errors.js";

const FILE = "test-catalog.json";

/** A valid catalog document; each test breaks one thing in a fresh copy. */
function doc() {
  return {
    sources: {
      pageviews: {
        fields: { id: "string", article_id: "string", user_id: "string", ts: "timestamp", n: "int", score: "float", ok: "bool" },
        idField: "id",
        timeField: "ts",
        partitionKey: "article_id",
        description: "views",
      },
    },
    metrics: {
      article_views: { source: "pageviews", groupBy: ["article_id"], window: "1m", aggregate: "count", description: "per article" },
    },
  } as { sources: Record<string, Record<string, unknown>>; metrics: Record<string, Record<string, unknown>> } & Record<string, unknown>;
}

function refusal(d: unknown, file = FILE): CatalogError {
  try {
    parseCatalog(d, file);
  } catch (err) {
    assert.ok(err instanceof CatalogError, `expected CatalogError, got ${String(err)}`);
    assert.equal(err.name, "CatalogError");
    return err;
  }
  assert.fail("expected the catalog to be refused");
}

/** The error names the file, the path and the problem, in its fields and in its message. */
function assertRefused(d: unknown, path: string, problem: RegExp) {
  const err = refusal(d);
  assert.equal(err.file, FILE);
  assert.equal(err.path, path, err.message);
  assert.match(err.reason, problem);
  assert.equal(err.message, `${FILE}: ${path}: ${err.reason}`);
}

test("the repository's catalog loads", () => {
  const file = join(process.cwd(), "catalog/catalog.json");
  const c = loadCatalog(file);
  const pv = c.sources.get("pageviews");
  assert.ok(pv, "source pageviews");
  assert.equal(pv.idField, "id");
  assert.equal(pv.timeField, "ts");
  assert.equal(pv.partitionKey, "article_id");
  assert.equal(pv.fields.ts, "timestamp");
  const m = c.metrics.get("article_views");
  assert.ok(m, "metric article_views");
  assert.deepEqual({ source: m.source, groupBy: m.groupBy, window: m.window, windowMs: m.windowMs, aggregate: m.aggregate }, {
    source: "pageviews",
    groupBy: ["article_id"],
    window: "1m",
    windowMs: 60_000,
    aggregate: "count",
  });
  assert.deepEqual(metricsOf(c, "pageviews").map((x) => x.name), ["article_views"]);
  assert.deepEqual(metricsOf(c, "nothing"), []);
});

test("a valid document parses with every field type", () => {
  const c = parseCatalog(doc(), FILE);
  assert.deepEqual(c.sources.get("pageviews")!.fields, { id: "string", article_id: "string", user_id: "string", ts: "timestamp", n: "int", score: "float", ok: "bool" });
  assert.equal(c.metrics.get("article_views")!.description, "per article");
});

test("a groupBy field the source does not have is refused", () => {
  const d = doc();
  d.metrics.article_views!.groupBy = ["article"];
  assertRefused(d, "metrics.article_views.groupBy", /unknown field "article" of source pageviews/);
  d.metrics.article_views!.groupBy = [];
  assertRefused(d, "metrics.article_views.groupBy", /exactly one field/);
  d.metrics.article_views!.groupBy = "article_id";
  assertRefused(d, "metrics.article_views.groupBy", /exactly one field/);
});

test("a bad window is refused with examples of good ones", () => {
  for (const w of ["1w", "0m", "m", "1.5m", "", 60, null]) {
    const d = doc();
    d.metrics.article_views!.window = w;
    assertRefused(d, "metrics.article_views.window", new RegExp(`bad window ${JSON.stringify(w)?.replace(/\./g, "\\.") ?? "undefined"}; expected e\\.g\\. 30s, 1m`));
  }
  const d = doc();
  delete d.metrics.article_views!.window;
  assertRefused(d, "metrics.article_views.window", /bad window undefined/);
});

test("an unknown aggregate is refused naming the allowed ones", () => {
  const d = doc();
  d.metrics.article_views!.aggregate = "median";
  assertRefused(d, "metrics.article_views.aggregate", /unknown aggregate "median"; allowed: count/);
});

test("an unknown source of a metric is refused naming the defined ones", () => {
  const d = doc();
  d.metrics.article_views!.source = "clicks";
  assertRefused(d, "metrics.article_views.source", /unknown source "clicks"; defined: pageviews/);
});

test("an unknown field type is refused naming the allowed ones", () => {
  const d = doc();
  (d.sources.pageviews!.fields as Record<string, unknown>).user_id = "text";
  assertRefused(d, "sources.pageviews.fields.user_id", /unknown type "text"; allowed: string, int, float, bool, timestamp/);
});

test("idField, timeField and partitionKey must name a field of a fitting type", () => {
  let d = doc();
  d.sources.pageviews!.idField = "uuid";
  assertRefused(d, "sources.pageviews.idField", /unknown field "uuid"/);
  d = doc();
  d.sources.pageviews!.idField = "ts";
  assertRefused(d, "sources.pageviews.idField", /field "ts" is timestamp; expected string or int/);
  d = doc();
  d.sources.pageviews!.timeField = "user_id";
  assertRefused(d, "sources.pageviews.timeField", /field "user_id" is string; expected timestamp/);
  d = doc();
  d.sources.pageviews!.timeField = 3;
  assertRefused(d, "sources.pageviews.timeField", /expected a field name/);
  d = doc();
  d.sources.pageviews!.partitionKey = "score";
  assertRefused(d, "sources.pageviews.partitionKey", /field "score" is float; expected string or int or bool/);
});

test("an unknown key is refused where it is, naming the allowed keys", () => {
  let d = doc();
  d.metrics.article_views!.windw = "1m";
  assertRefused(d, "metrics.article_views.windw", /unknown key; allowed: source, groupBy, window, aggregate, description/);
  d = doc();
  d.sources.pageviews!.primaryKey = "id";
  assertRefused(d, "sources.pageviews.primaryKey", /unknown key; allowed: fields, idField, timeField, partitionKey, description/);
  d = doc();
  d.version = 2;
  assertRefused(d, "(root).version", /unknown key; allowed: sources, metrics/);
});

test("names, shapes and the root are checked", () => {
  assertRefused([], "(root)", /expected an object with sources and metrics/);
  assertRefused({ sources: [], metrics: {} }, "sources", /expected an object/);
  assertRefused({ sources: {} }, "metrics", /expected an object/);
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
  d.metrics.article_views!.description = 5;
  assertRefused(d, "metrics.article_views.description", /expected a string/);
});

test("names inherited from Object.prototype are not types, aggregates or fields", () => {
  // `x in FieldTypes`, `x in Aggregates` and `g in source.fields` also find inherited members.
  let d = doc();
  (d.sources.pageviews!.fields as Record<string, unknown>).user_id = "toString";
  assertRefused(d, "sources.pageviews.fields.user_id", /unknown type "toString"/);
  d = doc();
  d.metrics.article_views!.aggregate = "constructor";
  assertRefused(d, "metrics.article_views.aggregate", /unknown aggregate "constructor"/);
  d = doc();
  d.metrics.article_views!.groupBy = ["hasOwnProperty"];
  assertRefused(d, "metrics.article_views.groupBy", /unknown field "hasOwnProperty"/);
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
