/**
 * Batch run: a full run of the product (barriers written, archiver flushed
 * through them, recompute of every metric below the cut, watermark published)
 * over a master dataset of 1M and 5M events, vs the single chDB query that
 * computes the same answer.
 *
 * The master rows are generated inside chDB (INSERT … SELECT FROM numbers())
 * straight into the product's master table: streaming millions of events
 * through NATS first would measure ingest again. So that they lie below the
 * cut, the stream's first sequence is moved past them before the roles start.
 * The run itself is the product's: `coordinator.runNow()` with the archiver
 * running and flushing through the barriers.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import { jetstreamManager } from "@nats-io/jetstream";
import { DUPLICATE_WINDOW_MS } from "../../src/core/config.js";
import type { Catalog, SourceDef } from "../../src/core/catalog.js";
import { validateEvent } from "../../src/core/events.js";
import { ident, masterTable } from "../../src/ch/schema.js";
import { connectNats } from "../../src/nats/connect.js";
import { namesFor } from "../../src/nats/names.js";
import { ensureStreams } from "../../src/nats/setup.js";
import type { Watermark } from "../../src/core/watermark.js";
import { startBenchCluster } from "../cluster.js";
import { compact } from "../format.js";
import { Better, row, type Figure, type FigureResult, type Row } from "../figure.js";
import { median } from "../stats.js";
import { makeEvents, METRIC, SOURCE } from "../workload.js";

const DAY_MS = 86_400_000;

interface ProductRun {
  /** ms from runNow() until the watermark was published. */
  readonly publishedMs: number;
  /** ms until runNow() resolved (also drops old view versions). */
  readonly totalMs: number;
  readonly timings: Watermark["timings"];
}

/** Distinct events sampled from the synthetic generator; generated rows cycle through them. */
const SAMPLE_EVENTS = 10_000;

/**
 * Fills a table shaped like the master table with events from the synthetic
 * generator (the distributions `npm start` feeds), keyed 0..SAMPLE_EVENTS-1 in `_seq`.
 */
async function createSample(ch: ClickHouseClient, catalog: Catalog, db: string): Promise<string> {
  const table = `${ident(db)}.${ident("bench_sample")}`;
  await ch.command({ query: `CREATE TABLE ${table} AS ${masterTable(db, SOURCE)} ENGINE = Memory` });
  const rows = makeEvents(SAMPLE_EVENTS, { idPrefix: "s", seed: 31 }).map((raw, i) => {
    const e = validateEvent(catalog, SOURCE, raw);
    return { _partition: 0, _seq: i, _id: e.id, ...e.fields };
  });
  await ch.insert({ table, values: rows, format: "JSONEachRow" });
  return table;
}

/**
 * Appends `count` master rows: sequence numbers start+1.., distinct ids, event
 * times spread over the last day, every other field from the sample.
 */
async function insertMasterRows(ch: ClickHouseClient, source: SourceDef, table: string, sample: string, partitions: number, start: number, count: number, baseMs: number) {
  const fields = Object.keys(source.fields);
  const id = "concat('b-', toString(number))";
  const expr = (f: string) => {
    if (f === source.idField) return source.fields[f]!.type === "string" ? id : "toInt64(number)";
    if (f === source.timeField) return `fromUnixTimestamp64Milli(toInt64({base:Int64} - cityHash64(number, 2) % ${DAY_MS}), 'UTC')`;
    return `s.${ident(f)}`;
  };
  await ch.command({
    query:
      `INSERT INTO ${table} (_partition, _seq, _id, ${fields.map(ident).join(", ")}) ` +
      `SELECT number % {p:UInt16}, number + 1, ${id}, ${fields.map(expr).join(", ")} ` +
      `FROM (SELECT number, number % ${SAMPLE_EVENTS} AS k FROM numbers({start:UInt64}, {count:UInt64})) AS n ` +
      `INNER JOIN ${sample} AS s ON n.k = s._seq`,
    query_params: { p: partitions, base: baseMs, start, count },
  });
}

/** One metric's answer as one query: the first copy of each id below the cut, counted per key and window. */
function exactSql(table: string, key: string, time: string, windowMs: number): string {
  return (
    `SELECT count() AS groups, sum(c) AS events FROM (SELECT k, w, count() AS c FROM (` +
    `SELECT argMin(${ident(key)}, _seq) AS k, intDiv(toUnixTimestamp64Milli(argMin(${ident(time)}, _seq)), ${windowMs}) AS w ` +
    `FROM ${table} WHERE _seq < {cuts:Array(UInt64)}[_partition + 1] GROUP BY _id) GROUP BY k, w)`
  );
}

/** The plain GROUP BY key, window: no cut, no dedup by id. */
function plainSql(table: string, key: string, time: string, windowMs: number): string {
  return `SELECT count() AS groups, sum(c) AS events FROM (SELECT ${ident(key)} AS k, intDiv(toUnixTimestamp64Milli(${ident(time)}), ${windowMs}) AS w, count() AS c FROM ${table} GROUP BY k, w)`;
}

async function timedQuery(ch: ClickHouseClient, sql: string, params: Record<string, unknown>, expected: number): Promise<number> {
  const t0 = performance.now();
  const rs = await ch.query({ query: sql, query_params: params, format: "JSONEachRow" });
  const [r] = await rs.json<{ events: string | number }>();
  const ms = performance.now() - t0;
  if (Number(r?.events) !== expected) throw new Error(`baseline query counted ${r?.events} events, expected ${expected}`);
  return ms;
}

