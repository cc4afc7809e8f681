import { test } from "node:test";
import assert from "node:assert/strict";
import { aggregateShape, answerJson, keyColumns, keyLabel, partsLegend, renderAnswers, renderSeries } from "../../src/cli/answers.js";
import { queryJson, renderQuery } from "../../src/cli/commands/query.js";
import { renderTop, topJson } from "../../src/cli/commands/top.js";
import { renderValid } from "../../src/cli/commands/catalog.js";
import { aggregateText, catalogJson, filterFieldNames, filterText, metricFromInfo, renderMetricDetail, renderMetricsTable } from "../../src/cli/metric_view.js";
import { table } from "../../src/cli/render.js";
import { parseCatalog } from "../../src/core/catalog.js";
import type { KeyAnswer, QueryResponse } from "../../src/gen/lambda/v1/serving.js";

const T0 = Date.UTC(2026, 5, 8, 14, 23, 0);

function answer(a: Partial<KeyAnswer>): KeyAnswer {
  return { key: "", group: {}, total: undefined, batchPart: undefined, speedPart: undefined, events: 0, series: [], ...a };
}

const partitions = [{ partition: 2, cutSeq: 10, appliedSeq: 14, speedEventsHeld: 4, generation: 3 }];

test("a column of numbers and absent values is right-aligned; absent prints as -", () => {
  assert.equal(table(["k", "v"], [["a", 5], ["bb", "-"], ["c", 123]]), "k     v\na     5\nbb    -\nc   123\n");
  assert.equal(table(["k", "value"], [["a", "-"]]), "k  value\na      -\n");
  assert.equal(table(["k", "value"], [["a", "x"]]), "k  value\na  x\n");
});

test("key columns: group-by fields, else the raw key, else none (global)", () => {
  assert.deepEqual(keyColumns([answer({ key: "a-1", group: { article_id: "a-1" } })]), { names: ["article_id"], fromGroup: true });
  assert.deepEqual(keyColumns([answer({ key: "x", group: { currency: "EUR", status: "paid" } })]).names, ["currency", "status"]);
  assert.deepEqual(keyColumns([answer({ key: "a-1" })]), { names: ["key"], fromGroup: false });
  assert.deepEqual(keyColumns([answer({})]).names, []);
  assert.equal(keyLabel(answer({ group: { currency: "EUR", status: "paid" } })), "currency=EUR status=paid");
  assert.equal(keyLabel(answer({})), "(global)");
});

test("answers table: group values, optional parts as -, a rank column when ranked", () => {
  const answers = [
    answer({ key: "EUR", group: { currency: "EUR" }, total: 12.5, batchPart: 10, speedPart: 2.5, events: 4 }),
    answer({ key: "USD", group: { currency: "USD" }, total: undefined, events: 0 }),
  ];
  assert.equal(
    renderAnswers(answers),
    ["currency  total  batch part  speed part  events", "EUR        12.5          10         2.5       4", "USD           -           -           -       0", ""].join("\n"),
  );
  assert.match(renderAnswers(answers, { ranked: true }), /^rank  currency  total/);
  assert.match(renderAnswers(answers, { ranked: true }), /^ {3}2  USD/m);
  assert.deepEqual(answerJson(answers[1]!), { key: "USD", group: { currency: "USD" }, total: null, batchPart: null, speedPart: null, events: 0 });
});

test("estimates: a distinct count as a whole number and a quantile to 3 digits, marked ≈ and right-aligned; JSON keeps the value", () => {
  const distinct = { kind: "distinct", values: "number" } as const;
  const answers = [
    answer({ key: "a-1", group: { article_id: "a-1" }, total: 1445.541, batchPart: 1000.2, speedPart: 445.5, events: 1500 }),
    answer({ key: "a-2", group: { article_id: "a-2" }, total: 3.0000001, batchPart: undefined, speedPart: 3.0000001, events: 3 }),
  ];
  assert.equal(
    renderAnswers(answers, { shape: distinct }),
    ["article_id  total  batch part  speed part  events", "a-1         ≈1446       ≈1000        ≈446    1500", "a-2            ≈3           -          ≈3       3", ""].join("\n"),
  );
  assert.equal(answerJson(answers[0]!).total, 1445.541);
  const quantiles = { kind: "quantiles", values: "number" } as const;
  const q = renderAnswers([answer({ total: 123456.7, batchPart: 0.0123456, speedPart: 12.5, events: 9 })], { shape: quantiles });
  assert.equal(q, ["  total  batch part  speed part  events", "≈123000     ≈0.0123       ≈12.5       9", ""].join("\n"));
  // Exact aggregates keep their digits and no sign.
  assert.doesNotMatch(renderAnswers(answers, { shape: { kind: "avg", values: "number" } }), /≈/);
  assert.match(renderAnswers(answers, { shape: { kind: "avg", values: "number" } }), /1445\.541/);
  assert.match(partsLegend(1, distinct), /≈: an estimate of the HyperLogLog sketch/);
  assert.match(renderSeries(answer({ key: "k", series: [{ windowStart: new Date(T0), value: 2.4, batchPart: 2.4, speedPart: undefined, events: 2 }] }), distinct), /Z +≈2 +≈2 +- +2$/m);
});

