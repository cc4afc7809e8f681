#!/usr/bin/env node
/**
 * Prints the master dataset's rows of one source as JSON lines {p, seq, id}, read from a chDB
 * directory no other process holds any more (its "main" stopped). A child process of the fault
 * matrix: chDB opens one directory per process, and the matrix runs many clusters.
 *
 *   node dist/faults/master_rows.js CHDB_PATH DATABASE SOURCE
 */
import { openClickHouse, queryRows } from "../src/ch/client.js";
import { masterTable } from "../src/ch/schema.js";

async function main() {
  const [path, database, source] = process.argv.slice(2);
  if (!path || !database || !source) throw new Error("usage: master_rows CHDB_PATH DATABASE SOURCE");
  const ch = await openClickHouse({ url: "", username: "default", password: "", chdbPath: path });
  try {
    const rows = await queryRows<{ p: number; seq: string | number; id: string }>(ch.client, `SELECT _partition AS p, _seq AS seq, _id AS id FROM ${masterTable(database, source)} ORDER BY p, seq`);
    for (const r of rows) process.stdout.write(`${JSON.stringify({ p: r.p, seq: Number(r.seq), id: r.id })}\n`);
  } finally {
    await ch.close();
  }
}

main().catch((err) => {
  process.stderr.write(`master_rows: ${(err as Error).stack ?? err}\n`);
  process.exit(2);
});
