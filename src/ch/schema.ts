/**
 * Table names and DDL: the master dataset (one table per source, every event
 * ever archived, never modified) and the batch views (one table per metric,
 * one ClickHouse partition per batch run so old versions drop cheaply).
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { Catalog, FieldDef, FieldType, MetricDef, SourceDef } from "../core/catalog.js";
import { metricFingerprint } from "../core/catalog.js";
import type { Logger } from "../core/logger.js";
import { waitFor } from "../core/wait.js";
import { queryRows } from "./client.js";
import { distributedEngine, dropTableSql, mergeTreeEngine, onCluster, shardedMaster, shardTableName, SINGLE_LAYOUT, type ChLayout } from "./layout.js";
import { stateColumns, stateColumnTypes } from "./view_columns.js";

const CH_TYPES: Record<FieldType, string> = {
  string: "String",
  int: "Int64",
  float: "Float64",
  bool: "Bool",
  timestamp: "DateTime64(3, 'UTC')",
};

/**
 * Quotes an identifier. Catalog names reach here only after core/catalog_parse held them to
 * NAME_PATTERN (ASCII lower_snake_case) and the database name to LAMBDA_DATABASE's
 * `[A-Za-z0-9_-]`; the quoting (a backtick doubled) keeps even a name that slipped past
 * those an identifier, never SQL.
 */
export const ident = (name: string) => `\`${name.replace(/`/g, "``")}\``;

const masterName = (source: string) => `master_${source}`;
const repeatedName = (source: string) => `repeated_${source}`;
export const masterTable = (db: string, source: string) => `${ident(db)}.${ident(masterName(source))}`;
/**
 * A metric's batch views live in a table named after the metric and its
 * definition: a changed definition gets a table of its own, and the table of
 * the old definition stays for readers at older watermarks.
 */
export const viewTable = (db: string, metric: MetricDef) => `${ident(db)}.${ident(viewTableName(metric))}`;
/** The unquoted name of {@link viewTable} (as system.tables lists it). */
export const viewTableName = (metric: MetricDef) => `view_${metric.name}_${metricFingerprint(metric)}`;
/**
 * The oldest batch view version still kept once run `lastRun` has finished: batch runs drop
 * the versions before it (LAMBDA_VIEW_VERSIONS_KEPT), rollback and diff refuse them.
 */
export const oldestKeptView = (lastRun: number, kept: number) => Math.max(1, lastRun - kept + 1);

/**
 * The first copy of every event id that has more than one row below a run's cut (copies of the
 * event, or the same row archived twice), with the (partition, sequence) of each of those rows in
 * `_rows`; one partition per run, dropped after the run. Ids with one row below the cut are read
 * from the master table as they are (src/batch/sql.ts).
 */
export const repeatedTable = (db: string, source: string) => `${ident(db)}.${ident(repeatedName(source))}`;

/** The ClickHouse type of a catalog field's column. */
export const columnType = (f: FieldDef) => (f.optional ? `Nullable(${CH_TYPES[f.type]})` : CH_TYPES[f.type]);

/**
 * DDL of a source's master table: one MergeTree table on one server; in a cluster a replicated
 * table on every node, or, sharded, a per-shard table and the Distributed table over it (two
 * statements, the per-shard one first). See ch/layout.ts.
 */
export function masterTableDdl(db: string, source: SourceDef, layout: ChLayout = SINGLE_LAYOUT): string[] {
  const cols = [
    "`_partition` UInt16",
    "`_seq` UInt64",
    "`_id` String",
    ...Object.entries(source.fields).map(([f, t]) => `${ident(f)} ${columnType(t)}`),
  ].join(", ");
  const name = masterName(source.name);
  if (!shardedMaster(layout)) {
    return [`CREATE TABLE IF NOT EXISTS ${masterTable(db, source.name)}${onCluster(layout)} (${cols}) ENGINE = ${mergeTreeEngine(layout, db, name, "whole")} ORDER BY (_partition, _seq)`];
  }
  const local = shardTableName(name);
  return [
    `CREATE TABLE IF NOT EXISTS ${ident(db)}.${ident(local)}${onCluster(layout)} (${cols}) ENGINE = ${mergeTreeEngine(layout, db, local, "shard")} ORDER BY (_partition, _seq)`,
    `CREATE TABLE IF NOT EXISTS ${masterTable(db, source.name)}${onCluster(layout)} (${cols}) ENGINE = ${distributedEngine(layout, db, local)}`,
  ];
}

