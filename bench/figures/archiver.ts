/**
 * Archiver throughput: rows/s from a stream that already holds N events into
 * the master table, by the product's archiver (ordered consumers per
 * partition, exactly-once bookkeeping, JSONEachRow inserts through
 * @clickhouse/client into chDB), from its start until it reports every row
 * inserted. Baselines: the same rows inserted into the same table shape in
 * 50k-row batches through the same client, (a) as JSONEachRow, the
 * archiver's format until 2026-11, and (b) as RowBinary written by Node and
 * read with `INSERT … SELECT FROM file()`, the fastest raw path (the
 * archiver's format on chDB since). (c) Reading the same stream without
 * inserting: ordered consumers per partition with the archiver's pull
 * settings, msgpack decode, nothing else; the archiver cannot beat it.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ClickHouseClient } from "@clickhouse/client";
import { jetstream, jetstreamManager, type ConsumerMessages } from "@nats-io/jetstream";
import { ARCHIVER_FLUSH_INTERVAL_MS, ARCHIVER_FLUSH_ROWS, DEFAULT_PARTITIONS, DUPLICATE_WINDOW_MS } from "../../src/core/config.js";
import { validateEvent } from "../../src/core/events.js";
import { createJsonLogger } from "../../src/core/logger.js";
import { createArchiver } from "../../src/batch/index.js";
import { ARCHIVER_PULL_MESSAGES } from "../../src/batch/archive_writer.js";
import { openClickHouse } from "../../src/ch/client.js";
import { masterStructure, rowBinaryEncoder, type MasterRow } from "../../src/ch/row_binary.js";
import { ensureSchema, masterTable } from "../../src/ch/schema.js";
import { connectNats } from "../../src/nats/connect.js";
import { decodeRecord } from "../../src/nats/codec.js";
import { namesFor } from "../../src/nats/names.js";
import { ensureStreams } from "../../src/nats/setup.js";
import type { BenchContext } from "../context.js";
import { Better, row, type Figure, type FigureResult } from "../figure.js";
import { publishCore } from "../raw_nats.js";
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
        return { partition: i % partitions, seq: i + 1, id: e.id, fields: e.fields };
      });
      const jsonRows = rows.map((r) => ({ _partition: r.partition, _seq: r.seq, _id: r.id, ...r.fields }));
      const encodeRowBinary = rowBinaryEncoder(source);

      const freshTable = async () => {
        const db = `${prefix}d${pass++}`;
        await ensureSchema(ch.client, db, catalog);
        return { db, table: masterTable(db, SOURCE) };
      };
      const product = async () => {
        const { db, table } = await freshTable();
        const t0 = performance.now();
        const archiver = await createArchiver(
          { nc, ch, catalog, names, log },
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
        for (let i = 0; i < n; i += BASELINE_BATCH_ROWS) await ch.client.insert({ table, values: jsonRows.slice(i, i + BASELINE_BATCH_ROWS), format: "JSONEachRow" });
        const ms = performance.now() - t0;
        if ((await countRows(ch.client, table)) !== n) throw new Error("JSONEachRow baseline lost rows");
        return n / (ms / 1000);
      };
      const rowBinary = async () => {
        const { table } = await freshTable();
        const file = join(ctx.env.tmpDir, "rows.bin");
        const t0 = performance.now();
        for (let i = 0; i < n; i += BASELINE_BATCH_ROWS) {
          writeFileSync(file, encodeRowBinary(rows.slice(i, i + BASELINE_BATCH_ROWS)));
          await ch.client.command({ query: `INSERT INTO ${table} SELECT * FROM file('${file}', RowBinary, '${masterStructure(source).replace(/'/g, "\\'")}')` });
        }
        const ms = performance.now() - t0;
        if ((await countRows(ch.client, table)) !== n) throw new Error("RowBinary baseline lost rows");
        return n / (ms / 1000);
      };

      const readOnly = async () => {
        const js = jetstream(nc);
        let seen = 0;
        let done!: () => void;
        const all = new Promise<void>((r) => (done = r));
        const consumers: ConsumerMessages[] = [];
        const t0 = performance.now();
        try {
          for (let p = 0; p < partitions; p++) {
            const c = await js.consumers.get(names.eventStream, { filter_subjects: names.eventSubject(p) });
            const messages = await c.consume({ max_messages: ARCHIVER_PULL_MESSAGES, threshold_messages: ARCHIVER_PULL_MESSAGES / 2 });
            consumers.push(messages);
            void (async () => {
              for await (const m of messages) if (decodeRecord(m.data) && m.seq > 0 && ++seen === n) done();
            })();
          }
          await all;
          return n / ((performance.now() - t0) / 1000);
        } finally {
          await Promise.all(consumers.map((c) => c.close().catch(() => undefined))); // best effort: ephemeral consumers
        }
      };

      ctx.progress("archiver: warm-up");
      await product();
      await jsonEachRow();
      await rowBinary();
      await readOnly();
      const results = { product: [] as number[], jsonEachRow: [] as number[], rowBinary: [] as number[], readOnly: [] as number[] };
      for (let r = 0; r < ctx.opts.reps; r++) {
        ctx.progress(`archiver: repetition ${r + 1}/${ctx.opts.reps}, ${n} rows per path`);
        results.product.push(await product());
        results.jsonEachRow.push(await jsonEachRow());
        results.rowBinary.push(await rowBinary());
        results.readOnly.push(await readOnly());
      }
      const base = { figure: "archiver", label: "stream → master table", unit: "rows/s", better: Better.higher, product: results.product };
      return {
        name: "archiver",
        rows: [
          row({ ...base, baseline: { label: "chDB insert, JSONEachRow, 50k batches", samples: results.jsonEachRow } }),
          row({ ...base, baseline: { label: "chDB insert, RowBinary via file(), 50k batches", samples: results.rowBinary } }),
          row({ ...base, baseline: { label: "reading the stream only (ordered consumers, decode, no insert)", samples: results.readOnly }, goal: { kind: "ratio_at_least", value: 0.95 } }), // issue #15
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
