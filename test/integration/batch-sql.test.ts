/**
 * The batch recompute against real chDB (src/batch/recompute.ts and the SQL of
 * src/batch/sql.ts): random master rows, with copies of ids and rows on both
 * sides of random cuts, recomputed into batch views and compared with a recount
 * in TypeScript. No SQL text is asserted: only what the views hold.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClickHouseClient } from "@clickhouse/client";
import { loadCatalog } from "../../src/core/catalog.js";
import { partitionOfKey } from "../../src/core/events.js";
import { openClickHouse, queryRows, type ChHandle } from "../../src/ch/client.js";
import { ensureSchema, masterTable, viewTable } from "../../src/ch/schema.js";
import { recomputeViews, type RecomputeResult } from "../../src/batch/recompute.js";
import { prng, type Prng } from "../unit/prng.js";

const catalog = loadCatalog(join(process.cwd(), "catalog/catalog.json"));
const METRIC = catalog.metrics.get("article_views")!;
const WINDOW_MS = METRIC.windowMs;
const PARTITIONS = 4;
const T0 = Date.UTC(2026, 5, 8, 14, 0, 0);

interface MasterRow {
  _partition: number;
  _seq: number;
  _id: string;
  id: string;
  article_id: string;
  user_id: string;
  /** epoch ms; a DateTime64(3) column reads a JSON integer as milliseconds */
  ts: number;
}

/** A random stream as the archiver would have stored it: copies of ids (some with other times) and retried rows. */
function randomRows(rnd: Prng, events: number): MasterRow[] {
  const articles = Array.from({ length: 12 }, (_, i) => `art-${i}`);
  const rows: MasterRow[] = [];
  let seq = 0;
  for (let i = 0; i < events; i++) {
    seq += rnd.int(1, 3);
    const earlier = rows.length > 0 && rnd.chance(0.15) ? rnd.pick(rows) : undefined;
    if (earlier) {
      // A late copy of an event: same id and key (so same partition); its time may differ, only the first copy's counts.
      rows.push({ ...earlier, _seq: seq, ts: rnd.chance(0.5) ? earlier.ts : earlier.ts + rnd.int(1, 5) * WINDOW_MS });
      continue;
    }
    const article = rnd.pick(articles);
    // Times around window edges: exact starts, the last ms of a window, and anything in between.
    const minute = T0 + rnd.int(-30, 180) * WINDOW_MS;
    const ts = rnd.pick([minute, minute - 1, minute + rnd.int(0, WINDOW_MS - 1)]);
    rows.push({ _partition: partitionOfKey(article, PARTITIONS), _seq: seq, _id: `ev-${i}`, id: `ev-${i}`, article_id: article, user_id: `u${rnd.int(0, 20)}`, ts });
  }
  // An insert retried after it had landed: the same (partition, seq) twice.
  for (let i = 0; i < events / 50; i++) rows.push({ ...rnd.pick(rows) });
  return rows;
}

function randomCuts(rnd: Prng, rows: readonly MasterRow[]): number[] {
  const maxSeq = Math.max(...rows.map((r) => r._seq));
  return Array.from({ length: PARTITIONS }, () => rnd.pick([1, maxSeq + 1, rnd.int(1, maxSeq + 1), rnd.int(1, maxSeq + 1)]));
}

interface Expected {
  /** "key|windowStart" → count */
  readonly view: Map<string, number>;
  readonly eventsCovered: number;
  readonly coveredFromMs: number | null;
  readonly coveredToMs: number | null;
}

/** The recount: each id's first copy (lowest _seq), counted when it lies below its partition's cut. */
function recount(rows: readonly MasterRow[], cuts: readonly number[]): Expected {
  const first = new Map<string, MasterRow>();
  for (const r of rows) {
    const f = first.get(r._id);
    if (!f || r._seq < f._seq) first.set(r._id, r);
  }
  const view = new Map<string, number>();
  let eventsCovered = 0;
  let from: number | null = null;
  let to: number | null = null;
  for (const r of first.values()) {
    if (!(r._seq < cuts[r._partition]!)) continue;
    eventsCovered++;
    from = Math.min(from ?? Infinity, r.ts);
    to = Math.max(to ?? -Infinity, r.ts);
    const k = `${r.article_id}|${Math.floor(r.ts / WINDOW_MS) * WINDOW_MS}`;
    view.set(k, (view.get(k) ?? 0) + 1);
  }
  return { view, eventsCovered, coveredFromMs: from, coveredToMs: to };
}

async function readView(client: ClickHouseClient, db: string, run: number): Promise<Map<string, number>> {
  const rows = await queryRows<{ key: string; w: string | number; value: string | number }>(
    client,
    `SELECT key, toUnixTimestamp64Milli(window_start) AS w, value FROM ${viewTable(db, METRIC.name)} WHERE run = {run:UInt64}`,
    { run },
  );
  const view = new Map<string, number>();
  for (const r of rows) {
    const k = `${r.key}|${Number(r.w)}`;
    assert.ok(!view.has(k), `run ${run}: two rows for ${k}`);
    view.set(k, Number(r.value));
  }
  return view;
}