/** See {@link repeatedTable}. In a cluster every node holds it whole: the batch executor's next query may reach another node. */
export function repeatedTableDdl(db: string, source: SourceDef, layout: ChLayout = SINGLE_LAYOUT): string {
  const cols = ["`_run` UInt64", "`_id` String", "`_rows` Array(Tuple(UInt16, UInt64))", ...Object.entries(source.fields).map(([f, t]) => `${ident(f)} ${columnType(t)}`)];
  return `CREATE TABLE IF NOT EXISTS ${repeatedTable(db, source.name)}${onCluster(layout)} (${cols.join(", ")}) ENGINE = ${mergeTreeEngine(layout, db, repeatedName(source.name), "whole")} PARTITION BY _run ORDER BY tuple()`;
}

/** DDL of a metric's view table. In a cluster every node holds it whole, so serving reads a view version on any node. */
export function viewTableDdl(db: string, metric: MetricDef, layout: ChLayout = SINGLE_LAYOUT): string {
  const states = metric.aggregates.flatMap((a) => {
    const types = stateColumnTypes(a);
    return stateColumns(a).map((c, i) => `${ident(c)} ${types[i]}`);
  });
  return (
    `CREATE TABLE IF NOT EXISTS ${viewTable(db, metric)}${onCluster(layout)} ` +
    `(\`run\` UInt64, \`key\` String, \`window_start\` DateTime64(3, 'UTC'), \`n\` UInt64${states.map((c) => `, ${c}`).join("")}) ` +
    `ENGINE = ${mergeTreeEngine(layout, db, viewTableName(metric), "whole")} PARTITION BY run ORDER BY (run, key, window_start)`
  );
}

/** `ALTER TABLE … ADD COLUMN` of `fields` (optional fields added to the catalog) to `db`.`table`, on every node in a cluster. */
export function addColumnsDdl(db: string, table: string, fields: readonly (readonly [string, FieldDef])[], layout: ChLayout = SINGLE_LAYOUT): string {
  const adds = fields.map(([f, t]) => `ADD COLUMN IF NOT EXISTS ${ident(f)} ${columnType(t)}`);
  return `ALTER TABLE ${ident(db)}.${ident(table)}${onCluster(layout)} ${adds.join(", ")}`;
}

/**
 * The statements {@link ensureSchema} runs, in order, before it adds missing columns: the
 * database, then per source its master table(s), its repeated table and the drop of an earlier
 * build's scratch table, then every metric's view table. Pure; the golden tests read it.
 */
export function schemaDdl(db: string, catalog: Catalog, layout: ChLayout = SINGLE_LAYOUT): string[] {
  const out = [`CREATE DATABASE IF NOT EXISTS ${ident(db)}${onCluster(layout)}`];
  for (const s of catalog.sources.values()) {
    out.push(...masterTableDdl(db, s, layout), repeatedTableDdl(db, s, layout));
    // Scratch table of earlier builds (first copies per run, now repeated_<source>): nothing reads it.
    out.push(dropTableSql(layout, `${ident(db)}.${ident(`first_${s.name}`)}`));
  }
  for (const m of catalog.metrics.values()) out.push(viewTableDdl(db, m, layout));
  return out;
}

/**
 * Adds the columns a table lacks: optional fields added to the catalog after the table was
 * created (core/catalog_compat allows no other source change). Older rows read null.
 */
async function addMissingColumns(client: ClickHouseClient, db: string, table: string, source: SourceDef, layout: ChLayout): Promise<void> {
  const rows = await client.query({ query: "SELECT name FROM system.columns WHERE database = {db:String} AND table = {table:String}", query_params: { db, table }, format: "JSONEachRow" });
  const have = new Set((await rows.json<{ name: string }>()).map((r) => r.name));
  const missing = Object.entries(source.fields).filter(([f]) => !have.has(f));
  if (missing.length === 0) return;
  await client.command({ query: addColumnsDdl(db, table, missing, layout) });
}