test("series: one table per key, or a line saying it has no windows", () => {
  const a = answer({
    key: "a-1",
    group: { article_id: "a-1" },
    series: [{ windowStart: new Date(T0), value: 2, batchPart: 2, speedPart: undefined, events: 2 }],
  });
  assert.equal(renderSeries(a), "windows of article_id=a-1:\nwindow start              value  batch part  speed part  events\n2026-06-08T14:23:00.000Z      2           2           -       2\n");
  assert.match(renderSeries(answer({ key: "a-2", group: { article_id: "a-2" } })), /no windows with events/);
});

test("aggregate shape: min/max of a timestamp field are times; the legend follows the kind", () => {
  const d = {
    metric: {
      name: "order_flow",
      source: "orders",
      groupBy: ["currency"],
      window: "1h",
      aggregates: [
        { name: "orders", kind: "count", field: "" },
        { name: "last_at", kind: "max", field: "ts" },
        { name: "largest", kind: "max", field: "amount" },
        { name: "coupon_at", kind: "min", field: "used_at" },
      ],
      filterJson: "",
      description: "",
      definition: "abc",
      nextDefinition: "abc",
    },
    sourceFields: { ts: "timestamp", amount: "float", used_at: "timestamp?" },
  };
  assert.deepEqual(aggregateShape(d, ""), { kind: "count", values: "number" });
  assert.deepEqual(aggregateShape(d, "last_at"), { kind: "max", values: "time" });
  assert.deepEqual(aggregateShape(d, "largest"), { kind: "max", values: "number" });
  assert.deepEqual(aggregateShape(d, "coupon_at"), { kind: "min", values: "time" });
  assert.deepEqual(aggregateShape(d, "nope"), { kind: "", values: "number" });
  const a = answer({ key: "EUR", group: { currency: "EUR" }, total: T0, batchPart: T0, events: 1 });
  assert.match(renderAnswers([a], { shape: aggregateShape(d, "last_at") }), /^EUR\s+2026-06-08T14:23:00\.000Z\s+2026-06-08T14:23:00\.000Z\s+-\s+1$/m);
  assert.match(partsLegend(1, { kind: "count", values: "number" }), /batch \+ speed = total\.$/m);
  assert.match(partsLegend(1, { kind: "max", values: "time" }), /max: each part is its side alone and the total is taken over both, so the parts do not add up\.$/m);
  assert.match(partsLegend(0), /batch = none yet \(no batch run\)/);
});

