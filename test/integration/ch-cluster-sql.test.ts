/**
 * What of the cluster layout (src/ch/layout.ts) runs on chDB, which has no cluster, no Keeper
 * and no Distributed tables:
 * - the batch SQL of the sharded layout (`GLOBAL IN` over the master) gives, over the same
 *   master rows, the very views the single-server SQL gives (which test/integration/batch-sql
 *   checks against an independent recount): GLOBAL changes where a subquery runs, not what it
 *   returns;
 * - serving's read-only client in a cluster reads with select_sequential_consistency = 1 when it
 *   may set it, and refuses to start when the user's profile is read-only without it.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { ClickHouseClient } from "@clickhouse/client";
import { loadCatalog } from "../../src/core/catalog.js";
import type { FieldValue } from "../../src/core/events.js";
import { queryRows } from "../../src/ch/client.js";
import type { ClusterLayout } from "../../src/ch/layout.js";
import { ReadOnlyClientError, readOnlyClient, ServingConsistencyError } from "../../src/ch/read_only.js";
import { ensureSchema, viewTable } from "../../src/ch/schema.js";
import type { MasterRow } from "../../src/ch/master_insert.js";
import { recomputeViews } from "../../src/batch/index.js";
import { openTestChdb, type TestChdb } from "../harness/chdb.js";
import { keptLogger, type KeptLine } from "../harness/log.js";
import { prng } from "../unit/prng.js";

const SHARDED: ClusterLayout = { kind: "cluster", cluster: "lambda", sharded: true, keeperPath: "/clickhouse/tables" };
const catalog = loadCatalog("catalog/catalog.json");
const PARTITIONS = 4;
let chdb: TestChdb;

before(async () => {
  chdb = await openTestChdb("ch-cluster-sql");
});
after(async () => {
  await chdb?.[Symbol.asyncDispose]();
});

/** Rows of every source with copies of ids across partitions and rows archived twice. */
function masterRows(source: string, seed: number): MasterRow[] {
  const r = prng(seed);
  const rnd = () => r.next();
  const def = catalog.sources.get(source)!;
  const rows: MasterRow[] = [];
  const seqs = new Array<number>(PARTITIONS).fill(0);
  const t0 = Date.UTC(2026, 5, 8, 14);
  for (let i = 0; i < 400; i++) {
    const partition = Math.floor(rnd() * PARTITIONS);
    const id = `e${Math.floor(rnd() * 300)}`; // about a quarter are copies
    const fields: Record<string, FieldValue | undefined> = {};
    for (const [f, t] of Object.entries(def.fields)) {
      if (t.optional && rnd() < 0.2) fields[f] = null;
      else if (f === def.idField) fields[f] = t.type === "int" ? Number(id.slice(1)) : id;
      else if (t.type === "timestamp") fields[f] = t0 + Math.floor(rnd() * 3_600_000); // epoch ms, as the archiver writes it
      else if (t.type === "int") fields[f] = Math.floor(rnd() * 50);
      else if (t.type === "float") fields[f] = Math.round(rnd() * 10_000) / 100;
      else if (t.type === "bool") fields[f] = rnd() < 0.5;
      else fields[f] = ["a", "b", "c", "d"][Math.floor(rnd() * 4)]!;
    }
    seqs[partition]! += 1;
    const row: MasterRow = { partition, seq: seqs[partition]!, id, fields };
    rows.push(row);
    if (rnd() < 0.05) rows.push(row); // the same row archived twice
  }
  return rows;
}

test("the sharded layout's batch SQL (GLOBAL IN) gives the views the single-server SQL gives", async () => {
  const { client } = chdb.ch;
  for (const db of ["cl_single", "cl_sharded"]) await ensureSchema(client, db, catalog);
  for (const [i, source] of [...catalog.sources.values()].entries()) {
    const rows = masterRows(source.name, 7 + i);
    for (const db of ["cl_single", "cl_sharded"]) await chdb.ch.master.insert(db, source, rows);
  }
  const cuts = [60, 80, 100, 1_000];
  const single = await recomputeViews(client, catalog, "cl_single", { run: 1, cuts });
  const sharded = await recomputeViews(client, catalog, "cl_sharded", { run: 1, cuts }, SHARDED);
  assert.ok(single.eventsCovered > 0);
  assert.deepEqual({ ...sharded, stepMs: {} }, { ...single, stepMs: {} });
  let rowsCompared = 0;
  for (const metric of catalog.metrics.values()) {
    const read = (db: string) => queryRows<Record<string, unknown>>(client, `SELECT * FROM ${viewTable(db, metric)} ORDER BY ALL`);
    const [a, b] = [await read("cl_single"), await read("cl_sharded")];
    assert.deepEqual(b, a, metric.name);
    rowsCompared += a.length - 1; // but the marker
  }
  assert.ok(rowsCompared > 10 * catalog.metrics.size, `view rows compared: ${rowsCompared}`);
});

test("serving in a cluster reads with sequential consistency, and refuses a read-only profile without it", async () => {
  const writer: ClickHouseClient = chdb.ch.client;
  const lines: KeptLine[] = [];
  const ro = await readOnlyClient(writer, { engine: "server", layout: SHARDED, log: keptLogger(lines) });
  const [got] = await queryRows<{ s: number | string; r: number | string }>(ro, "SELECT getSetting('select_sequential_consistency') AS s, getSetting('readonly') AS r");
  assert.deepEqual([Number(got?.s), Number(got?.r)], [1, 1], "each query carries both settings");
  await assert.rejects(ro.command({ query: "CREATE DATABASE evil" }), ReadOnlyClientError);

  // Last in this file: the session turns read-only (readonly=2, as a profile would) and stays so.
  await writer.command({ query: "SET readonly = 2" });
  await assert.rejects(readOnlyClient(writer, { engine: "server", layout: SHARDED, log: keptLogger([]) }), (e: unknown) => e instanceof ServingConsistencyError && /select_sequential_consistency = 1/.test(e.message));
  await writer.command({ query: "SET select_sequential_consistency = 1" });
  const byProfile = await readOnlyClient(writer, { engine: "server", layout: SHARDED, log: keptLogger([]) });
  assert.deepEqual(await queryRows(byProfile, "SELECT getSetting('readonly') AS r"), [{ r: 2 }]);
});
