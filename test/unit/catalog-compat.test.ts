/** Which catalog changes a running cluster takes (core/catalog_compat), and how a change is summed up. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCatalog, type Catalog } from "../../src/core/catalog.js";
import { catalogChanges, incompatibilities } from "../../src/core/catalog_compat.js";

type Doc = { sources: Record<string, Record<string, unknown>>; metrics: Record<string, Record<string, unknown>> };
const base = (): Doc => ({
  sources: {
    pv: { fields: { id: "string", article: "string", user: "string?", ts: "timestamp", sent: "timestamp" }, idField: "id", timeField: "ts", partitionKey: "article" },
    orders: { fields: { oid: "string", ext: "string", amount: "float", at: "timestamp" }, idField: "oid", timeField: "at", partitionKey: "oid" },
  },
  metrics: {
    views: { source: "pv", groupBy: ["article"], window: "1m", aggregates: { n: "count" } },
    revenue: { source: "orders", window: "1h", aggregates: { total: { sum: "amount" } } },
  },
});
const parse = (d: Doc): Catalog => parseCatalog(d, "compat.test");
const changed = (edit: (d: Doc) => void): Catalog => {
  const d = base();
  edit(d);
  return parse(d);
};

test("metrics may change freely, sources may grow: new sources and new optional fields", () => {
  const next = changed((d) => {
    d.sources.clicks = { fields: { cid: "string", at: "timestamp" }, idField: "cid", timeField: "at", partitionKey: "cid" };
    d.sources.pv!.fields = { ...(d.sources.pv!.fields as object), referrer: "string?" };
    d.metrics.views!.window = "5m";
    delete d.metrics.revenue;
    d.metrics.clicks = { source: "clicks", window: "1m", aggregates: { n: "count" } };
  });
  assert.deepEqual(incompatibilities(parse(base()), next), []);
  assert.deepEqual(catalogChanges(parse(base()), next), {
    sourcesAdded: ["clicks"],
    fieldsAdded: ["pv.referrer"],
    metricsAdded: ["clicks"],
    metricsRedefined: ["views"],
    metricsRemoved: ["revenue"],
  });
  assert.deepEqual(catalogChanges(null, parse(base())).metricsAdded, ["views", "revenue"], "the first catalog adds everything");
  assert.deepEqual(catalogChanges(parse(base()), parse(base())), { sourcesAdded: [], fieldsAdded: [], metricsAdded: [], metricsRedefined: [], metricsRemoved: [] });
});

test("anything else about a stored source is refused, each problem named by its entry", () => {
  const cases: [string, (d: Doc) => void, RegExp][] = [
    ["source removed", (d) => (delete d.sources.orders, delete d.metrics.revenue), /^sources\.orders: removed/],
    ["field removed", (d) => (d.sources.pv!.fields = { id: "string", article: "string", ts: "timestamp", sent: "timestamp" }), /^sources\.pv\.fields\.user: removed/],
    ["type changed", (d) => ((d.sources.orders!.fields as Record<string, string>).amount = "int"), /^sources\.orders\.fields\.amount: was float, now int/],
    ["made required", (d) => ((d.sources.pv!.fields as Record<string, string>).user = "string"), /^sources\.pv\.fields\.user: was string\?, now string/],
    ["new required field", (d) => ((d.sources.pv!.fields as Record<string, string>).lang = "string"), /^sources\.pv\.fields\.lang: new and required/],
    ["id field changed", (d) => (d.sources.orders!.idField = "ext"), /^sources\.orders\.idField: was "oid", now "ext": stored events were deduplicated by the old one/],
    ["time field changed", (d) => (d.sources.pv!.timeField = "sent"), /^sources\.pv\.timeField/],
    ["partition key changed", (d) => (d.sources.pv!.partitionKey = "id"), /^sources\.pv\.partitionKey: was "article", now "id": stored events were partitioned by the old one/],
  ];
  for (const [what, edit, want] of cases) {
    let next: Catalog;
    try {
      next = changed(edit);
    } catch (err) {
      assert.fail(`${what}: the fixture itself is invalid: ${(err as Error).message}`);
    }
    const problems = incompatibilities(parse(base()), next).map((p) => `${p.path}: ${p.reason}`);
    assert.ok(problems.some((p) => want.test(p)), `${what}: ${JSON.stringify(problems)}`);
  }
});
