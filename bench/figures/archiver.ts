/**
 * Archiver throughput: rows/s from a stream that already holds N events into
 * the master table, by the product's archiver (ordered consumers per
 * partition, exactly-once bookkeeping, JSONEachRow inserts through
 * @clickhouse/client into chDB), from its start until it reports every row
 * inserted. Baselines: the same rows inserted into the same table shape in
 * 50k-row batches through the same client, (a) as JSONEachRow, the
 * archiver's format, and (b) as RowBinary written by Node and read with
 * `INSERT … SELECT FROM file()`, the fastest raw path.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ClickHouseClient } from "@clickhouse/client";
import { jetstreamManager } from "@nats-io/jetstream";
import { ARCHIVER_FLUSH_INTERVAL_MS, ARCHIVER_FLUSH_ROWS, DEFAULT_PARTITIONS, DUPLICATE_WINDOW_MS } from "../../src/core/config.js";
import { validateEvent } from "../../src/core/events.js";
import { createJsonLogger } from "../../src/core/logger.js";
import { createArchiver } from "../../src/batch/index.js";
import { openClickHouse } from "../../src/ch/client.js";
import { ensureSchema, masterTable } from "../../src/ch/schema.js";
import { connectNats } from "../../src/nats/connect.js";
import { namesFor } from "../../src/nats/names.js";
import { ensureStreams } from "../../src/nats/setup.js";
import type { BenchContext } from "../context.js";
import { Better, row, type Figure, type FigureResult } from "../figure.js";
import { publishCore } from "../raw_nats.js";
import { encodeRowBinary, masterStructure, type MasterRow } from "../rowbinary.js";
import { waitFor } from "../wait.js";
import { makeEvents, SOURCE, toStreamEvents } from "../workload.js";

/** Rows per insert of the baselines. */
export const BASELINE_BATCH_ROWS = 50_000;

async function countRows(ch: ClickHouseClient, table: string): Promise<number> {
  const rs = await ch.query({ query: `SELECT count() AS n FROM ${table}`, format: "JSONEachRow" });
  return Number((await rs.json<{ n: string | number }>())[0]?.n);
}

