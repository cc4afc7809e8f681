/**
 * The master inserters (src/ch/master_insert.ts) against real chDB: random rows
 * of a source with every field type, optional and not, nulls, missing fields,
 * non-ASCII and long strings, integers at the edges of the safe range and times
 * before 1970, go in once as RowBinary through a file (the chDB path) and once
 * as JSONEachRow (the server path). Both tables must then hold the same rows,
 * equal to what was sent.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { parseCatalog } from "../../src/core/catalog.js";
import type { FieldValue } from "../../src/core/events.js";
import { queryRows, type ChHandle } from "../../src/ch/client.js";
import { jsonMasterInserter, masterBatch, MasterInsertFormats, type MasterRow } from "../../src/ch/master_insert.js";
import { rowBinaryEncoder, RowEncodingError } from "../../src/ch/row_binary.js";
import { ensureSchema, masterTable } from "../../src/ch/schema.js";
import { openTestChdb, type TestChdb } from "../harness/chdb.js";
import { prng } from "../unit/prng.js";

const catalog = parseCatalog(
  {
    sources: {
      all_types: {
        fields: {
          id: "string",
          s: "string",
          s_opt: "string?",
          i: "int",
          i_opt: "int?",
          f: "float",
          f_opt: "float?",
          b: "bool",
          b_opt: "bool?",
          ts: "timestamp",
          ts_opt: "timestamp?",
        },
        idField: "id",
        timeField: "ts",
        partitionKey: "s",
      },
    },
    metrics: { n: { source: "all_types", window: "1m", aggregates: { c: "count" } } },
  },
  "master-insert test catalog",
);
const source = catalog.sources.get("all_types")!;

const STRINGS = ["a", "it's \\ \"x\"\n\ttab", "日本", "é", "😀 emoji", "x".repeat(127), "y".repeat(128), "ü".repeat(70), "z".repeat(20_000)];
const INTS = [0, 1, -1, 127, 128, 2 ** 31, -(2 ** 31) - 1, 2 ** 32, -(2 ** 32), 2 ** 32 + 5, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER];
const FLOATS = [0, 1.5, -2.25, 1e-300, 1.7976931348623157e308, -5e-324, Math.PI];
const TIMES = [0, -1, Date.UTC(1960, 0, 1, 0, 0, 0, 123), Date.UTC(2026, 5, 8, 12, 0, 0, 7), Date.UTC(2200, 0, 1)];

function randomRows(seed: number, n: number): MasterRow[] {
  const r = prng(seed);
  const opt = <T>(v: () => T): T | null | undefined => (r.chance(0.2) ? null : r.chance(0.1) ? undefined : v());
  return Array.from({ length: n }, (_, k) => {
    const fields: Record<string, FieldValue | undefined> = {
      id: `id-${k}`,
      s: r.pick(STRINGS),
      s_opt: opt(() => r.pick(STRINGS)),
      i: r.chance(0.5) ? r.pick(INTS) : r.int(-1e12, 1e12),
      i_opt: opt(() => r.pick(INTS)),
      f: r.chance(0.5) ? r.pick(FLOATS) : (r.next() - 0.5) * 1e6,
      f_opt: opt(() => r.pick(FLOATS)),
      b: r.chance(0.5),
      b_opt: opt(() => r.chance(0.5)),
      ts: r.pick(TIMES),
      ts_opt: opt(() => r.pick(TIMES)),
    };
    // A non-optional field the event lacks (an older catalog): the column's default, as JSONEachRow does.
    if (r.chance(0.05)) delete fields.i;
    for (const [f, v] of Object.entries(fields)) if (v === undefined) delete fields[f];
    return { partition: r.int(0, 65_535), seq: k + 1 + (r.chance(0.1) ? 2 ** 40 : 0), id: `id-${k}`, fields };
  });
}

/** What a row must read back as: nulls and defaults filled in, times as ClickHouse prints them. */
function expected(row: MasterRow): Record<string, unknown> {
  const out: Record<string, unknown> = { _partition: row.partition, _seq: row.seq, _id: row.id };
  for (const [f, def] of Object.entries(source.fields)) {
    const v = row.fields[f] ?? (def.optional ? null : { string: "", int: 0, float: 0, bool: false, timestamp: 0 }[def.type]);
    out[f] = v === null ? null : def.type === "timestamp" ? new Date(v as number).toISOString().replace("T", " ").replace("Z", "") : v;
  }
  return out;
}

