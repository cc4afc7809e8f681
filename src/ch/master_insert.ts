/**
 * Appending rows to the master dataset, in the cheapest format the engine
 * takes:
 *
 * - chDB: RowBinary written by Node to a file, read back by one
 *   `INSERT … SELECT * FROM file(path, RowBinary, structure)`. The archiver
 *   writes each row's bytes as it reads the row (masterBatch), so no row
 *   objects wait for the flush. The chDB
 *   connection of @clickhouse/client turns any insert body into a JS string
 *   (no binary formats), and chDB's raw insert takes text formats only; the
 *   file is how binary rows reach it. 3–6x a JSONEachRow insert of the same
 *   rows, and the JSON text is never built on the event loop.
 * - ClickHouse server: JSONEachRow through @clickhouse/client (a server's
 *   file() reads the server's disk, not ours).
 *
 * Either way one call is one INSERT statement: what lands on a failure is
 * whatever ClickHouse committed, and the archiver's exactly-once bookkeeping
 * (see src/batch/archiver.ts) reads the table back to find out.
 */
import { mkdirSync, rmSync } from "node:fs";
import { unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ClickHouseClient } from "@clickhouse/client";
import type { SourceDef } from "../core/catalog.js";
import {
  masterStructure,
  rowBinaryAppender,
  rowBinaryDecoder,
  rowBinaryEncoder,
  RowEncodingError,
  type MasterRow,
  type RowBinaryAppender,
  type RowBinaryDecoder,
  type RowBinaryEncoder,
} from "./row_binary.js";
import { ident, masterTable } from "./schema.js";

export type { MasterRow } from "./row_binary.js";

/** Formats a master insert can travel in. */
export const MasterInsertFormats = { rowBinary: "RowBinary", jsonEachRow: "JSONEachRow" } as const;
export type MasterInsertFormat = (typeof MasterInsertFormats)[keyof typeof MasterInsertFormats];

/**
 * Rows of one source gathered for one INSERT, in arrival order, held in the form the inserter
 * sends: RowBinary bytes for a RowBinary inserter (no object per row stays alive while a batch
 * gathers), the row objects otherwise. Made by masterBatch().
 */
export interface MasterBatch {
  /** The source definition the rows are held under (a newer one: see withSource). */
  readonly source: SourceDef;
  readonly length: number;
  /** Appends a row of `source`. */
  push(row: MasterRow): void;
  partitionAt(i: number): number;
  seqAt(i: number): number;
  /** Row `i` as it goes in (from RowBinary: a non-nullable field the event lacked reads as its type's default). */
  rowAt(i: number): MasterRow;
  /** Rows [start, end) as a new batch. */
  slice(start: number, end?: number): MasterBatch;
  /** The rows `keep` accepts, in order, as a new batch. */
  filter(keep: (partition: number, seq: number) => boolean): MasterBatch;
  /** The same rows held under `next`, a newer definition of the source (its table's columns). */
  withSource(next: SourceDef): MasterBatch;
}

/** What an insert takes: row objects, or a batch gathered by masterBatch(). */
export type MasterRows = readonly MasterRow[] | MasterBatch;

/** Appends rows to a source's master table; one call is one INSERT. */
export interface MasterInserter {
  readonly format: MasterInsertFormat;
  /**
   * Inserts `rows` into `db`'s master table of `source` (a batch's own `source`, which the caller passes).
   * @throws the client's error (ClickHouse refused the rows, or could not be reached).
   */
  insert(db: string, source: SourceDef, rows: MasterRows): Promise<void>;
}

const decoders = new WeakMap<SourceDef, RowBinaryDecoder>();
function decoderOf(source: SourceDef): RowBinaryDecoder {
  let d = decoders.get(source);
  if (!d) decoders.set(source, (d = rowBinaryDecoder(source)));
  return d;
}

/** Per row: partition, sequence, and where its bytes end (RowBinary) or 0. */
const META = 3;

/**
 * A MasterBatch. RowBinary until a row does not fit its column's type (events written under an
 * older catalog): the batch then turns into row objects, decoded from its bytes, so the whole
 * batch goes in as JSONEachRow and ClickHouse converts or refuses the value, as it did before
 * RowBinary.
 */
class GatheredRows implements MasterBatch {
  private meta = new Float64Array(META * 256);
  private n = 0;
  /** null: row objects in `objects`. */
  private encoded: RowBinaryAppender | null;
  private objects: MasterRow[] = [];

  constructor(
    readonly source: SourceDef,
    binary: boolean,
  ) {
    this.encoded = binary ? rowBinaryAppender(source) : null;
  }

  get length(): number {
    return this.n;
  }

  /** The RowBinary bytes of every row, or null while the batch holds row objects. */
  bytes(): Buffer | null {
    return this.encoded ? this.encoded.bytes() : null;
  }

  toRows(): readonly MasterRow[] {
    return this.encoded ? decoderOf(this.source)(this.encoded.bytes()) : this.objects;
  }

  private note(partition: number, seq: number): void {
    if (this.meta.length < (this.n + 1) * META) {
      const next = new Float64Array(this.meta.length * 2);
      next.set(this.meta);
      this.meta = next;
    }
    const k = this.n++ * META;
    this.meta[k] = partition;
    this.meta[k + 1] = seq;
    this.meta[k + 2] = this.encoded ? this.encoded.byteLength : 0;
  }