// chDB allows one data directory per process: the tests of this file share one.
let dir = "";
let ch: ChHandle;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "lambda-batch-sql-"));
  ch = openClickHouse({ url: "", username: "default", password: "", chdbPath: join(dir, "chdb") });
});
after(async () => {
  try {
    await ch?.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function assertMatches(got: RecomputeResult, view: Map<string, number>, expected: Expected, what: string) {
  assert.deepEqual(Object.fromEntries([...view].sort()), Object.fromEntries([...expected.view].sort()), `${what}: view rows`);
  assert.equal(got.eventsCovered, expected.eventsCovered, `${what}: eventsCovered`);
  assert.equal(got.coveredFromMs, expected.coveredFromMs, `${what}: coveredFromMs`);
  assert.equal(got.coveredToMs, expected.coveredToMs, `${what}: coveredToMs`);
  assert.deepEqual(Object.keys(got.metricMs), [METRIC.name], `${what}: timed metrics`);
}

test("batch views equal a recount of first copies below the cut; a rerun of a run replaces, never doubles", async () => {
  for (const seed of [1, 2, 3]) {
    const rnd = prng(seed);
    const db = `batch_sql_${process.pid}_${seed}`;
    await ensureSchema(ch.client, db, catalog);
    const rows = randomRows(rnd, 1500);
    assert.ok(rows.some((r, i) => rows.findIndex((o) => o._id === r._id) !== i), "fixture: some ids have copies");
    await ch.client.insert({ table: masterTable(db, "pageviews"), values: rows, format: "JSONEachRow" });

    // Run 1 at random cuts.
    const cuts1 = randomCuts(rnd, rows);
    const progress: string[] = [];
    const r1 = await recomputeViews(ch.client, catalog, db, { run: 1, cuts: cuts1, onMetric: (m, done, total) => progress.push(`${m} ${done}/${total}`) });
    assert.deepEqual(progress, [`${METRIC.name} 1/1`]);
    const e1 = recount(rows, cuts1);
    assertMatches(r1, await readView(ch.client, db, 1), e1, `seed ${seed} run 1 cuts ${cuts1}`);

    // Run 2 at later cuts; run 1's version stays as it was for readers still on it.
    const cuts2 = cuts1.map((c) => c + rnd.int(0, 400));
    const r2 = await recomputeViews(ch.client, catalog, db, { run: 2, cuts: cuts2 });
    const e2 = recount(rows, cuts2);
    assertMatches(r2, await readView(ch.client, db, 2), e2, `seed ${seed} run 2 cuts ${cuts2}`);
    assert.deepEqual(await readView(ch.client, db, 1), e1.view, `seed ${seed}: run 1 untouched by run 2`);

    // Run 2 again (a coordinator that took over resumes it): same rows, not twice as many.
    const again = await recomputeViews(ch.client, catalog, db, { run: 2, cuts: cuts2 });
    assertMatches(again, await readView(ch.client, db, 2), e2, `seed ${seed} run 2 rerun`);

    // More events arrive above the cuts: a rerun at the same cuts still gives the same view.
    const maxSeq = Math.max(...rows.map((r) => r._seq), ...cuts2);
    const later = randomRows(prng(seed + 100), 200).map((r) => ({ ...r, _seq: r._seq + maxSeq, _id: `late-${r._id}`, id: `late-${r.id}` }));
    await ch.client.insert({ table: masterTable(db, "pageviews"), values: later, format: "JSONEachRow" });
    const third = await recomputeViews(ch.client, catalog, db, { run: 2, cuts: cuts2 });
    assertMatches(third, await readView(ch.client, db, 2), e2, `seed ${seed} run 2 rerun after later events`);
    const [{ n }] = (await queryRows<{ n: string }>(ch.client, `SELECT count() AS n FROM ${viewTable(db, METRIC.name)} WHERE run = 2`)) as [{ n: string }];
    assert.equal(Number(n), e2.view.size, `seed ${seed}: rows of run 2`);
  }
});

test("a cut below every event covers nothing", async () => {
  const db = `batch_sql_${process.pid}_empty`;
  await ensureSchema(ch.client, db, catalog);
  const none = await recomputeViews(ch.client, catalog, db, { run: 1, cuts: [0, 0, 0, 0] });
  assert.deepEqual({ ...none, metricMs: {} }, { eventsCovered: 0, coveredFromMs: null, coveredToMs: null, metricMs: {} });
  const rows = randomRows(prng(9), 100);
  await ch.client.insert({ table: masterTable(db, "pageviews"), values: rows, format: "JSONEachRow" });
  const first = Math.min(...rows.map((r) => r._seq));
  const r = await recomputeViews(ch.client, catalog, db, { run: 2, cuts: [first, first, first, first] });
  assert.equal(r.eventsCovered, 0);
  assert.equal(r.coveredFromMs, null);
  assert.equal(r.coveredToMs, null);
  assert.equal((await readView(ch.client, db, 2)).size, 0);
});
