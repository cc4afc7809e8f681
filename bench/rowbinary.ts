/**
 * Master-table rows in ClickHouse's RowBinary format, for the fastest raw
 * insert baseline (`INSERT … SELECT FROM file(path, RowBinary, structure)`).
 * Columns: _partition UInt16, _seq UInt64, _id String, then the source's
 * fields in catalog order (the master table's column order).
 */
import type { FieldDef, FieldType, SourceDef } from "../src/core/catalog.js";

/** A master-table row as the archiver builds it: _partition, _seq, _id and the normalised fields. */
export type MasterRow = Record<string, string | number | boolean | null>;

const TYPES: Record<FieldType, string> = { string: "String", int: "Int64", float: "Float64", bool: "Bool", timestamp: "DateTime64(3, 'UTC')" };

const columnType = (f: FieldDef) => (f.optional ? `Nullable(${TYPES[f.type]})` : TYPES[f.type]);

/** The `structure` argument of file() for a source's master table. */
export function masterStructure(source: SourceDef): string {
  return ["_partition UInt16", "_seq UInt64", "_id String", ...Object.entries(source.fields).map(([f, t]) => `${f} ${columnType(t)}`)].join(", ");
}

/** Encodes `rows` (as the archiver builds them) to RowBinary. */
export function encodeRowBinary(source: SourceDef, rows: readonly MasterRow[]): Buffer {
  const fields = Object.entries(source.fields);
  let buf = Buffer.allocUnsafe(rows.length * 128);
  let o = 0;
  const ensure = (n: number) => {
    if (o + n <= buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(buf.length * 2, o + n));
    buf.copy(next, 0, 0, o);
    buf = next;
  };
  const str = (s: string) => {
    const len = Buffer.byteLength(s);
    ensure(len + 5);
    let l = len;
    while (l >= 0x80) {
      buf[o++] = (l & 0x7f) | 0x80;
      l >>>= 7;
    }
    buf[o++] = l;
    o += buf.write(s, o);
  };
  const i64 = (v: number) => {
    ensure(8);
    buf.writeBigInt64LE(BigInt(v), o);
    o += 8;
  };
  for (const r of rows) {
    ensure(10);
    buf.writeUInt16LE(r._partition as number, o);
    o += 2;
    buf.writeBigUInt64LE(BigInt(r._seq as number), o);
    o += 8;
    str(String(r._id));
    for (const [f, def] of fields) {
      const v = r[f];
      if (def.optional) {
        ensure(1);
        buf[o++] = v === null || v === undefined ? 1 : 0;
        if (v === null || v === undefined) continue;
      }
      switch (def.type) {
        case "string":
          str(String(v));
          break;
        case "int":
        case "timestamp":
          i64(v as number);
          break;
        case "float":
          ensure(8);
          buf.writeDoubleLE(v as number, o);
          o += 8;
          break;
        case "bool":
          ensure(1);
          buf[o++] = v ? 1 : 0;
          break;
      }
    }
  }
  return buf.subarray(0, o);
}