  push(row: MasterRow): void {
    if (this.encoded) {
      try {
        this.encoded.append(row);
      } catch (err) {
        if (!(err instanceof RowEncodingError)) throw err;
        this.objects = [...this.toRows()];
        this.encoded = null;
      }
    }
    if (!this.encoded) this.objects.push(row);
    this.note(row.partition, row.seq);
  }

  partitionAt(i: number): number {
    return this.meta[i * META]!;
  }
  seqAt(i: number): number {
    return this.meta[i * META + 1]!;
  }
  private startOf(i: number): number {
    return i === 0 ? 0 : this.meta[(i - 1) * META + 2]!;
  }

  rowAt(i: number): MasterRow {
    if (!this.encoded) return this.objects[i]!;
    return decoderOf(this.source)(this.encoded.bytes().subarray(this.startOf(i), this.meta[i * META + 2]))[0]!;
  }

  /** A new batch of rows `indices` (ascending) of this one. */
  private pick(indices: readonly number[]): GatheredRows {
    const out = new GatheredRows(this.source, this.encoded !== null);
    const bytes = this.encoded?.bytes();
    for (const i of indices) {
      if (bytes) out.encoded!.appendEncoded(bytes.subarray(this.startOf(i), this.meta[i * META + 2]));
      else out.objects.push(this.objects[i]!);
      out.note(this.partitionAt(i), this.seqAt(i));
    }
    return out;
  }

  slice(start: number, end = this.n): MasterBatch {
    const from = Math.max(0, start);
    const to = Math.min(this.n, end);
    return this.pick(Array.from({ length: Math.max(0, to - from) }, (_, k) => from + k));
  }

  filter(keep: (partition: number, seq: number) => boolean): MasterBatch {
    const kept: number[] = [];
    for (let i = 0; i < this.n; i++) if (keep(this.partitionAt(i), this.seqAt(i))) kept.push(i);
    return kept.length === this.n ? this : this.pick(kept);
  }

  withSource(next: SourceDef): MasterBatch {
    if (next === this.source) return this;
    const out = new GatheredRows(next, this.encoded !== null);
    for (const row of this.toRows()) out.push(row);
    return out;
  }
}

/** An empty batch of `source`'s rows in the form `format` sends. */
export function masterBatch(format: MasterInsertFormat, source: SourceDef): MasterBatch {
  return new GatheredRows(source, format === MasterInsertFormats.rowBinary);
}

/** The rows of `rows` as objects (a batch's decoded from its bytes). */
export const masterRowsOf = (rows: MasterRows): readonly MasterRow[] => (rows instanceof GatheredRows ? rows.toRows() : (rows as readonly MasterRow[]));

/** JSONEachRow objects through @clickhouse/client: works with any ClickHouse server. */
export function jsonMasterInserter(client: ClickHouseClient): MasterInserter {
  return {
    format: MasterInsertFormats.jsonEachRow,
    async insert(db, source, rows) {
      if (rows.length === 0) return;
      const values = masterRowsOf(rows).map((r) => ({ _partition: r.partition, _seq: r.seq, _id: r.id, ...r.fields }));
      await client.insert({ table: masterTable(db, source.name), values, format: "JSONEachRow" });
    },
  };
}

/**
 * RowBinary through a file that chDB reads in the same process. `dir` holds
 * the files while their INSERT runs; it is emptied now (files a crashed
 * process left) and each file is removed once its INSERT is done.
 */
export function chdbFileMasterInserter(client: ClickHouseClient, dir: string): MasterInserter {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const encoders = new WeakMap<SourceDef, { encode: RowBinaryEncoder; structure: string; columns: string }>();
  const json = jsonMasterInserter(client);
  let files = 0;
  return {
    format: MasterInsertFormats.rowBinary,
    async insert(db, source, rows) {
      if (rows.length === 0) return;
      let enc = encoders.get(source);
      if (!enc) {
        // Columns named: a column added later (a new optional field) sits last in the table, wherever the catalog lists it.
        const columns = ["_partition", "_seq", "_id", ...Object.keys(source.fields)].map(ident).join(", ");
        encoders.set(source, (enc = { encode: rowBinaryEncoder(source), structure: masterStructure(source), columns }));
      }
      let bytes: Buffer;
      if (rows instanceof GatheredRows) {
        // Gathered as RowBinary, it goes as it is; a batch that turned into row objects holds a value that does not fit.
        const gathered = rows.bytes();
        if (!gathered) return json.insert(db, source, rows);
        bytes = gathered;
      } else {
        try {
          bytes = enc.encode(masterRowsOf(rows));
        } catch (err) {
          if (!(err instanceof RowEncodingError)) throw err;
          // A value its column's type does not describe (events written under an older catalog):
          // ClickHouse's JSON parser converts or refuses it, as it did before RowBinary.
          return json.insert(db, source, rows);
        }
      }
      const path = join(dir, `${source.name}-${++files}.bin`);
      await writeFile(path, bytes);
      try {
        // One insert thread: the blocks land in file order, so rows that land before a failure
        // are a prefix of each partition's rows, which the archiver's retry relies on.
        // The path (from LAMBDA_CHDB_PATH) and the structure travel as parameters: values never become SQL text.
        await client.command({
          query: `INSERT INTO ${masterTable(db, source.name)} (${enc.columns}) SELECT * FROM file({path:String}, RowBinary, {structure:String}) SETTINGS max_insert_threads = 1`,
          query_params: { path, structure: enc.structure },
        });
      } finally {
        await unlink(path).catch(() => undefined); // best effort: the directory is emptied at the next open
      }
    },
  };
}
