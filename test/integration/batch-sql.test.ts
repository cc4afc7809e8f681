/**
 * The batch recompute against real chDB (src/batch/recompute.ts, the SQL of
 * src/batch/sql.ts, the DDL of src/ch/schema.ts and the reads of
 * src/ch/views.ts). Random master rows of two sources, with copies of ids
 * (carrying other times and values) and retried rows on both sides of random
 * cuts, optional fields with nulls, are recomputed into batch views for a
 * catalog with filters (and/or/not/in, comparisons on optional fields), group-by
 * over 0, 1 and 2 fields and every aggregate kind. What the views hold is
 * compared with an independent recount in TypeScript over the first copies
 * below the cut: count, sums, min, max and avg as plain numbers; distinct and
 * quantiles as the states core/sketch builds from the recounted values, equal
 * register by register and bucket by bucket. No SQL text is asserted.
 *
 * Float sums (sum and avg of float fields) are the one non-exact aggregate
 * (core/aggregate.ts): SQL adds in another order than the recount. They are
 * compared within FLOAT_SUM_TOLERANCE of the sum of the absolute values added,
 * the bound on the rounding error of a sum in any order.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClickHouseClient } from "@clickhouse/client";
import type { AggState } from "../../src/core/aggregate.js";
import { parseCatalog, type Catalog, type MetricDef } from "../../src/core/catalog.js";
import { partitionOfKey, type FieldValue } from "../../src/core/events.js";
import { canonicalString, hllAdd, hllEncode, quantileAdd, quantileEncode, type HllState, type QuantileState } from "../../src/core/sketch.js";
import { openClickHouse, queryRows, type ChHandle } from "../../src/ch/client.js";
import { ensureSchema, masterTable, viewTable } from "../../src/ch/schema.js";
import { readBatchKeys, readBatchStates, type BatchStates } from "../../src/ch/views.js";
import { recomputeViews, type RecomputeResult } from "../../src/batch/recompute.js";
import { BatchViewMissingError } from "../../src/core/errors.js";
import { prng, type Prng } from "../unit/prng.js";

const FLOAT_SUM_TOLERANCE = 1e-9;
const PARTITIONS = 4;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const T0 = Date.UTC(2026, 5, 8, 14, 0, 0);
/** Every window the random rows can fall in lies in this range. */
const ALL_TIME = { fromMs: T0 - 10 * 24 * HOUR, toMs: T0 + 10 * 24 * HOUR };

/** A coupon that needs escaping in SQL text (it is passed as a parameter). */
const ODD_COUPON = "it's \\ \"x\"";

const catalog = parseCatalog(
  {
    sources: {
      pageviews: {
        fields: {
          id: "string",
          article_id: "string",
          user_id: "string",
          region: "string",
          premium: "bool",
          ts: "timestamp",
          load_ms: "int?",
          score: "float?",
          country: "string?",
          mobile: "bool?",
        },
        idField: "id",
        timeField: "ts",
        partitionKey: "article_id",
      },
      orders: {
        fields: { order_id: "int", customer: "string", store: "int", ts: "timestamp", amount: "float", qty: "int?", coupon: "string?", paid_at: "timestamp?" },
        idField: "order_id",
        timeField: "ts",
        partitionKey: "customer",
      },
    },
    metrics: {
      article_views: { source: "pageviews", groupBy: ["article_id"], window: "1m", aggregates: { views: "count" } },
      /** Global; the filter lets nulls through: not(load_ms < 200). Every kind, on int, float, string, bool and timestamp fields. */
      pv_global: {
        source: "pageviews",
        window: "5m",
        filter: { not: { field: "load_ms", op: "lt", value: 200 } },
        aggregates: {
          views: "count",
          load_sum: { sum: "load_ms" },
          load_min: { min: "load_ms" },
          load_max: { max: "load_ms" },
          load_avg: { avg: "load_ms" },
          score_sum: { sum: "score" },
          score_avg: { avg: "score" },
          score_max: { max: "score" },
          users: { distinct: "user_id" },
          countries: { distinct: "country" },
          mobiles: { distinct: "mobile" },
          load_q: { quantiles: "load_ms" },
          score_q: { quantiles: "score" },
          first_ts: { min: "ts" },
          last_ts: { max: "ts" },
        },
      },
      /** Two group-by fields (string, bool); and/or/not/in with comparisons on optional fields and on the time. */
      region_premium: {
        source: "pageviews",
        groupBy: ["region", "premium"],
        window: "1h",
        filter: {
          and: [
            { or: [{ field: "country", op: "in", values: ["de", "fr", "日本"] }, { field: "score", op: "gt", value: 0.5 }, { field: "mobile", op: "in", values: [false] }] },
            { not: { field: "mobile", op: "eq", value: true } },
            { field: "ts", op: "ge", value: T0 - 10 * MINUTE },
          ],
        },
        aggregates: { c: "count", loads: { sum: "load_ms" }, score_avg: { avg: "score" }, articles: { distinct: "article_id" }, score_q: { quantiles: "score" } },
      },
      customer_orders: {
        source: "orders",
        groupBy: ["customer"],
        window: "1d",
        aggregates: {
          n: "count",
          revenue: { sum: "amount" },
          items: { sum: "qty" },
          biggest: { max: "amount" },
          smallest: { min: "amount" },
          coupons: { distinct: "coupon" },
          amount_q: { quantiles: "amount" },
          first_paid: { min: "paid_at" },
          qty_avg: { avg: "qty" },
        },
      },
      /** Two group-by fields (int, string); or of in (with a value needing escapes), ne and lt on optional fields. */
      store_customer: {
        source: "orders",
        groupBy: ["store", "customer"],
        window: "1h",
        filter: {
          or: [
            { field: "coupon", op: "in", values: ["SALE", "VIP:1", ODD_COUPON] },
            { field: "qty", op: "ne", value: 1 },
            { field: "paid_at", op: "lt", value: T0 + HOUR },
            { field: "amount", op: "in", values: [9.99, 100] },
          ],
        },
        aggregates: { n: "count", qty_sum: { sum: "qty" }, last_paid: { max: "paid_at" }, qtys: { distinct: "qty" }, stores: { distinct: "store" } },
      },
    },
  },
  "batch-sql.test",
);

