/**
 * A master dataset of millions of events, made where it is read: rows are
 * generated inside chDB (INSERT … SELECT FROM numbers()) straight into the
 * product's master table, because streaming them through NATS first would
 * measure ingest again. So that they lie below the cut, the stream's first
 * sequence is moved past them before any role binds to the stream; a batch
 * run of the product (`coordinator.runNow()`, the archiver flushing through
 * the barriers) then covers exactly them. Also the baselines' one-query
 * answers over the same rows.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import { jetstreamManager } from "@nats-io/jetstream";
import { DUPLICATE_WINDOW_MS } from "../src/core/config.js";
import type { Catalog, SourceDef } from "../src/core/catalog.js";
import { validateEvent } from "../src/core/events.js";
import type { Watermark } from "../src/core/watermark.js";
import { openClickHouse } from "../src/ch/client.js";
import { ident, masterTable } from "../src/ch/schema.js";
import type { Coordinator } from "../src/coordinator/index.js";
import { connectNats } from "../src/nats/connect.js";
import { namesFor } from "../src/nats/names.js";
import { ensureStreams } from "../src/nats/setup.js";
import type { BenchCluster } from "./cluster.js";
import { makeEvents, METRIC, SOURCE } from "./workload.js";

const DAY_MS = 86_400_000;

/** Distinct events sampled from the synthetic generator; generated rows cycle through them. */
export const SAMPLE_EVENTS = 10_000;

/**
 * Creates the streams of `prefix` and moves their first sequence past `rows`,
 * so that generated master rows with sequences 1..rows lie below any cut.
 * Call before the cluster's roles start.
 */
export async function reserveSequences(natsUrl: string, prefix: string, rows: number): Promise<void> {
  const names = namesFor(prefix);
  const setup = await connectNats(natsUrl, "bench master rows setup");
  try {
    await ensureStreams(setup, names, { duplicateWindowMs: DUPLICATE_WINDOW_MS });
    await (await jetstreamManager(setup)).streams.purge(names.eventStream, { seq: rows + 1 });
  } finally {
    await setup.close();
  }
}

/**
 * Fills a table shaped like the master table with events from the synthetic
 * generator (the distributions `npm start` feeds), keyed 0..SAMPLE_EVENTS-1 in `_seq`.
 */
export async function createSample(ch: ClickHouseClient, catalog: Catalog, db: string): Promise<string> {
  const table = `${ident(db)}.${ident("bench_sample")}`;
  await ch.command({ query: `CREATE TABLE ${table} AS ${masterTable(db, SOURCE)} ENGINE = Memory` });
  const rows = makeEvents(SAMPLE_EVENTS, { idPrefix: "s", seed: 31 }).map((raw, i) => {
    const e = validateEvent(catalog, SOURCE, raw);
    return { _partition: 0, _seq: i, _id: e.id, ...e.fields };
  });
  await ch.insert({ table, values: rows, format: "JSONEachRow" });
  return table;
}

/** Where generated rows go and what they hold. */
export interface MasterRows {
  readonly ch: ClickHouseClient;
  readonly source: SourceDef;
  /** The master table. */
  readonly table: string;
  /** The sample table from createSample(). */
  readonly sample: string;
  readonly partitions: number;
  /** Event times are spread over the day before this. */
  readonly baseMs: number;
  /**
   * SQL per field over `number` (the row's 0-based index) instead of the sample's
   * value, e.g. a key of its own; the id and event time are generated unless named here.
   */
  readonly fields?: Readonly<Record<string, string>>;
}

/**
 * Appends `count` master rows: sequence numbers start+1.., distinct ids, event
 * times spread over the day before baseMs, every other field from the sample
 * (or as `fields` says).
 */
export async function insertMasterRows(m: MasterRows, start: number, count: number): Promise<void> {
  const { source } = m;
  const fields = Object.keys(source.fields);
  const id = "concat('b-', toString(number))";
  const expr = (f: string) => {
    const given = m.fields?.[f];
    if (given !== undefined) return given;
    if (f === source.idField) return source.fields[f]!.type === "string" ? id : "toInt64(number)";
    if (f === source.timeField) return `fromUnixTimestamp64Milli(toInt64({base:Int64} - cityHash64(number, 2) % ${DAY_MS}), 'UTC')`;
    return `s.${ident(f)}`;
  };
  await m.ch.command({
    query:
      `INSERT INTO ${m.table} (_partition, _seq, _id, ${fields.map(ident).join(", ")}) ` +
      `SELECT number % {p:UInt16}, number + 1, ${id}, ${fields.map(expr).join(", ")} ` +
      `FROM (SELECT number, number % ${SAMPLE_EVENTS} AS k FROM numbers({start:UInt64}, {count:UInt64})) AS n ` +
      `INNER JOIN ${m.sample} AS s ON n.k = s._seq`,
    query_params: { p: m.partitions, base: m.baseMs, start, count },
  });
}

