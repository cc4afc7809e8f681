/**
 * Master-table rows in ClickHouse's RowBinary format: the archiver's insert
 * format on chDB (read back with `INSERT … SELECT FROM file(path, RowBinary,
 * structure)`) and the bench's fastest raw baseline.
 *
 * Columns, in the master table's order: `_partition UInt16`, `_seq UInt64`,
 * `_id String`, then the source's fields in catalog order. A field that is
 * missing or null in a non-nullable column gets the type's default (`""`, 0,
 * false), as a JSONEachRow insert of the same row would.
 */
import type { FieldDef, FieldType, SourceDef } from "../core/catalog.js";
import type { FieldValue } from "../core/events.js";
import { columnType } from "./schema.js";

/** One master-table row: where the event sits in the stream, its id and its normalised fields. */
export interface MasterRow {
  readonly partition: number;
  readonly seq: number;
  readonly id: string;
  /** Field name → value, as validated at ingest; catalog fields that are absent are NULL or the default. */
  readonly fields: Readonly<Record<string, FieldValue | undefined>>;
}

/** Thrown when a row's value does not fit its column's type; the chDB inserter then sends the batch as JSONEachRow. */
export class RowEncodingError extends Error {
  override readonly name = "RowEncodingError";
  constructor(
    readonly field: string,
    readonly expected: FieldType,
    readonly got: string,
    readonly eventId: string,
  ) {
    super(`field ${field} of event ${eventId}: expected ${expected}, got ${got}`);
  }
}

/** The `structure` argument of file() for a source's master table (a SQL string literal's content, unquoted). */
export function masterStructure(source: SourceDef): string {
  return ["_partition UInt16", "_seq UInt64", "_id String", ...Object.entries(source.fields).map(([f, t]) => `${f} ${columnType(t)}`)].join(", ");
}

const TWO_32 = 4_294_967_296;

/** A growable byte buffer with the few RowBinary writers the master table needs. */
class Writer {
  buf: Buffer;
  o = 0;
  constructor(bytes: number) {
    this.buf = Buffer.allocUnsafe(Math.max(bytes, 256));
  }
  ensure(n: number): void {
    if (this.o + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.o + n));
    this.buf.copy(next, 0, 0, this.o);
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.o++] = v;
  }
  /** A safe integer as a little-endian 64-bit two's complement; no BigInt (10x cheaper). */
  i64(v: number): void {
    this.ensure(8);
    this.buf.writeUInt32LE(v >>> 0, this.o);
    this.buf.writeInt32LE(Math.floor(v / TWO_32), this.o + 4);
    this.o += 8;
  }
  f64(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.o);
    this.o += 8;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.o);
    this.o += 2;
  }
  /** Varint length + UTF-8 bytes; ASCII (ids, keys, countries) is copied without a UTF-8 pass. */
  str(s: string): void {
    const n = s.length;
    this.ensure(n * 3 + 5);
    const buf = this.buf;
    let o = this.o + 1;
    let i = 0;
    if (n < 0x80) {
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[o++] = c;
      }
      if (i === n) {
        buf[this.o] = n;
        this.o = o;
        return;
      }
    }
    // Not short ASCII: the length prefix can take more than one byte.
    const len = Buffer.byteLength(s);
    let l = len;
    o = this.o;
    while (l >= 0x80) {
      buf[o++] = (l & 0x7f) | 0x80;
      l >>>= 7;
    }
    buf[o++] = l;
    this.o = o + buf.write(s, o, "utf8");
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.o);
  }
}

type FieldWriter = (w: Writer, v: FieldValue | undefined, row: MasterRow) => void;

const typeName = (v: unknown) => (v === null ? "null" : typeof v);

function valueWriter(name: string, type: FieldType): (w: Writer, v: Exclude<FieldValue, null>, row: MasterRow) => void {
  const fail = (v: unknown, row: MasterRow): never => {
    throw new RowEncodingError(name, type, typeName(v), row.id);
  };
  switch (type) {
    case "string":
      return (w, v, row) => (typeof v === "string" ? w.str(v) : fail(v, row));
    case "int":
    case "timestamp":
      return (w, v, row) => (typeof v === "number" && Number.isSafeInteger(v) ? w.i64(v) : fail(v, row));
    case "float":
      return (w, v, row) => (typeof v === "number" ? w.f64(v) : fail(v, row));
    case "bool":
      return (w, v, row) => (typeof v === "boolean" ? w.u8(v ? 1 : 0) : fail(v, row));
  }
}

const DEFAULTS: Readonly<Record<FieldType, Exclude<FieldValue, null>>> = { string: "", int: 0, float: 0, bool: false, timestamp: 0 };