// ---------------------------------------------------------------- random master rows

/** A master-table row as the archiver writes it: system columns, then the event's normalised fields (timestamps in epoch ms, nulls for missing optionals). */
type MasterRow = { _partition: number; _seq: number; _id: string } & Record<string, FieldValue>;
interface Rows {
  readonly pageviews: MasterRow[];
  readonly orders: MasterRow[];
}

const ARTICLES = [...Array.from({ length: 10 }, (_, i) => `art-${i}`), "a:1", "日本", "12"];
const REGIONS = ["eu", "us:west", "12", "日本", "a😀"];
const CUSTOMERS = ["c1", "c:2", "顧客", "42", "c😀"];
const maybe = <T>(rnd: Prng, pNull: number, v: () => T): T | null => (rnd.chance(pNull) ? null : v());
/** Times around window edges: exact starts, the last ms of a window, anything in between. */
const randomTs = (rnd: Prng) => {
  const minute = T0 + rnd.int(-30, 180) * MINUTE;
  return rnd.pick([minute, minute - 1, minute + rnd.int(0, MINUTE - 1)]);
};
function pageviewValues(rnd: Prng): Record<string, FieldValue> {
  return {
    user_id: `u${rnd.int(0, 40)}`,
    region: rnd.pick(REGIONS),
    premium: rnd.chance(0.5),
    ts: randomTs(rnd),
    load_ms: maybe(rnd, 0.25, () => rnd.pick([0, 199, 200, 201, rnd.int(0, 5_000), rnd.int(-1e12, 1e12)])),
    score: maybe(rnd, 0.25, () => rnd.pick([(rnd.next() - 0.5) * 1e6, rnd.next(), 0.5, 0, rnd.int(-50, 50), 1e-300, (rnd.chance(0.5) ? -1 : 1) * 1e300])),
    country: maybe(rnd, 0.3, () => rnd.pick(["de", "fr", "it", "日本", "us"])),
    mobile: maybe(rnd, 0.3, () => rnd.chance(0.5)),
  };
}
function orderValues(rnd: Prng): Record<string, FieldValue> {
  const ts = randomTs(rnd);
  return {
    store: rnd.pick([1, 2, 3, -3, 1_000_000_007]),
    ts,
    amount: rnd.pick([9.99, 100, rnd.next() * 1_000, 0.1, rnd.int(1, 500)]),
    qty: maybe(rnd, 0.25, () => rnd.pick([1, 2, rnd.int(0, 100)])),
    coupon: maybe(rnd, 0.5, () => rnd.pick(["SALE", "VIP:1", "x", ODD_COUPON])),
    paid_at: maybe(rnd, 0.3, () => ts + rnd.int(0, 3 * HOUR)),
  };
}

