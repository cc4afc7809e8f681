/**
 * The serving role reads ClickHouse and never writes (src/ch/read_only.ts, real chDB): batch views
 * a real batch run wrote read the same through the read-only client as through the writers'
 * client, and as an independent recount of the master rows; every write through it is refused,
 * by the client (command, exec, insert) or by ClickHouse (a write smuggled into a query), and
 * the table contents stay as they were; the writers' client, which shares chDB's one session,
 * stays writable. A process that only serves waits for the writers' schema and never creates it
 * (src/ch/schema.ts awaitServingSchema). chDB says once which server-only settings it ignores.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { ClickHouseClient } from "@clickhouse/client";
import { queryRows, clickHouseErrorCode } from "../../src/ch/client.js";
import { READONLY_CLAUSE, ReadOnlyClientError, readOnlyClient } from "../../src/ch/read_only.js";
import { awaitServingSchema, ensureSchema, ident, masterTable, missingServingTables, SchemaMissingError, viewTable, viewTableName } from "../../src/ch/schema.js";
import { markViewVersion, readBatchStates, viewVersionState } from "../../src/ch/views.js";
import { recomputeViews } from "../../src/batch/index.js";
import { parseCatalog } from "../../src/core/catalog.js";
import { BatchViewMissingError } from "../../src/core/errors.js";
import { openTestChdb, type TestChdb } from "../harness/chdb.js";
import { keptLogger, type KeptLine } from "../harness/log.js";

const catalog = parseCatalog(
  {
    sources: { pv: { fields: { id: "string", article: "string", ts: "timestamp", ms: "float" }, idField: "id", timeField: "ts", partitionKey: "article" } },
    metrics: { views: { source: "pv", groupBy: ["article"], window: "1m", aggregates: { n: "count", total: { sum: "ms" } } } },
  },
  "read-only-serving",
);
const source = catalog.sources.get("pv")!;
const metric = catalog.metrics.get("views")!;
const T = Date.UTC(2026, 5, 8, 14, 0, 0);
const READONLY = 164; // ClickHouse's READONLY error code

// chDB allows one data directory per process: the tests of this file share one (each its own database).
let chdb: TestChdb;
let writer: ClickHouseClient;
/** What opening chDB logged: it was opened with settings only a ClickHouse server uses. */
const openLines: KeptLine[] = [];
before(async () => {
  chdb = await openTestChdb("read-only", { password: "hunter2-secret", caFile: "/etc/tls/ca.pem", certFile: "/etc/tls/c.pem", keyFile: "/etc/tls/c.key" }, { log: keptLogger(openLines) });
  writer = chdb.ch.client;
});

test("chDB says once that it ignores the password and TLS settings, naming the variables, not their values", () => {
  assert.equal(openLines.length, 1, JSON.stringify(openLines));
  assert.equal(openLines[0]!.level, "warn");
  assert.equal(openLines[0]!.fields.component, "clickhouse");
  assert.deepEqual(openLines[0]!.fields.ignored, ["LAMBDA_CLICKHOUSE_PASSWORD", "LAMBDA_CLICKHOUSE_CA_FILE", "LAMBDA_CLICKHOUSE_CERT_FILE", "LAMBDA_CLICKHOUSE_KEY_FILE"]);
  assert.ok(!JSON.stringify(openLines).includes("hunter2-secret"));
});
after(() => chdb?.[Symbol.asyncDispose]());

/** 40 events over 3 articles and 2 windows, archived and covered by batch run 1. */
async function seed(db: string) {
  await ensureSchema(writer, db, catalog);
  const rows = Array.from({ length: 40 }, (_, i) => ({ partition: 0, seq: i + 1, id: `e${i}`, fields: { id: `e${i}`, article: `a${i % 3}`, ts: T + (i % 2) * 60_000 + i, ms: i * 1.5 } }));
  await chdb.ch.master.insert(db, source, rows);
  await recomputeViews(writer, catalog, db, { run: 1, cuts: [rows.length + 1] });
}

/** Row counts of the tables of `db`, read through the writers' client: what a refused write must leave alone. */
const contents = async (db: string) => ({
  tables: (await queryRows<{ name: string }>(writer, "SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name", { db })).map((r) => r.name),
  master: Number((await queryRows<{ n: string }>(writer, `SELECT count() AS n FROM ${masterTable(db, "pv")}`))[0]!.n),
  view: Number((await queryRows<{ n: string }>(writer, `SELECT count() AS n FROM ${viewTable(db, metric)}`))[0]!.n),
});