/** The archiver figure (see the module header). */
export const archiverFigure: Figure = {
  name: "archiver",
  summary: "rows/s from stream to master table by the archiver, vs chDB inserts of the same rows in 50k batches",
  async run(ctx: BenchContext): Promise<FigureResult> {
    const n = ctx.opts.sizes.events;
    const partitions = DEFAULT_PARTITIONS;
    const catalog = ctx.env.catalog;
    const source = catalog.sources.get(SOURCE)!;
    const prefix = ctx.env.prefix("ar");
    const names = namesFor(prefix);
    const log = createJsonLogger("error", { node: prefix });
    const nc = await connectNats(ctx.env.natsUrl, "bench archiver");
    const ch = await openClickHouse({ url: "", username: "default", password: "", chdbPath: ctx.env.chdbPath });
    let pass = 0;
    try {
      ctx.progress(`archiver: filling a stream with ${n} events`);
      await ensureStreams(nc, names, { duplicateWindowMs: DUPLICATE_WINDOW_MS });
      const raws = makeEvents(n, { idPrefix: "ar", seed: 21 });
      await publishCore(nc, toStreamEvents(catalog, names, partitions, raws));
      // The same rows as the archiver builds them (sequence numbers aside).
      const rows: MasterRow[] = raws.map((raw, i) => {
        const e = validateEvent(catalog, SOURCE, raw);
        return { _partition: i % partitions, _seq: i + 1, _id: e.id, ...e.fields };
      });

      const freshTable = async () => {
        const db = `${prefix}d${pass++}`;
        await ensureSchema(ch.client, db, catalog);
        return { db, table: masterTable(db, SOURCE) };
      };
      const product = async () => {
        const { db, table } = await freshTable();
        const t0 = performance.now();
        const archiver = await createArchiver(
          { nc, ch: ch.client, catalog, names, log },
          { nodeId: "bench-archiver", heartbeatIntervalMs: 1_000, partitions, database: db, flushIntervalMs: ARCHIVER_FLUSH_INTERVAL_MS, flushRows: ARCHIVER_FLUSH_ROWS },
        );
        try {
          await waitFor("the archiver to insert every row", () => archiver.stats().rowsArchived >= n, { timeoutMs: 300_000, intervalMs: 5 });
        } finally {
          await archiver.close();
        }
        const ms = performance.now() - t0;
        const stored = await countRows(ch.client, table);
        if (stored !== n) throw new Error(`archiver stored ${stored} of ${n} rows`);
        return n / (ms / 1000);
      };
      const jsonEachRow = async () => {
        const { table } = await freshTable();
        const t0 = performance.now();
        for (let i = 0; i < n; i += BASELINE_BATCH_ROWS) await ch.client.insert({ table, values: rows.slice(i, i + BASELINE_BATCH_ROWS), format: "JSONEachRow" });
        const ms = performance.now() - t0;
        if ((await countRows(ch.client, table)) !== n) throw new Error("JSONEachRow baseline lost rows");
        return n / (ms / 1000);
      };
      const rowBinary = async () => {
        const { table } = await freshTable();
        const file = join(ctx.env.tmpDir, "rows.bin");
        const t0 = performance.now();
        for (let i = 0; i < n; i += BASELINE_BATCH_ROWS) {
          writeFileSync(file, encodeRowBinary(source, rows.slice(i, i + BASELINE_BATCH_ROWS)));
          await ch.client.command({ query: `INSERT INTO ${table} SELECT * FROM file('${file}', RowBinary, '${masterStructure(source).replace(/'/g, "\\'")}')` });
        }
        const ms = performance.now() - t0;
        if ((await countRows(ch.client, table)) !== n) throw new Error("RowBinary baseline lost rows");
        return n / (ms / 1000);
      };

      ctx.progress("archiver: warm-up");
      await product();
      await jsonEachRow();
      await rowBinary();
      const results = { product: [] as number[], jsonEachRow: [] as number[], rowBinary: [] as number[] };
      for (let r = 0; r < ctx.opts.reps; r++) {
        ctx.progress(`archiver: repetition ${r + 1}/${ctx.opts.reps}, ${n} rows per path`);
        results.product.push(await product());
        results.jsonEachRow.push(await jsonEachRow());
        results.rowBinary.push(await rowBinary());
      }
      const base = { figure: "archiver", label: "stream → master table", unit: "rows/s", better: Better.higher, product: results.product };
      return {
        name: "archiver",
        rows: [
          row({ ...base, baseline: { label: "chDB insert, JSONEachRow, 50k batches", samples: results.jsonEachRow } }),
          row({ ...base, baseline: { label: "chDB insert, RowBinary via file(), 50k batches", samples: results.rowBinary } }),
        ],
        details: { rows: n, partitions, flushRows: ARCHIVER_FLUSH_ROWS, flushIntervalMs: ARCHIVER_FLUSH_INTERVAL_MS, results },
        notes: [
          `archiver: ${n} events already in the stream; timed from createArchiver() until stats().rowsArchived reached ${n} (polled every 5 ms), default flush settings (${ARCHIVER_FLUSH_ROWS} rows / ${ARCHIVER_FLUSH_INTERVAL_MS} ms); ` +
            "baselines insert the same pre-built rows (no stream) into a fresh master table through the same client.",
        ],
      };
    } finally {
      const jsm = await jetstreamManager(nc);
      for (const s of [names.eventStream, names.deadLetterStream]) await jsm.streams.delete(s).catch(() => undefined); // best effort
      for (let i = 0; i < pass; i++) await ch.client.command({ query: `DROP DATABASE IF EXISTS \`${prefix}d${i}\`` }).catch(() => undefined); // best effort: frees disk
      await ch.close();
      await nc.close();
    }
  },
};