/** A random stream of both sources as the archiver would have stored it: copies of ids (some with other times and values) and retried rows. */
function randomRows(rnd: Prng, events: number, idPrefix = ""): Rows {
  const rows: Rows = { pageviews: [], orders: [] };
  let seq = 0;
  let nextOrder = 1;
  for (let i = 0; i < events; i++) {
    seq += rnd.int(1, 3);
    const source = rnd.chance(0.65) ? "pageviews" : "orders";
    const list = rows[source];
    const earlier = list.length > 0 && rnd.chance(0.15) ? rnd.pick(list) : undefined;
    if (earlier) {
      // A late copy: same id, mostly with the same partition key (so in the same partition); only the first copy counts.
      const other = source === "pageviews" ? pageviewValues(rnd) : orderValues(rnd);
      const copy: MasterRow = rnd.chance(0.4) ? { ...earlier, _seq: seq } : { ...earlier, ...other, _seq: seq };
      if (rnd.chance(0.2)) {
        // Published again under another partition key: the copy lies in another partition, with its own cut.
        const key = source === "pageviews" ? "article_id" : "customer";
        copy[key] = rnd.pick(source === "pageviews" ? ARTICLES : CUSTOMERS);
        copy._partition = partitionOfKey(copy[key] as string, PARTITIONS);
      }
      list.push(copy);
      continue;
    }
    if (source === "pageviews") {
      const article = rnd.pick(ARTICLES);
      const id = `${idPrefix}ev-${i}`;
      list.push({ _partition: partitionOfKey(article, PARTITIONS), _seq: seq, _id: id, id, article_id: article, ...pageviewValues(rnd) });
    } else {
      const customer = rnd.pick(CUSTOMERS);
      const orderId = (idPrefix ? 1_000_000 : 0) + nextOrder++;
      list.push({ _partition: partitionOfKey(customer, PARTITIONS), _seq: seq, _id: String(orderId), order_id: orderId, customer, ...orderValues(rnd) });
    }
  }
  // An insert retried after it had landed: the same (partition, seq) twice.
  for (let i = 0; i < events / 50; i++) {
    const list = rnd.chance(0.5) ? rows.pageviews : rows.orders;
    if (list.length > 0) list.push({ ...rnd.pick(list) });
  }
  return rows;
}

async function insertRows(client: ClickHouseClient, db: string, rows: Rows) {
  for (const [source, values] of Object.entries(rows)) if (values.length > 0) await client.insert({ table: masterTable(db, source), values, format: "JSONEachRow" });
}

const maxSeq = (rows: Rows) => Math.max(0, ...rows.pageviews.map((r) => r._seq), ...rows.orders.map((r) => r._seq));

function randomCuts(rnd: Prng, rows: Rows): number[] {
  const top = maxSeq(rows);
  return Array.from({ length: PARTITIONS }, () => rnd.pick([1, top + 1, rnd.int(1, top + 1), rnd.int(1, top + 1)]));
}

// ---------------------------------------------------------------- the recount

type Fields = Readonly<Record<string, FieldValue>>;
const num = (e: Fields, f: string) => e[f] as number | null;
const lengthPrefixed = (...values: string[]) => values.map((v) => `${Buffer.byteLength(v, "utf8")}:${v}`).join("");

/** Each metric written out by hand: which events count (a comparison on null is false) and their key. */
const SPECS: Record<string, { match(e: Fields): boolean; key(e: Fields): string }> = {
  article_views: { match: () => true, key: (e) => String(e.article_id) },
  pv_global: {
    match: (e) => {
      const load = num(e, "load_ms");
      return !(load !== null && load < 200);
    },
    key: () => "",
  },
  region_premium: {
    match: (e) => {
      const score = num(e, "score");
      const first = (e.country !== null && ["de", "fr", "日本"].includes(e.country as string)) || (score !== null && score > 0.5) || e.mobile === false;
      return first && !(e.mobile === true) && (e.ts as number) >= T0 - 10 * MINUTE;
    },
    key: (e) => lengthPrefixed(String(e.region), String(e.premium)),
  },
  customer_orders: { match: () => true, key: (e) => String(e.customer) },
  store_customer: {
    match: (e) => {
      const qty = num(e, "qty");
      const paid = num(e, "paid_at");
      return (
        (e.coupon !== null && ["SALE", "VIP:1", ODD_COUPON].includes(e.coupon as string)) ||
        (qty !== null && qty !== 1) ||
        (paid !== null && paid < T0 + HOUR) ||
        [9.99, 100].includes(e.amount as number)
      );
    },
    key: (e) => lengthPrefixed(String(e.store), String(e.customer)),
  },
};

interface Expected {
  /** metric → key → window start → the first copies it holds */
  readonly views: Map<string, Map<string, Map<number, Fields[]>>>;
  readonly eventsCovered: number;
  readonly coveredFromMs: number | null;
  readonly coveredToMs: number | null;
}