test("serving's reads go through the read-only client: the batch view a run wrote, as the writers read it and as a recount says", async () => {
  const db = "ro_reads";
  await seed(db);
  const lines: KeptLine[] = [];
  const ro = await readOnlyClient(writer, { engine: "chdb", log: keptLogger(lines) });
  assert.deepEqual(lines, [], "chDB's shared session is no news: nothing to warn about");

  const viaRo = await readBatchStates(ro, db, metric, 1, null, 0, Number.MAX_SAFE_INTEGER);
  const viaWriter = await readBatchStates(writer, db, metric, 1, null, 0, Number.MAX_SAFE_INTEGER);
  assert.deepEqual(viaRo, viaWriter);
  // Independent recount from the master rows, not through the view.
  const recount = await queryRows<{ article: string; w: string; n: string; total: number }>(
    writer,
    `SELECT article, toString(intDiv(toUnixTimestamp64Milli(ts), 60000) * 60000) AS w, count() AS n, sum(ms) AS total FROM ${masterTable(db, "pv")} GROUP BY article, w`,
  );
  assert.equal(recount.length, 6);
  for (const r of recount) {
    const state = viaRo.get(r.article)?.get(Number(r.w));
    assert.ok(state, `${r.article} @ ${r.w}`);
    assert.equal(state.n, Number(r.n));
    assert.deepEqual(state.parts, [{ k: "count" }, { k: "sum", s: r.total }]);
  }
  const some = await readBatchStates(ro, db, metric, 1, ["a1"], T, T + 60_000);
  assert.deepEqual([...some.keys()], ["a1"]);
  assert.equal(await viewVersionState(ro, db, metric, 1), "present");
  await assert.rejects(readBatchStates(ro, db, metric, 7, null, 0, Number.MAX_SAFE_INTEGER), (e: unknown) => e instanceof BatchViewMissingError && e.missing === "version");
  // A database without the view table (a serving node on another ClickHouse): missing, never 0.
  await assert.rejects(readBatchStates(ro, "ro_nowhere", metric, 1, null, 0, Number.MAX_SAFE_INTEGER), (e: unknown) => e instanceof BatchViewMissingError && e.missing === "table");
  // The query runs read-only, and only that query: the shared session is as writable as before.
  assert.deepEqual(await queryRows(ro, "SELECT getSetting('readonly') AS r"), [{ r: 1 }]);
  assert.deepEqual(await queryRows(writer, "SELECT getSetting('readonly') AS r"), [{ r: 0 }]);
});

