/**
 * The archiver's batches (masterBatch in src/ch/master_insert.ts): rows held as
 * RowBinary bytes must read back as the rows that went in (with the defaults a
 * JSONEachRow insert would give), keep each row's partition and sequence for the
 * exactly-once retry (filter, slice), follow a newer definition of the source,
 * and turn into row objects when a value does not fit its column.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCatalog } from "../../src/core/catalog.js";
import type { FieldValue } from "../../src/core/events.js";
import { masterBatch, masterRowsOf, MasterInsertFormats, type MasterRow } from "../../src/ch/master_insert.js";
import { rowBinaryDecoder, rowBinaryEncoder } from "../../src/ch/row_binary.js";
import { prng } from "./prng.js";

const fields = { id: "string", s: "string", s_opt: "string?", i: "int", i_opt: "int?", f: "float", b: "bool", b_opt: "bool?", ts: "timestamp" } as const;
const catalogOf = (extra: Record<string, string>) =>
  parseCatalog(
    {
      sources: { t: { fields: { ...fields, ...extra }, idField: "id", timeField: "ts", partitionKey: "s" } },
      metrics: { n: { source: "t", window: "1m", aggregates: { c: "count" } } },
    },
    "master-batch test catalog",
  );
const source = catalogOf({}).sources.get("t")!;
/** The same source with an optional field added, as a newer catalog version would. */
const newer = catalogOf({ added: "int?" }).sources.get("t")!;

const STRINGS = ["", "a", "日本", "😀", "x".repeat(127), "y".repeat(128), "z".repeat(20_000)];
const INTS = [0, -1, 2 ** 32, -(2 ** 32) - 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER];

function randomRows(seed: number, n: number): MasterRow[] {
  const r = prng(seed);
  return Array.from({ length: n }, (_, k) => {
    const v: Record<string, FieldValue | undefined> = {
      id: `id-${k}`,
      s: r.pick(STRINGS),
      s_opt: r.chance(0.3) ? null : r.pick(STRINGS),
      i: r.pick(INTS),
      i_opt: r.chance(0.3) ? null : r.int(-1e12, 1e12),
      f: (r.next() - 0.5) * 1e6,
      b: r.chance(0.5),
      b_opt: r.chance(0.3) ? null : r.chance(0.5),
      ts: r.int(-1e12, 4e12),
    };
    if (r.chance(0.1)) delete v.i; // a non-optional field the event lacks: the type's default
    if (r.chance(0.1)) delete v.s_opt; // an optional one: NULL
    return { partition: r.int(0, 7), seq: k + 1, id: `id-${k}`, fields: v };
  });
}

/** A row as it goes in: every column present, nulls and defaults filled in. */
function asStored(row: MasterRow, def = source): MasterRow {
  const out: Record<string, FieldValue> = {};
  for (const [f, d] of Object.entries(def.fields)) out[f] = row.fields[f] ?? (d.optional ? null : { string: "", int: 0, float: 0, bool: false, timestamp: 0 }[d.type]);
  return { partition: row.partition, seq: row.seq, id: row.id, fields: out };
}

test("a RowBinary batch holds its rows as the bytes the encoder makes, and reads them back as they go in", () => {
  const rows = randomRows(1, 500);
  const batch = masterBatch(MasterInsertFormats.rowBinary, source);
  for (const r of rows) batch.push(r);
  assert.equal(batch.length, rows.length);
  assert.deepEqual(masterRowsOf(batch), rows.map((r) => asStored(r)));
  assert.deepEqual(rowBinaryDecoder(source)(rowBinaryEncoder(source)(rows)), rows.map((r) => asStored(r)), "decoder reads the encoder's bytes");
  for (const i of [0, 17, 499]) {
    assert.equal(batch.partitionAt(i), rows[i]!.partition);
    assert.equal(batch.seqAt(i), rows[i]!.seq);
    assert.deepEqual(batch.rowAt(i), asStored(rows[i]!), `row ${i}`);
  }
});

test("filter and slice keep each row's bytes, partition and sequence (the insert retry's parts)", () => {
  const rows = randomRows(2, 300);
  for (const format of [MasterInsertFormats.rowBinary, MasterInsertFormats.jsonEachRow]) {
    const batch = masterBatch(format, source);
    for (const r of rows) batch.push(r);
    const stored = (rs: MasterRow[]) => (format === MasterInsertFormats.rowBinary ? rs.map((r) => asStored(r)) : rs);
    // As after an insert that landed in part: keep what each partition's head lacks.
    const heads = [10, 50, 0, 300, 120, 7, 200, 99];
    const kept = batch.filter((p, seq) => seq > heads[p]!);
    const want = rows.filter((r) => r.seq > heads[r.partition]!);
    assert.deepEqual(masterRowsOf(kept), stored(want), format);
    assert.deepEqual(Array.from({ length: kept.length }, (_, i) => [kept.partitionAt(i), kept.seqAt(i)]), want.map((r) => [r.partition, r.seq]));
    const mid = kept.length >> 1;
    assert.deepEqual(masterRowsOf(kept.slice(0, mid)), stored(want.slice(0, mid)));
    assert.deepEqual(masterRowsOf(kept.slice(mid)), stored(want.slice(mid)));
    assert.equal(kept.slice(mid).seqAt(0), want[mid]!.seq);
    assert.equal(batch.filter(() => false).length, 0);
  }
});

test("rows gathered under an older definition of the source are held under the newer one", () => {
  const rows = randomRows(3, 50);
  const batch = masterBatch(MasterInsertFormats.rowBinary, source);
  for (const r of rows.slice(0, 20)) batch.push(r);
  const moved = batch.withSource(newer);
  assert.equal(moved.source, newer);
  const later: MasterRow[] = rows.slice(20).map((r, k) => ({ ...r, fields: { ...r.fields, added: k } }));
  for (const r of later) moved.push(r);
  assert.deepEqual(masterRowsOf(moved), [...rows.slice(0, 20), ...later].map((r) => asStored(r, newer)));
  assert.equal(batch.withSource(source), batch, "the same definition: the same batch");
});

test("a value its column's type does not describe turns the batch into row objects, the earlier rows included", () => {
  const rows = randomRows(4, 30);
  const batch = masterBatch(MasterInsertFormats.rowBinary, source);
  for (const r of rows.slice(0, 20)) batch.push(r);
  // As from an event written under an older catalog: a number in a string column.
  const odd: MasterRow = { ...rows[20]!, fields: { ...rows[20]!.fields, s: 5 } };
  batch.push(odd);
  for (const r of rows.slice(21)) batch.push(r);
  assert.equal(batch.length, 30);
  assert.deepEqual(masterRowsOf(batch), [...rows.slice(0, 20).map((r) => asStored(r)), odd, ...rows.slice(21)]);
  assert.equal(batch.seqAt(20), odd.seq);
  assert.deepEqual(batch.rowAt(20), odd);
});