let chdb: TestChdb;
let ch: ChHandle;
before(async () => {
  chdb = await openTestChdb("master-insert");
  ch = chdb.ch;
});
after(() => chdb?.[Symbol.asyncDispose]());

const readBack = (db: string) =>
  queryRows<Record<string, unknown>>(ch.client, `SELECT * FROM ${masterTable(db, source.name)} ORDER BY _seq`, {});

test("RowBinary through a file and JSONEachRow store the same rows, equal to what was sent", { timeout: 60_000 }, async () => {
  assert.equal(ch.engine, "chdb");
  assert.equal(ch.master.format, MasterInsertFormats.rowBinary, "chDB inserts RowBinary");
  const rows = randomRows(7, 3_000);
  await ensureSchema(ch.client, "mi_binary", catalog);
  await ensureSchema(ch.client, "mi_json", catalog);
  // Two inserts into one table: the second appends.
  await ch.master.insert("mi_binary", source, rows.slice(0, 1_000));
  await ch.master.insert("mi_binary", source, rows.slice(1_000));
  await jsonMasterInserter(ch.client).insert("mi_json", source, rows);

  const binary = await readBack("mi_binary");
  const json = await readBack("mi_json");
  assert.equal(binary.length, rows.length);
  assert.deepEqual(binary, json, "the two formats store the same rows");
  const want = [...rows].sort((a, b) => a.seq - b.seq).map(expected);
  for (const [k, got] of binary.entries()) {
    // 64-bit integers may come back quoted, floats printed ClickHouse's way: compare them as numbers.
    for (const f of ["_seq", "i", "i_opt", "f", "f_opt"]) if (got[f] !== null) got[f] = Number(got[f]);
    assert.deepEqual(got, want[k], `row ${k} (seed 7)`);
  }
  assert.deepEqual(readdirSync(join(chdb.path, "lambda-insert")), [], "every insert file is removed");
});

test("a batch with a value its column's type does not describe goes in as JSONEachRow, as before RowBinary", async () => {
  await ensureSchema(ch.client, "mi_odd", catalog);
  const good = randomRows(8, 10);
  // As from events written under an older catalog: a number in a string column, digits in an int column.
  const odd: MasterRow = { ...good[9]!, fields: { ...good[9]!.fields, s: 5, i: "12" } };
  assert.throws(() => rowBinaryEncoder(source)([odd]), (e: unknown) => {
    assert.ok(e instanceof RowEncodingError);
    assert.equal(e.eventId, "id-9");
    assert.match(e.message, /field (s|i) of event id-9: expected (string|int), got (number|string)/);
    return true;
  });
  await ch.master.insert("mi_odd", source, [...good.slice(0, 9), odd]);
  const back = await readBack("mi_odd");
  assert.equal(back.length, 10, "the whole batch went in");
  const row = back.find((r) => r._id === "id-9")!;
  assert.equal(row.s, "5");
  assert.equal(Number(row.i), 12);
  assert.deepEqual(readdirSync(join(chdb.path, "lambda-insert")), [], "no file left behind");
});

test("a batch gathered row by row (the archiver's) stores the same rows as the row objects; one with a value that does not fit goes in as JSONEachRow", async () => {
  const rows = randomRows(9, 2_000);
  await ensureSchema(ch.client, "mi_batch", catalog);
  await ensureSchema(ch.client, "mi_objects", catalog);
  const batch = masterBatch(ch.master.format, source);
  for (const r of rows) batch.push(r);
  await ch.master.insert("mi_batch", source, batch);
  await ch.master.insert("mi_objects", source, rows);
  assert.deepEqual(await readBack("mi_batch"), await readBack("mi_objects"));

  await ensureSchema(ch.client, "mi_batch_odd", catalog);
  const odd = masterBatch(ch.master.format, source);
  const few = randomRows(10, 10);
  for (const r of few.slice(0, 9)) odd.push(r);
  odd.push({ ...few[9]!, fields: { ...few[9]!.fields, s: 5 } });
  await ch.master.insert("mi_batch_odd", source, odd);
  const back = await readBack("mi_batch_odd");
  assert.equal(back.length, 10, "the whole batch went in");
  assert.equal(back.find((r) => r._id === "id-9")!.s, "5");
  assert.deepEqual(readdirSync(join(chdb.path, "lambda-insert")), [], "no file left behind");
});