/**
 * Creates the database, every master table and every view table, and adds columns of new
 * optional fields; in a cluster, on every node (`layout`, see ch/layout.ts). Idempotent.
 */
export async function ensureSchema(client: ClickHouseClient, db: string, catalog: Catalog, layout: ChLayout = SINGLE_LAYOUT): Promise<void> {
  for (const query of schemaDdl(db, catalog, layout)) await client.command({ query });
  for (const s of catalog.sources.values()) {
    // The per-shard table first: the Distributed table over it may name a column only once the shards have it.
    if (shardedMaster(layout)) await addMissingColumns(client, db, shardTableName(masterName(s.name)), s, layout);
    await addMissingColumns(client, db, masterName(s.name), s, layout);
    await addMissingColumns(client, db, repeatedName(s.name), s, layout);
  }
}

/**
 * The tables the serving role reads that `db` lacks: the master table of every source (verify,
 * run diffs) and the view table of every metric's definition, each as `db`.`table`.
 */
export async function missingServingTables(client: ClickHouseClient, db: string, catalog: Catalog): Promise<string[]> {
  const have = new Set((await queryRows<{ name: string }>(client, "SELECT name FROM system.tables WHERE database = {db:String}", { db })).map((r) => r.name));
  const needed = [...[...catalog.sources.values()].map((s) => masterName(s.name)), ...[...catalog.metrics.values()].map(viewTableName)];
  return needed.filter((t) => !have.has(t)).map((t) => `${ident(db)}.${ident(t)}`);
}

/** The schema a read-only process needs did not appear in time (or could not be checked). */
export class SchemaMissingError extends Error {
  override readonly name = "SchemaMissingError";
  constructor(
    readonly database: string,
    /** The tables still missing at the deadline, `db`.`table`; empty when the check itself kept failing (see `cause`). */
    readonly missing: readonly string[],
    readonly waitedMs: number,
    options?: { cause?: unknown },
  ) {
    super(
      (missing.length > 0
        ? `ClickHouse database ${ident(database)} still lacks ${missing.join(", ")} after ${waitedMs} ms (LAMBDA_CLICKHOUSE_SCHEMA_WAIT_MS)`
        : `the ClickHouse schema of database ${ident(database)} could not be checked within ${waitedMs} ms (LAMBDA_CLICKHOUSE_SCHEMA_WAIT_MS)`) +
        ": a process that only reads ClickHouse (serving) never creates tables; start an archiver and a batch executor against the same ClickHouse and LAMBDA_DATABASE (they create them)",
      options,
    );
  }
}

/** Options of {@link awaitServingSchema}. */
export interface AwaitSchemaOptions {
  /** How long to wait for the writers to create the tables, in ms (LAMBDA_CLICKHOUSE_SCHEMA_WAIT_MS). */
  readonly timeoutMs: number;
  /** Poll period, in ms. @default 500 */
  readonly intervalMs?: number;
  readonly log: Logger;
}

/**
 * Waits until `db` holds every table the serving role reads ({@link missingServingTables}),
 * creating nothing: what a process without archiver or batch executor does instead of
 * ensureSchema, so that it works with a read-only ClickHouse user.
 * @throws SchemaMissingError naming the missing tables at the deadline
 */
export async function awaitServingSchema(client: ClickHouseClient, db: string, catalog: Catalog, opts: AwaitSchemaOptions): Promise<void> {
  let missing: string[] = [];
  let told = false;
  try {
    await waitFor(
      `the tables serving reads in ClickHouse database ${db}`,
      async () => {
        missing = []; // a failed check leaves none named: the error (the cause at the deadline) says why
        missing = await missingServingTables(client, db, catalog);
        if (missing.length > 0 && !told) {
          told = true;
          opts.log.info("waiting for the archiver or batch executor to create the tables serving reads", { component: "clickhouse", database: db, missing, timeout_ms: opts.timeoutMs });
        }
        return missing.length === 0;
      },
      { timeoutMs: opts.timeoutMs, intervalMs: opts.intervalMs ?? 500 },
    );
  } catch (err) {
    throw new SchemaMissingError(db, missing, opts.timeoutMs, { cause: err });
  }
}