/** The batch figure (see the module header). */
export const batchFigure: Figure = {
  name: "batch",
  summary: "a full batch run (barrier, archiver flush, recompute, watermark) over 1M and 5M events, vs the single chDB GROUP BY",
  async run(ctx): Promise<FigureResult> {
    const sizes = ctx.opts.sizes.batchSizes;
    const prefix = ctx.env.prefix("bt");
    const names = namesFor(prefix);
    // Move the stream's first sequence past every generated row, before any role binds to the stream.
    const setup = await connectNats(ctx.env.natsUrl, "bench batch setup");
    try {
      await ensureStreams(setup, names, { duplicateWindowMs: DUPLICATE_WINDOW_MS });
      await (await jetstreamManager(setup)).streams.purge(names.eventStream, { seq: sizes[sizes.length - 1]! + 1 });
    } finally {
      await setup.close();
    }
    const cluster = await startBenchCluster(ctx.env, { roles: ["archiver", "coordinator", "executor"], speedNodes: 0, prefix });
    try {
      const ch = cluster.roles.ch!.client;
      const coordinator = cluster.roles.coordinator!;
      const catalog = ctx.env.catalog;
      const source = catalog.sources.get(SOURCE)!;
      const metric = catalog.metrics.get(METRIC)!;
      const table = masterTable(cluster.cfg.database, SOURCE);
      const sample = await createSample(ch, catalog, cluster.cfg.database);
      const exact = exactSql(table, metric.groupBy[0]!, source.timeField, metric.windowMs);
      const plain = plainSql(table, metric.groupBy[0]!, source.timeField, metric.windowMs);
      const baseMs = Date.now();
      const rows: Row[] = [];
      const details: Record<string, unknown> = {};
      const notes: string[] = [];
      let inserted = 0;
      for (const n of sizes) {
        ctx.progress(`batch: generating ${n - inserted} master rows in chDB (total ${n})`);
        await insertMasterRows(ch, source, table, sample, cluster.cfg.partitions, inserted, n - inserted, baseMs);
        inserted = n;
        const runOnce = async (): Promise<ProductRun & { watermark: Watermark }> => {
          let published = 0;
          const t0 = performance.now();
          const w = await coordinator.runNow((phase) => {
            if (phase === "done") published = performance.now();
          });
          const totalMs = performance.now() - t0;
          if (w.eventsCovered !== n) throw new Error(`batch run ${w.run} covered ${w.eventsCovered} events, expected ${n}`);
          return { publishedMs: published - t0, totalMs, timings: w.timings, watermark: w };
        };
        // One warm-up round, on the first (smallest) size: it warms code paths and caches for the later sizes,
        // whose runs are long enough that a second warm-up would only add minutes.
        if (n === sizes[0]) {
          ctx.progress(`batch: ${compact(n)} events, warm-up`);
          const { watermark } = await runOnce();
          await timedQuery(ch, exact, { cuts: [...watermark.cuts] }, n);
          await timedQuery(ch, plain, {}, n);
        }
        const product: ProductRun[] = [];
        const exactMs: number[] = [];
        const plainMs: number[] = [];
        for (let r = 0; r < ctx.opts.reps; r++) {
          ctx.progress(`batch: ${compact(n)} events, repetition ${r + 1}/${ctx.opts.reps}`);
          const { watermark, ...p } = await runOnce();
          product.push(p);
          // The baseline reads below the same cut as the run it is compared with.
          exactMs.push(await timedQuery(ch, exact, { cuts: [...watermark.cuts] }, n));
          plainMs.push(await timedQuery(ch, plain, {}, n));
        }
        const perS = (ms: number) => n / (ms / 1000);
        const base = { figure: "batch", label: `run over ${compact(n)} events`, unit: "events/s", better: Better.higher, product: product.map((p) => perS(p.publishedMs)) };
        rows.push(row({ ...base, baseline: { label: "one chDB query: dedup by id below the cut, GROUP BY key, window", samples: exactMs.map(perS) }, goal: { kind: "ratio_at_least", value: 0.7 } })); // issue #15, at every size
        rows.push(row({ ...base, baseline: { label: "one chDB query: plain GROUP BY key, window (no dedup)", samples: plainMs.map(perS) } }));
        const med = (f: (p: ProductRun) => number) => Math.round(median(product.map(f)));
        details[String(n)] = { product, exactMs, plainMs };
        notes.push(
          `batch ${compact(n)}: run ${(med((p) => p.publishedMs) / 1000).toFixed(2)} s to the watermark (barrier ${med((p) => p.timings.barrierMs)} ms, archiver flush ${med((p) => p.timings.archiverFlushMs)} ms, ` +
            `recompute ${med((p) => p.timings.recomputeMs)} ms), ${(med((p) => p.totalMs) / 1000).toFixed(2)} s with old view versions dropped; ` +
            `one exact query ${(median(exactMs) / 1000).toFixed(2)} s, plain GROUP BY ${(median(plainMs) / 1000).toFixed(2)} s.`,
        );
      }
      const perSource = [...catalog.metrics.values()].filter((m) => m.source === SOURCE).length;
      notes.push(
        `batch: master rows generated in chDB below the cut (distinct ids, event times over one day, other fields cycling through ${SAMPLE_EVENTS} synthetic page views); ` +
          `the run is coordinator.runNow() with the archiver flushing through the barriers, and recomputes the whole shipped catalog (${catalog.metrics.size} metrics, ${perSource} of them over ${SOURCE}); ` +
          `the baselines compute one metric (${METRIC}) in one query.`,
      );
      return { name: "batch", rows, details, notes };
    } finally {
      await cluster.close();
    }
  },
};
