/**
 * Appending rows to the master dataset, in the cheapest format the engine
 * takes:
 *
 * - chDB: RowBinary written by Node to a file, read back by one
 *   `INSERT … SELECT * FROM file(path, RowBinary, structure)`. The chDB
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
import { masterStructure, rowBinaryEncoder, RowEncodingError, type MasterRow, type RowBinaryEncoder } from "./row_binary.js";
import { ident, masterTable } from "./schema.js";

export type { MasterRow } from "./row_binary.js";

/** Formats a master insert can travel in. */
export const MasterInsertFormats = { rowBinary: "RowBinary", jsonEachRow: "JSONEachRow" } as const;
export type MasterInsertFormat = (typeof MasterInsertFormats)[keyof typeof MasterInsertFormats];

/** Appends rows to a source's master table; one call is one INSERT. */
export interface MasterInserter {
  readonly format: MasterInsertFormat;
  /**
   * Inserts `rows` into `db`'s master table of `source`.
   * @throws the client's error (ClickHouse refused the rows, or could not be reached).
   */
  insert(db: string, source: SourceDef, rows: readonly MasterRow[]): Promise<void>;
}

/** JSONEachRow objects through @clickhouse/client: works with any ClickHouse server. */
export function jsonMasterInserter(client: ClickHouseClient): MasterInserter {
  return {
    format: MasterInsertFormats.jsonEachRow,
    async insert(db, source, rows) {
      if (rows.length === 0) return;
      const values = rows.map((r) => ({ _partition: r.partition, _seq: r.seq, _id: r.id, ...r.fields }));
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
      try {
        bytes = enc.encode(rows);
      } catch (err) {
        if (!(err instanceof RowEncodingError)) throw err;
        // A value its column's type does not describe (events written under an older catalog):
        // ClickHouse's JSON parser converts or refuses it, as it did before RowBinary.
        return json.insert(db, source, rows);
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