/**
 * The recount: per source, the rows below their partition's cut, and of those each id's
 * first copy (lowest _seq). A run sees only rows below its cuts (the archiver has flushed
 * those, not necessarily the rest), so a copy above its partition's cut never hides a later
 * copy below another partition's cut.
 */
function recount(rows: Rows, cuts: readonly number[]): Expected {
  const views = new Map<string, Map<string, Map<number, Fields[]>>>();
  let eventsCovered = 0;
  let from: number | null = null;
  let to: number | null = null;
  for (const [source, list] of Object.entries(rows) as [string, MasterRow[]][]) {
    const first = new Map<string, MasterRow>();
    for (const r of list) {
      if (!(r._seq < cuts[r._partition]!)) continue;
      const f = first.get(r._id);
      if (!f || r._seq < f._seq) first.set(r._id, r);
    }
    for (const r of first.values()) {
      const ts = r.ts as number;
      eventsCovered++;
      from = Math.min(from ?? Infinity, ts);
      to = Math.max(to ?? -Infinity, ts);
      for (const metric of catalog.metrics.values()) {
        if (metric.source !== source) continue;
        const spec = SPECS[metric.name]!;
        if (!spec.match(r)) continue;
        let byKey = views.get(metric.name);
        if (!byKey) views.set(metric.name, (byKey = new Map()));
        const key = spec.key(r);
        let byWindow = byKey.get(key);
        if (!byWindow) byKey.set(key, (byWindow = new Map()));
        const w = Math.floor(ts / metric.windowMs) * metric.windowMs;
        byWindow.set(w, [...(byWindow.get(w) ?? []), r]);
      }
    }
  }
  return { views, eventsCovered, coveredFromMs: from, coveredToMs: to };
}

/** A batch state against the events it should hold (see the header for what "equal" means per aggregate). */
function assertState(metric: MetricDef, got: AggState, events: readonly Fields[], what: string) {
  assert.equal(got.n, events.length, `${what}: n`);
  metric.aggregates.forEach((a, i) => {
    const where = `${what}: ${a.name}`;
    const p = got.parts[i]!;
    const values = a.field === null ? [] : events.map((e) => e[a.field!] ?? null).filter((v): v is string | number | boolean => v !== null);
    const nums = values as number[];
    const sum = nums.reduce((x, y) => x + y, 0);
    const scale = nums.reduce((x, y) => x + Math.abs(y), 0);
    const sumEqual = (x: number, y: number, w: string) => {
      if (a.fieldType === "float") assert.ok(Math.abs(x - y) <= FLOAT_SUM_TOLERANCE * scale, `${w}: ${x} vs ${y} (scale ${scale})`);
      else assert.equal(x, y, w);
    };
    switch (p.k) {
      case "count":
        assert.equal(a.kind, "count", where);
        break;
      case "sum":
        sumEqual(p.s, sum, where);
        break;
      case "min":
        assert.equal(p.v, nums.length ? Math.min(...nums) : null, where);
        break;
      case "max":
        assert.equal(p.v, nums.length ? Math.max(...nums) : null, where);
        break;
      case "avg":
        sumEqual(p.s, sum, `${where} (sum)`);
        assert.equal(p.c, nums.length, `${where} (count)`);
        break;
      case "distinct": {
        const want: HllState = new Map();
        for (const v of values) hllAdd(want, canonicalString(v));
        assert.deepEqual(hllEncode(p.hll), hllEncode(want), where);
        break;
      }
      case "quantiles": {
        const want: QuantileState = new Map();
        for (const v of nums) quantileAdd(want, v);
        assert.deepEqual(quantileEncode(p.b), quantileEncode(want), where);
        break;
      }
    }
  });
}

/** Rows of view version `run` of `metric`; fails on two rows for one (key, window). */
async function viewRows(client: ClickHouseClient, db: string, metric: MetricDef, run: number): Promise<number> {
  const rows = await queryRows<{ key: string; w: string | number; n: string | number }>(
    client,
    `SELECT key, toUnixTimestamp64Milli(window_start) AS w, count() AS n FROM ${viewTable(db, metric)} WHERE run = {run:UInt64} GROUP BY key, w HAVING n > 1`,
    { run },
  );
  assert.deepEqual(rows, [], `${metric.name} run ${run}: one row per (key, window)`);
  // n > 0: not the version's marker row (ch/views.ts).
  const [row] = await queryRows<{ c: string | number }>(client, `SELECT count() AS c FROM ${viewTable(db, metric)} WHERE run = {run:UInt64} AND n > 0`, { run });
  return Number(row?.c ?? 0);
}