/**
 * Where a cluster's generated rows go (its master table of the bench's source,
 * with a fresh sample), and the exact baseline query of the bench's metric over them.
 */
export async function prepareMasterRows(cluster: BenchCluster, opts: Pick<MasterRows, "fields"> & { baseMs?: number } = {}): Promise<{ master: MasterRows; exact: string }> {
  const ch = cluster.roles.ch!.client;
  const source = cluster.catalog.sources.get(SOURCE)!;
  const metric = cluster.catalog.metrics.get(METRIC)!;
  const table = masterTable(cluster.cfg.database, SOURCE);
  const sample = await createSample(ch, cluster.catalog, cluster.cfg.database);
  const master: MasterRows = { ch, source, table, sample, partitions: cluster.cfg.partitions, baseMs: opts.baseMs ?? Date.now(), ...(opts.fields ? { fields: opts.fields } : {}) };
  return { master, exact: exactSql(table, metric.groupBy[0]!, source.timeField, metric.windowMs) };
}

/** One metric's answer as one query: the first copy of each id below the cut, counted per key and window. */
export function exactSql(table: string, key: string, time: string, windowMs: number): string {
  return (
    `SELECT count() AS groups, sum(c) AS events FROM (SELECT k, w, count() AS c FROM (` +
    `SELECT argMin(${ident(key)}, _seq) AS k, intDiv(toUnixTimestamp64Milli(argMin(${ident(time)}, _seq)), ${windowMs}) AS w ` +
    `FROM ${table} WHERE _seq < {cuts:Array(UInt64)}[_partition + 1] GROUP BY _id) GROUP BY k, w)`
  );
}

/** The plain GROUP BY key, window: no cut, no dedup by id. */
export function plainSql(table: string, key: string, time: string, windowMs: number): string {
  return `SELECT count() AS groups, sum(c) AS events FROM (SELECT ${ident(key)} AS k, intDiv(toUnixTimestamp64Milli(${ident(time)}), ${windowMs}) AS w, count() AS c FROM ${table} GROUP BY k, w)`;
}

/**
 * Runs a baseline query and returns its wall time in ms.
 * @throws Error when it did not count `expected` events.
 */
export async function timedQuery(ch: ClickHouseClient, sql: string, params: Record<string, unknown>, expected: number): Promise<number> {
  const t0 = performance.now();
  const rs = await ch.query({ query: sql, query_params: params, format: "JSONEachRow" });
  const [r] = await rs.json<{ events: string | number }>();
  const ms = performance.now() - t0;
  if (Number(r?.events) !== expected) throw new Error(`baseline query counted ${r?.events} events, expected ${expected}`);
  return ms;
}

/** One batch run of the product, timed. */
export interface ProductRun {
  /** ms from runNow() until the watermark was published. */
  readonly publishedMs: number;
  /** ms until runNow() resolved (also drops old view versions). */
  readonly totalMs: number;
  readonly timings: Watermark["timings"];
  /** ms of each recompute step as the executor reported them (`first_<source>`, then each metric), in order. */
  readonly stepMs: Readonly<Record<string, number>>;
}

/**
 * One `coordinator.runNow()`, timed to its published watermark.
 * @throws Error when the run did not cover exactly `expected` events.
 */
export async function timedBatchRun(coordinator: Coordinator, expected: number): Promise<ProductRun & { watermark: Watermark }> {
  let published = 0;
  const stepMs: Record<string, number> = {};
  // A step is reported when it ends: its time runs from the report before it (or the recompute's start).
  let stepStart = 0;
  const t0 = performance.now();
  const w = await coordinator.runNow((phase, detail) => {
    const now = performance.now();
    if (phase === "recompute" && typeof detail.step === "string") {
      stepMs[detail.step] = now - stepStart;
      stepStart = now;
    } else if (phase === "recompute") stepStart = now;
    if (phase === "done") published = now;
  });
  const totalMs = performance.now() - t0;
  if (w.eventsCovered !== expected) throw new Error(`batch run ${w.run} covered ${w.eventsCovered} events, expected ${expected}`);
  return { publishedMs: published - t0, totalMs, timings: w.timings, stepMs, watermark: w };
}

/**
 * Drops a figure's database once its cluster has closed (a serving node still
 * running would log the missing views), so that millions of generated rows do
 * not stay on disk and in chDB's caches for the figures after it.
 */
export async function dropDatabase(chdbPath: string, database: string): Promise<void> {
  const ch = await openClickHouse({ url: "", username: "default", password: "", chdbPath });
  try {
    await ch.client.command({ query: `DROP DATABASE IF EXISTS ${ident(database)} SYNC` });
  } finally {
    await ch.close();
  }
}