function fieldWriter(name: string, def: FieldDef): FieldWriter {
  const write = valueWriter(name, def.type);
  if (def.optional) {
    return (w, v, row) => {
      if (v === null || v === undefined) return w.u8(1);
      w.u8(0);
      write(w, v, row);
    };
  }
  const dflt = DEFAULTS[def.type];
  return (w, v, row) => write(w, v === null || v === undefined ? dflt : v, row);
}

/** Encodes master-table rows of one source; build once per source, reuse per insert. */
export type RowBinaryEncoder = (rows: readonly MasterRow[]) => Buffer;

type RowWriter = (w: Writer, r: MasterRow) => void;

function rowWriter(source: SourceDef): RowWriter {
  const fields = Object.entries(source.fields).map(([f, def]) => [f, fieldWriter(f, def)] as const);
  return (w, r) => {
    w.u16(r.partition);
    w.i64(r.seq);
    w.str(r.id);
    const v = r.fields;
    for (const [f, write] of fields) write(w, v[f], r);
  };
}

/**
 * Compiles the RowBinary encoder of `source`'s master table.
 * The encoder throws RowEncodingError when a value does not fit its column.
 */
export function rowBinaryEncoder(source: SourceDef): RowBinaryEncoder {
  const write = rowWriter(source);
  return (rows) => {
    const w = new Writer(rows.length * 96);
    for (const r of rows) write(w, r);
    return w.bytes();
  };
}

/**
 * RowBinary rows of one source written one at a time, as they arrive: the archiver keeps bytes
 * instead of row objects while a batch gathers (rows held across collections cost the garbage
 * collector most of its time otherwise).
 */
export interface RowBinaryAppender {
  /** Bytes written so far; a row's bytes end where this stood after its append. */
  readonly byteLength: number;
  /** Writes `row`. @throws RowEncodingError (nothing of the row is kept then) */
  append(row: MasterRow): void;
  /** Copies already-encoded rows of the same source. */
  appendEncoded(bytes: Uint8Array): void;
  /** Everything written, without a copy (later appends may reallocate: take it once writing is done). */
  bytes(): Buffer;
}

export function rowBinaryAppender(source: SourceDef, expectedBytes = 4096): RowBinaryAppender {
  const write = rowWriter(source);
  const w = new Writer(expectedBytes);
  return {
    get byteLength() {
      return w.o;
    },
    append(row) {
      const start = w.o;
      try {
        write(w, row);
      } catch (err) {
        w.o = start;
        throw err;
      }
    },
    appendEncoded(bytes) {
      w.ensure(bytes.length);
      w.buf.set(bytes, w.o);
      w.o += bytes.length;
    },
    bytes: () => w.bytes(),
  };
}

/** A value read back from RowBinary. */
type FieldReader = (r: Reader) => FieldValue;

class Reader {
  o = 0;
  constructor(readonly buf: Buffer) {}
  u8(): number {
    return this.buf[this.o++]!;
  }
  u16(): number {
    const v = this.buf.readUInt16LE(this.o);
    this.o += 2;
    return v;
  }
  i64(): number {
    const v = this.buf.readInt32LE(this.o + 4) * TWO_32 + this.buf.readUInt32LE(this.o);
    this.o += 8;
    return v;
  }
  f64(): number {
    const v = this.buf.readDoubleLE(this.o);
    this.o += 8;
    return v;
  }
  str(): string {
    let len = 0;
    for (let shift = 0; ; shift += 7) {
      const b = this.buf[this.o++]!;
      len += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) break;
    }
    const s = this.buf.toString("utf8", this.o, this.o + len);
    this.o += len;
    return s;
  }
}

function fieldReader(def: FieldDef): FieldReader {
  const read: FieldReader = {
    string: (r: Reader) => r.str(),
    int: (r: Reader) => r.i64(),
    timestamp: (r: Reader) => r.i64(),
    float: (r: Reader) => r.f64(),
    bool: (r: Reader) => r.u8() !== 0,
  }[def.type];
  return def.optional ? (r) => (r.u8() === 1 ? null : read(r)) : read;
}

/** Reads master-table rows of one source back from RowBinary (the rows as they go in: a non-nullable field the event lacked reads as the type's default). */
export type RowBinaryDecoder = (bytes: Buffer) => MasterRow[];

export function rowBinaryDecoder(source: SourceDef): RowBinaryDecoder {
  const fields = Object.entries(source.fields).map(([f, def]) => [f, fieldReader(def)] as const);
  return (bytes) => {
    const r = new Reader(bytes);
    const rows: MasterRow[] = [];
    while (r.o < bytes.length) {
      const partition = r.u16();
      const seq = r.i64();
      const id = r.str();
      const values: Record<string, FieldValue> = {};
      for (const [f, read] of fields) values[f] = read(r);
      rows.push({ partition, seq, id, fields: values });
    }
    return rows;
  };
}