async function readViews(client: ClickHouseClient, db: string, run: number): Promise<Map<string, BatchStates>> {
  const out = new Map<string, BatchStates>();
  for (const m of catalog.metrics.values()) out.set(m.name, await readBatchStates(client, db, m, run, null, ALL_TIME.fromMs, ALL_TIME.toMs));
  return out;
}

async function assertViews(client: ClickHouseClient, db: string, run: number, expected: Expected, what: string) {
  const got = await readViews(client, db, run);
  for (const metric of catalog.metrics.values()) {
    const want = expected.views.get(metric.name) ?? new Map<string, Map<number, Fields[]>>();
    const states = got.get(metric.name)!;
    const pairs = (m: Map<string, Map<number, unknown>>) => [...m].flatMap(([k, ws]) => [...ws.keys()].map((w) => `${k}|${w}`)).sort();
    assert.deepEqual(pairs(states), pairs(want), `${what}: ${metric.name}: (key, window) pairs`);
    assert.equal(await viewRows(client, db, metric, run), pairs(want).length, `${what}: ${metric.name}: rows`);
    for (const [key, windows] of want) {
      for (const [w, events] of windows) assertState(metric, states.get(key)!.get(w)!, events, `${what}: ${metric.name} ${JSON.stringify(key)} @${w}`);
    }
  }
}