test("every write through the read-only client is refused, by the client or by ClickHouse, and changes nothing", async () => {
  const db = "ro_writes";
  await seed(db);
  const ro = await readOnlyClient(writer, { engine: "chdb", log: keptLogger([]) });
  const before = await contents(db);

  // Writes by their nature: refused before they reach ClickHouse, naming the method and the statement.
  const byClient: [string, () => Promise<unknown>, RegExp][] = [
    ["command", () => ro.command({ query: `CREATE TABLE ${ident(db)}.evil (x Int64) ENGINE = MergeTree ORDER BY x` }), /command refused \(CREATE TABLE `ro_writes`\.evil/],
    ["command", () => ro.command({ query: `DROP TABLE ${viewTable(db, metric)}` }), /command refused \(DROP TABLE/],
    ["exec", () => ro.exec({ query: `ALTER TABLE ${viewTable(db, metric)} DELETE WHERE 1` }), /exec refused \(ALTER TABLE/],
    ["insert", () => ro.insert({ table: masterTable(db, "pv"), values: [{ _partition: 0, _seq: 99, _id: "x", id: "x", article: "a0", ts: T, ms: 1 }], format: "JSONEachRow" }), /insert refused \(INSERT INTO/],
    ["command", () => markViewVersion(ro, db, metric, 9), /command refused \(INSERT INTO/],
  ];
  for (const [method, write, message] of byClient) {
    await assert.rejects(write(), (e: unknown) => e instanceof ReadOnlyClientError && e.method === method && message.test(e.message), String(message));
  }
  // Writes dressed as queries: ClickHouse refuses them for readonly=1 (code READONLY, not a syntax error).
  const byEngine = [
    `INSERT INTO ${viewTable(db, metric)} (run, key, window_start, n) SELECT 9, 'x', now64(3, 'UTC'), 5`,
    `CREATE TABLE ${ident(db)}.evil (x Int64) ENGINE = MergeTree ORDER BY x`,
    `CREATE TABLE ${ident(db)}.evil ENGINE = MergeTree ORDER BY x AS SELECT 1 AS x`,
    `DROP TABLE ${masterTable(db, "pv")}`,
    `TRUNCATE TABLE ${masterTable(db, "pv")}`,
    `ALTER TABLE ${viewTable(db, metric)} DROP PARTITION 1`,
  ];
  for (const query of byEngine) {
    const code = await ro.query({ query, format: "JSONEachRow" }).then(
      (rs) => rs.json().then(() => "ran"),
      (e: unknown) => clickHouseErrorCode(e),
    );
    assert.equal(code, READONLY, query);
  }
  // A query cannot lift it either: the clause comes last, so a SET before it does not parse.
  await assert.rejects(ro.query({ query: "SET readonly = 0", format: "JSONEachRow" }), (e: unknown) => clickHouseErrorCode(e) !== undefined);
  assert.deepEqual(await contents(db), before, "the tables and their rows are as they were");
  // And the writers still write, through the same chDB session.
  await markViewVersion(writer, db, metric, 2);
  assert.equal((await contents(db)).view, before.view + 1);
});

test("a serving-only process waits for the writers' tables, creating none, and names the missing ones at the deadline", async () => {
  const db = "ro_schema";
  const expected = [`${ident(db)}.${ident("master_pv")}`, `${ident(db)}.${ident(viewTableName(metric))}`];
  assert.deepEqual(await missingServingTables(writer, db, catalog), expected);
  const lines: KeptLine[] = [];
  const err = await awaitServingSchema(writer, db, catalog, { timeoutMs: 300, intervalMs: 50, log: keptLogger(lines) }).then(
    () => assert.fail("nothing created the tables"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SchemaMissingError, String(err));
  assert.deepEqual(err.missing, expected);
  assert.match(err.message, /still lacks `ro_schema`\.`master_pv`, `ro_schema`\.`view_views_\w+` after 300 ms \(LAMBDA_CLICKHOUSE_SCHEMA_WAIT_MS\)/);
  assert.equal(lines.filter((l) => l.message.startsWith("waiting for")).length, 1, "said once what it waits for");
  const dbs = await queryRows(writer, "SELECT name FROM system.databases WHERE name = {db:String}", { db });
  assert.deepEqual(dbs, [], "the wait created nothing, not even the database");

  // The writers create the schema while serving waits: the wait ends.
  const waiting = awaitServingSchema(writer, db, catalog, { timeoutMs: 20_000, intervalMs: 50, log: keptLogger([]) });
  await ensureSchema(writer, db, catalog);
  await waiting;
  assert.deepEqual(await missingServingTables(writer, db, catalog), []);
});

test("a server user that may write is warned about; one whose profile is read-only gets its queries as they are", async () => {
  const lines: KeptLine[] = [];
  await readOnlyClient(writer, { engine: "server", log: keptLogger(lines) });
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.level, "warn");
  assert.match(lines[0]!.message, /may write.*give serving the read-only user of docs\/security\.md/);

  // Last in this file: the session turns read-only (readonly=2, as some profiles have) and stays so.
  // With readonly=2 a query may not set readonly, so the clause would fail every query: it is left off.
  await writer.command({ query: "SET readonly = 2" });
  await assert.rejects(queryRows(writer, `SELECT 1 AS one ${READONLY_CLAUSE}`), (e: unknown) => clickHouseErrorCode(e) === READONLY, "why the clause is left off");
  const profileLines: KeptLine[] = [];
  const ro: ClickHouseClient = await readOnlyClient(writer, { engine: "server", log: keptLogger(profileLines) });
  assert.deepEqual(await queryRows(ro, "SELECT getSetting('readonly') AS r"), [{ r: 2 }]);
  assert.deepEqual(
    profileLines.map((l) => [l.level, l.message, l.fields.readonly]),
    [["info", "serving's ClickHouse user is read-only by its profile: its queries rely on that", 2]],
  );
  await assert.rejects(ro.command({ query: "CREATE DATABASE evil" }), ReadOnlyClientError);
});