test("query: JSON keeps absent values as null and series null unless asked; text has heading, table, provenance", () => {
  const r: QueryResponse = {
    metric: "article_views",
    aggregate: "views",
    from: new Date(T0),
    to: new Date(T0 + 600_000),
    watermarkRun: 0,
    answers: [answer({ key: "a-1", group: { article_id: "a-1" }, total: 3, batchPart: 0, speedPart: 3, events: 3, series: [] })],
    partitions,
    speedEventsHeld: 4,
    definition: "0123456789ab",
    complete: true,
    missing: [],
  };
  const j = queryJson(r, { quantile: 0, series: false });
  assert.equal(j.answers[0]!.series, null);
  assert.equal(j.quantile, null);
  assert.equal(j.from, "2026-06-08T14:23:00.000Z");
  assert.deepEqual(queryJson(r, { quantile: 0.9, series: true }).answers[0]!.series, []);
  const text = renderQuery(r, { quantile: 0, series: false });
  assert.match(text, /^article_views views, windows starting in \[2026-06-08T14:23:00.000Z, 2026-06-08T14:33:00.000Z\), watermark run 0 \(no batch run yet/);
  assert.match(text, /^article_id\s+total\s+batch part\s+speed part\s+events$/m);
  assert.match(text, /^a-1\s+3\s+0\s+3\s+3$/m);
  assert.match(text, /^partition\s+cut seq\s+applied seq\s+speed events held\s+generation$/m);
  assert.match(text, /^speed events held\s+4 /m);
  assert.match(text, /^definition\s+0123456789ab$/m);
  assert.equal(j.definition, "0123456789ab");
  assert.match(renderQuery({ ...r, aggregate: "p" }, { quantile: 0.99, series: true }), /^article_views p \(q=0\.99\),/);
  assert.equal(j.complete, true);
  assert.doesNotMatch(text, /PARTIAL|missing or behind/);
});

test("query: a partial answer says so under the heading and lists what it lacks, in text and JSON", () => {
  const missing = [
    { partition: 3, reason: "moving", countedThroughSeq: 120, eventsNotCounted: 41, node: "speed-2", detail: "no speed actor listens for partition 3 (query)" },
    { partition: 5, reason: "replaying", countedThroughSeq: 200, eventsNotCounted: undefined, node: "speed-1", detail: "its new owner speed-1 is replaying the stream" },
  ];
  const r: QueryResponse = {
    metric: "article_views",
    aggregate: "views",
    from: new Date(T0),
    to: new Date(T0 + 600_000),
    watermarkRun: 2,
    answers: [answer({ key: "a-1", group: { article_id: "a-1" }, total: 3, batchPart: 3, speedPart: 0, events: 3, series: [] })],
    partitions,
    speedEventsHeld: 4,
    definition: "0123456789ab",
    complete: false,
    missing,
  };
  const text = renderQuery(r, { quantile: 0, series: false });
  const lines = text.split("\n");
  assert.match(lines[2]!, /^PARTIAL: the speed part of partitions 3 \(moving\), 5 \(replaying\) is missing or behind: at least 41 stream records not counted \(--strict fails instead\)$/);
  assert.match(text, /^missing or behind:$/m);
  assert.match(text, /^\s+3\s+moving\s+120\s+41\s+speed-2\s+no speed actor listens/m);
  assert.match(text, /^\s+5\s+replaying\s+200\s+-\s+speed-1\s+/m);
  const j = queryJson(r, { quantile: 0, series: false });
  assert.equal(j.complete, false);
  assert.deepEqual(j.missing.map((m) => [m.partition, m.reason, m.countedThroughSeq, m.eventsNotCounted, m.node]), [[3, "moving", 120, 41, "speed-2"], [5, "replaying", 200, null, "speed-1"]]);
  const top = renderTop({ metric: "article_views", aggregate: "views", watermarkRun: 2, entries: [], partitions, speedEventsHeld: 0, definition: "x", complete: false, missing: missing.slice(0, 1) }, { metric: "article_views", from: new Date(T0), to: new Date(T0 + 60_000), k: 2, aggregate: "", quantile: 0, where: {}, strict: false });
  assert.match(top, /^PARTIAL: the speed part of partition 3 \(moving\) is missing or behind: 41 stream records not counted/m);
});

test("top: ranks from 1, echoes what was asked, says when no key has events", () => {
  const request = { metric: "article_views", from: new Date(T0), to: new Date(T0 + 60_000), k: 2, aggregate: "", quantile: 0, where: { article_id: "a-1" }, strict: false };
  const r = {
    metric: "article_views",
    aggregate: "views",
    watermarkRun: 1,
    entries: [answer({ key: "a-1", group: { article_id: "a-1" }, total: 3, batchPart: 3, speedPart: 0, events: 3 })],
    partitions,
    speedEventsHeld: 0,
    definition: "fedcba987654",
    complete: true,
    missing: [],
  };
  const j = topJson(r, request);
  assert.equal(j.definition, "fedcba987654");
  assert.match(renderTop(r, request), /^definition\s+fedcba987654$/m);
  assert.deepEqual(j.entries.map((e) => [e.rank, e.key, e.total]), [[1, "a-1", 3]]);
  assert.deepEqual(j.where, { article_id: "a-1" });
  assert.equal(j.k, 2);
  assert.match(renderTop(r, request), /top 2 where article_id=a-1, windows starting in .*, watermark run 1$/m);
  assert.match(renderTop(r, request), /^rank\s+article_id\s+total/m);
  assert.match(renderTop({ ...r, entries: [] }, request), /^no keys with events in the range$/m);
});

const CATALOG = {
  sources: {
    orders: {
      fields: { id: "string", customer_id: "string", ts: "timestamp", amount: "float", currency: "string", status: "string", coupon: "string?" },
      idField: "id",
      timeField: "ts",
      partitionKey: "customer_id",
    },
  },
  metrics: {
    revenue: {
      source: "orders",
      groupBy: ["currency", "status"],
      window: "1h",
      filter: { and: [{ field: "status", op: "ne", value: "test" }, { not: { field: "coupon", op: "in", values: ["FREE"] } }] },
      aggregates: { revenue: { sum: "amount" }, orders: "count" },
      description: "Revenue",
    },
    everything: { source: "orders", window: "1d", aggregates: { orders: "count" } },
  },
};

test("metrics from a local catalog: the filter back in catalog form, aggregates as name:kind(field)", () => {
  const c = catalogJson(parseCatalog(CATALOG, "c.json"));
  assert.deepEqual(c.sources.map((s) => s.name), ["orders"]);
  assert.equal(c.sources[0]!.fields.coupon, "string?");
  const revenue = c.metrics[0]!;
  assert.deepEqual(revenue.filter, CATALOG.metrics.revenue.filter);
  assert.deepEqual(revenue.aggregates.map(aggregateText), ["revenue:sum(amount)", "orders:count"]);
  assert.deepEqual(filterFieldNames(revenue.filter), ["status", "coupon"]);
  assert.equal(filterText(null), "-");
  const text = renderMetricsTable(c.metrics);
  assert.match(text, /^name\s+source\s+group by\s+window\s+aggregates\s+filter$/m);
  assert.match(text, /^revenue\s+orders\s+currency,status\s+1h\s+revenue:sum\(amount\) orders:count\s+\{"and":/m);
  assert.match(text, /^everything\s+orders\s+\(global\)\s+1d\s+orders:count\s+-$/m);
  assert.match(renderValid(c.sources.length, c.metrics), /^ok: 1 sources, 2 metrics\n\nname/);
});

test("a metric from the serving node: detail with the default aggregate and what uses each field", () => {
  const m = metricFromInfo({
    name: "revenue",
    source: "orders",
    groupBy: ["currency"],
    window: "1h",
    aggregates: [
      { name: "revenue", kind: "sum", field: "amount" },
      { name: "orders", kind: "count", field: "" },
    ],
    filterJson: '{"field":"status","op":"eq","value":"paid"}',
    description: "",
    definition: "aaaaaaaaaaaa",
    nextDefinition: "bbbbbbbbbbbb",
  });
  assert.deepEqual(m.aggregates[1], { name: "orders", kind: "count", field: null });
  assert.deepEqual(m.filter, { field: "status", op: "eq", value: "paid" });
  assert.equal(metricFromInfo({ name: "x", source: "s", groupBy: [], window: "1m", aggregates: [], filterJson: "", description: "", definition: "", nextDefinition: "c" }).filter, null);
  const text = renderMetricDetail(m, { id: "string", currency: "string", amount: "float", status: "string", coupon: "string?" });
  assert.match(text, /^group by\s+currency$/m);
  assert.match(text, /^description\s+-$/m);
  assert.match(text, /^revenue \(default\)\s+sum\s+amount$/m);
  assert.match(text, /^orders\s+count\s+-$/m);
  assert.match(text, /^currency\s+string\s+group by$/m);
  assert.match(text, /^amount\s+float\s+aggregate revenue$/m);
  assert.match(text, /^status\s+string\s+filter$/m);
  assert.match(text, /^coupon\s+string\?\s+-$/m);
  // Where the metric stands between the watermark and the catalog.
  assert.equal(m.state, "redefined");
  assert.match(text, /^state\s+redefined: answers use the watermark run's definition until the next batch run$/m);
  assert.match(text, /^definition\s+aaaaaaaaaaaa$/m);
  assert.match(text, /^next definition\s+bbbbbbbbbbbb$/m);
  const info = (definition: string, nextDefinition: string) =>
    metricFromInfo({ name: "x", source: "s", groupBy: [], window: "1m", aggregates: [], filterJson: "", description: "", definition, nextDefinition });
  assert.deepEqual(
    [info("a", "a"), info("", "a"), info("a", "b"), info("a", "")].map((x) => x.state),
    ["current", "added", "redefined", "removed"],
  );
  assert.match(renderMetricsTable([info("a", "")]), /^name\s+source\s+group by\s+window\s+aggregates\s+filter\s+state$/m);
  assert.match(renderMetricsTable([info("a", "")]), /^x\s+s\s+\(global\)\s+1m\s+-\s+removed$/m);
});