// chDB allows one data directory per process: the tests of this file share one.
let dir = "";
let ch: ChHandle;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), "lambda-batch-sql-"));
  ch = await openClickHouse({ url: "", username: "default", password: "", chdbPath: join(dir, "chdb") });
});
after(async () => {
  try {
    await ch?.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const STEPS = [...[...catalog.sources.keys()].map((s) => `first_${s}`), ...catalog.metrics.keys()].sort();

function assertResult(got: RecomputeResult, expected: Expected, what: string) {
  assert.equal(got.eventsCovered, expected.eventsCovered, `${what}: eventsCovered`);
  assert.equal(got.coveredFromMs, expected.coveredFromMs, `${what}: coveredFromMs`);
  assert.equal(got.coveredToMs, expected.coveredToMs, `${what}: coveredToMs`);
  assert.deepEqual(Object.keys(got.stepMs).sort(), STEPS, `${what}: timed steps`);
  for (const [step, ms] of Object.entries(got.stepMs)) assert.ok(Number.isFinite(ms) && ms >= 0, `${what}: ${step} took ${ms} ms`);
}

test("batch views equal a recount of first copies below the cut, for every metric, key, window and aggregate; a rerun of a run replaces, never doubles", async () => {
  for (const seed of [1, 2, 3]) {
    const rnd = prng(seed);
    const db = `batch_sql_${process.pid}_${seed}`;
    await ensureSchema(ch.client, db, catalog);
    const rows = randomRows(rnd, 1500);
    for (const list of [rows.pageviews, rows.orders]) {
      assert.ok(list.some((r, i) => list.findIndex((o) => o._id === r._id) !== i), "fixture: some ids have copies");
      assert.ok(list.some((r) => list.some((o) => o._id === r._id && o._partition !== r._partition)), "fixture: some ids have copies in another partition");
      assert.ok(list.some((r, i) => list.findIndex((o) => o._partition === r._partition && o._seq === r._seq) !== i), "fixture: some rows archived twice");
    }
    await insertRows(ch.client, db, rows);

    // Run 1 at random cuts.
    const cuts1 = randomCuts(rnd, rows);
    const progress: [string, number, number][] = [];
    const r1 = await recomputeViews(ch.client, catalog, db, { run: 1, cuts: cuts1, onStep: (step, done, total) => progress.push([step, done, total]) });
    const total = catalog.sources.size + catalog.metrics.size;
    assert.deepEqual(
      progress.map(([, done, t]) => [done, t]),
      Array.from({ length: total }, (_, i) => [i + 1, total]),
      "one progress call per step, counting up to the total",
    );
    for (const m of catalog.metrics.keys()) assert.equal(progress.filter(([s]) => s === m).length, 1, `progress of ${m}`);
    const e1 = recount(rows, cuts1);
    assert.ok(e1.views.get("region_premium")?.size && e1.views.get("store_customer")?.size, "fixture: the filters let some events through");
    assertResult(r1, e1, `seed ${seed} run 1 cuts ${cuts1}`);
    await assertViews(ch.client, db, 1, e1, `seed ${seed} run 1 cuts ${cuts1}`);

    // Run 2 at later cuts; run 1's version stays as it was for readers still on it.
    const cuts2 = cuts1.map((c) => c + rnd.int(0, 400));
    const r2 = await recomputeViews(ch.client, catalog, db, { run: 2, cuts: cuts2 });
    const e2 = recount(rows, cuts2);
    assertResult(r2, e2, `seed ${seed} run 2 cuts ${cuts2}`);
    await assertViews(ch.client, db, 2, e2, `seed ${seed} run 2 cuts ${cuts2}`);
    await assertViews(ch.client, db, 1, e1, `seed ${seed}: run 1 untouched by run 2`);

    // Run 2 again (a coordinator that took over resumes it): same rows, not twice as many.
    const again = await recomputeViews(ch.client, catalog, db, { run: 2, cuts: cuts2 });
    assertResult(again, e2, `seed ${seed} run 2 rerun`);
    await assertViews(ch.client, db, 2, e2, `seed ${seed} run 2 rerun`);

    // More events arrive above the cuts: a rerun at the same cuts still gives the same views.
    const top = Math.max(maxSeq(rows), ...cuts2);
    const later = randomRows(prng(seed + 100), 200, "late-");
    for (const list of [later.pageviews, later.orders]) for (const r of list) r._seq += top;
    await insertRows(ch.client, db, later);
    const third = await recomputeViews(ch.client, catalog, db, { run: 2, cuts: cuts2 });
    assertResult(third, e2, `seed ${seed} run 2 rerun after later events`);
    await assertViews(ch.client, db, 2, e2, `seed ${seed} run 2 rerun after later events`);
  }
});

test("readBatchStates reads the keys and windows asked for, and nothing else", async () => {
  const db = `batch_sql_${process.pid}_reads`;
  await ensureSchema(ch.client, db, catalog);
  const rows = randomRows(prng(11), 800);
  await insertRows(ch.client, db, rows);
  const top = maxSeq(rows) + 1;
  await recomputeViews(ch.client, catalog, db, { run: 1, cuts: [top, top, top, top] });
  for (const name of ["region_premium", "customer_orders", "pv_global"]) {
    const metric = catalog.metrics.get(name)!;
    const all = await readBatchStates(ch.client, db, metric, 1, null, ALL_TIME.fromMs, ALL_TIME.toMs);
    const keys = [...all.keys()];
    assert.ok(keys.length > 0, `fixture: ${name} has keys`);
    const some = [keys[0]!, keys.at(-1)!, "no such key"];
    const fromMs = T0 + 30 * MINUTE;
    const toMs = T0 + 2 * HOUR;
    const got = await readBatchStates(ch.client, db, metric, 1, some, fromMs, toMs);
    const want = new Map(
      [...all]
        .filter(([k]) => some.includes(k))
        .map(([k, ws]) => [k, new Map([...ws].filter(([w]) => w >= fromMs && w < toMs))] as const)
        .filter(([, ws]) => ws.size > 0),
    );
    assert.deepEqual(got, want, name);
    // No run 2 yet: a version never written is not read as empty.
    await assert.rejects(readBatchStates(ch.client, db, metric, 2, null, ALL_TIME.fromMs, ALL_TIME.toMs), (err: unknown) => err instanceof BatchViewMissingError && err.run === 2 && err.missing === "version", name);
    // The version's keys (serving skips reads of the others): every key with a row, and only those.
    assert.deepEqual(await readBatchKeys(ch.client, db, metric, 1, keys.length), { kind: "keys", keys: new Set(keys) }, name);
    assert.deepEqual(await readBatchKeys(ch.client, db, metric, 1, keys.length - 1), { kind: "too_many", limit: keys.length - 1 }, name);
    await assert.rejects(readBatchKeys(ch.client, db, metric, 2, 1_000), (err: unknown) => err instanceof BatchViewMissingError && err.run === 2 && err.missing === "version", name);
  }
});

test("readBatchKeys of a version without rows (a cut below every event) is an empty set, not a missing version", async () => {
  const db = `batch_sql_${process.pid}_nokeys`;
  await ensureSchema(ch.client, db, catalog);
  await recomputeViews(ch.client, catalog, db, { run: 1, cuts: [0, 0, 0, 0] });
  for (const metric of catalog.metrics.values()) assert.deepEqual(await readBatchKeys(ch.client, db, metric, 1, 10), { kind: "keys", keys: new Set() }, metric.name);
});

test("a cut below every event covers nothing", async () => {
  const db = `batch_sql_${process.pid}_empty`;
  await ensureSchema(ch.client, db, catalog);
  const none = await recomputeViews(ch.client, catalog, db, { run: 1, cuts: [0, 0, 0, 0] });
  assert.deepEqual({ ...none, stepMs: {} }, { eventsCovered: 0, coveredFromMs: null, coveredToMs: null, stepMs: {} });
  const rows = randomRows(prng(9), 100);
  await insertRows(ch.client, db, rows);
  const first = Math.min(...rows.pageviews.map((r) => r._seq), ...rows.orders.map((r) => r._seq));
  const r = await recomputeViews(ch.client, catalog, db, { run: 2, cuts: [first, first, first, first] });
  assert.equal(r.eventsCovered, 0);
  assert.equal(r.coveredFromMs, null);
  assert.equal(r.coveredToMs, null);
  for (const states of (await readViews(ch.client, db, 2)).values()) assert.equal(states.size, 0);
});

// ---------------------------------------------------------------- every valid catalog gets a schema

/** Creates the schema of `c`, archives `rows` of its source `s` and recomputes run 1 over all of them. */
async function recomputeAll(c: Catalog, db: string, rows: MasterRow[]): Promise<RecomputeResult> {
  await ensureSchema(ch.client, db, c);
  await ch.client.insert({ table: masterTable(db, "s"), values: rows, format: "JSONEachRow" });
  return recomputeViews(ch.client, c, db, { run: 1, cuts: [100, 100, 100, 100] });
}
const sourceDoc = (fields: Record<string, string>) => ({ fields: { id: "string", ts: "timestamp", ...fields }, idField: "id", timeField: "ts", partitionKey: "id" });

test("a source field named like a column of the first-copies table (run) is recomputed like any other", async () => {
  const c = parseCatalog({ sources: { s: sourceDoc({ run: "int" }) }, metrics: { m: { source: "s", window: "1h", aggregates: { c: "count", runs: { sum: "run" } } } } }, "run-field");
  const rows: MasterRow[] = [1, 2, 3].map((i) => ({ _partition: 0, _seq: i, _id: `e${i}`, id: `e${i}`, ts: T0, run: i * 10 }));
  const r = await recomputeAll(c, `batch_sql_${process.pid}_run_field`, rows);
  assert.equal(r.eventsCovered, 3);
  const states = await readBatchStates(ch.client, `batch_sql_${process.pid}_run_field`, c.metrics.get("m")!, 1, null, ALL_TIME.fromMs, ALL_TIME.toMs);
  assert.deepEqual(states.get("")?.get(T0), { n: 3, parts: [{ k: "count" }, { k: "sum", s: 60 }] });
});

test("aggregate names whose state columns could collide (x as avg, x_s as sum) get distinct view columns", async () => {
  const c = parseCatalog({ sources: { s: sourceDoc({ v: "int" }) }, metrics: { m: { source: "s", window: "1h", aggregates: { x: { avg: "v" }, x_s: { sum: "v" } } } } }, "collide");
  const rows: MasterRow[] = [1, 2, 3].map((i) => ({ _partition: 0, _seq: i, _id: `e${i}`, id: `e${i}`, ts: T0, v: i }));
  await recomputeAll(c, `batch_sql_${process.pid}_collide`, rows);
  const states = await readBatchStates(ch.client, `batch_sql_${process.pid}_collide`, c.metrics.get("m")!, 1, null, ALL_TIME.fromMs, ALL_TIME.toMs);
  assert.deepEqual(states.get("")?.get(T0), { n: 3, parts: [{ k: "avg", s: 6, c: 3 }, { k: "sum", s: 6 }] });
});

test("onStep names each step as stepMs does, in the documented order: a source's first copies, then each of its metrics", async () => {
  const db = `batch_sql_${process.pid}_steps`;
  await ensureSchema(ch.client, db, catalog);
  const steps: string[] = [];
  const r = await recomputeViews(ch.client, catalog, db, { run: 1, cuts: [0, 0, 0, 0], onStep: (step) => steps.push(step) });
  assert.deepEqual([...steps].sort(), Object.keys(r.stepMs).sort(), "the names onStep reports are the keys of stepMs");
  const want = [...catalog.sources.keys()].flatMap((s) => [`first_${s}`, ...[...catalog.metrics.values()].filter((m) => m.source === s).map((m) => m.name)]);
  assert.deepEqual(steps, want);
});

// ---------------------------------------------------------------- first copies and cuts

test("first copies: a row archived twice counts once, a later copy in another partition never counts twice, and only rows below the cuts decide", async () => {
  const c = parseCatalog(
    { sources: { s: sourceDoc({ v: "int" }) }, metrics: { per_id: { source: "s", groupBy: ["id"], window: "1h", aggregates: { n: "count", v: { sum: "v" } } } } },
    "first-copies",
  );
  const db = `batch_sql_${process.pid}_first_copies`;
  await ensureSchema(ch.client, db, c);
  const row = (id: string, partition: number, seq: number, v: number): MasterRow => ({ _partition: partition, _seq: seq, _id: id, id, ts: T0, v });
  const rows: MasterRow[] = [
    // Archived twice (the same partition and sequence), below the cut.
    row("twice", 0, 1, 10),
    row("twice", 0, 1, 10),
    // A later copy in another partition, both below their cuts: the lower sequence counts.
    row("moved", 0, 2, 20),
    row("moved", 1, 5, 21),
    // Archived twice, and a later copy in another partition.
    row("both", 1, 3, 30),
    row("both", 1, 3, 30),
    row("both", 0, 6, 31),
    // The first copy lies above partition 0's cut, a later copy below partition 1's: the run sees only the later one.
    row("above", 0, 12, 40),
    row("above", 1, 14, 41),
    // Above the cut only, archived twice.
    row("late", 0, 15, 50),
    row("late", 0, 15, 50),
    // Seen once.
    row("once", 1, 4, 60),
  ];
  await ch.client.insert({ table: masterTable(db, "s"), values: rows, format: "JSONEachRow" });
  /** id → its state in view version `run`, after a run at `cuts`. */
  const perId = async (run: number, cuts: number[], covered: number) => {
    assert.equal((await recomputeViews(ch.client, c, db, { run, cuts })).eventsCovered, covered, `run ${run}: eventsCovered`);
    const states = await readBatchStates(ch.client, db, c.metrics.get("per_id")!, run, null, ALL_TIME.fromMs, ALL_TIME.toMs);
    return Object.fromEntries([...states].map(([id, ws]) => [id, ws.get(T0)]));
  };
  const counted = (v: number) => ({ n: 1, parts: [{ k: "count" }, { k: "sum", s: v }] });
  assert.deepEqual(await perId(1, [10, 20], 5), { twice: counted(10), moved: counted(20), both: counted(30), above: counted(41), once: counted(60) });
  // Once the cuts pass every row, each id counts once, at its lowest sequence.
  const all = { twice: counted(10), moved: counted(20), both: counted(30), above: counted(40), late: counted(50), once: counted(60) };
  assert.deepEqual(await perId(2, [100, 100], 6), all);
});

test("coverage: the event-time range of first copies only, also when a later copy lies outside it; with no repeated id, the rows below the cut", async () => {
  const c = parseCatalog({ sources: { s: sourceDoc({}) }, metrics: { m: { source: "s", window: "1h", aggregates: { n: "count" } } } }, "coverage");
  const db = `batch_sql_${process.pid}_coverage`;
  await ensureSchema(ch.client, db, c);
  const row = (id: string, seq: number, ts: number): MasterRow => ({ _partition: 0, _seq: seq, _id: id, id, ts });
  await ch.client.insert({ table: masterTable(db, "s"), values: [row("a", 1, T0 + 10 * MINUTE), row("b", 2, T0 + 20 * MINUTE)], format: "JSONEachRow" });
  const coverage = async (run: number, cut: number) => {
    const r = await recomputeViews(ch.client, c, db, { run, cuts: [cut] });
    return [r.eventsCovered, r.coveredFromMs, r.coveredToMs];
  };
  assert.deepEqual(await coverage(1, 100), [2, T0 + 10 * MINUTE, T0 + 20 * MINUTE], "ids seen once");
  assert.deepEqual(await coverage(2, 2), [1, T0 + 10 * MINUTE, T0 + 10 * MINUTE], "the cut leaves b out");
  // Later copies of a and b, with event times before and after the first copies': they count for nothing.
  await ch.client.insert({ table: masterTable(db, "s"), values: [row("a", 3, T0), row("b", 4, T0 + 30 * MINUTE)], format: "JSONEachRow" });
  assert.deepEqual(await coverage(3, 100), [2, T0 + 10 * MINUTE, T0 + 20 * MINUTE], "later copies outside the range");
  assert.deepEqual(await coverage(4, 0), [0, null, null], "nothing below the cut");
  // Every version is there, the empty one too, and each holds what its cut let through.
  const counts = [];
  for (const run of [1, 2, 3, 4]) counts.push((await readBatchStates(ch.client, db, c.metrics.get("m")!, run, null, ALL_TIME.fromMs, ALL_TIME.toMs)).get("")?.get(T0)?.n ?? 0);
  assert.deepEqual(counts, [2, 1, 2, 0]);
});

test("a cut that is not a non-negative integer is refused before any query", async () => {
  const db = `batch_sql_${process.pid}_bad_cut`;
  await ensureSchema(ch.client, db, catalog);
  for (const bad of [-1, 1.5, Number.NaN, 2 ** 53]) {
    await assert.rejects(recomputeViews(ch.client, catalog, db, { run: 1, cuts: [1, bad, 1, 1] }), RangeError, `cut ${bad}`);
  }
});
