/**
 * Table names and DDL: the master dataset (one table per source, every event
 * ever archived, never modified) and the batch views (one table per metric,
 * one ClickHouse partition per batch run so old versions drop cheaply).
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { Catalog, FieldType, MetricDef, SourceDef } from "../core/catalog.js";

const CH_TYPES: Record<FieldType, string> = {
  string: "String",
  int: "Int64",
  float: "Float64",
  bool: "Bool",
  timestamp: "DateTime64(3, 'UTC')",
};

/** Quotes an identifier; catalog names are already restricted to [a-z0-9_]. */
export const ident = (name: string) => `\`${name.replace(/`/g, "``")}\``;

export const masterTable = (db: string, source: string) => `${ident(db)}.${ident(`master_${source}`)}`;
export const viewTable = (db: string, metric: string) => `${ident(db)}.${ident(`view_${metric}`)}`;

/** System columns of a master table; schema fields cannot start with "_". */
export const MASTER_SYSTEM_COLUMNS = ["_partition", "_seq", "_id"] as const;

export function masterTableDdl(db: string, source: SourceDef): string {
  const cols = [
    "`_partition` UInt16",
    "`_seq` UInt64",
    "`_id` String",
    ...Object.entries(source.fields).map(([f, t]) => `${ident(f)} ${CH_TYPES[t]}`),
  ];
  return `CREATE TABLE IF NOT EXISTS ${masterTable(db, source.name)} (${cols.join(", ")}) ENGINE = MergeTree ORDER BY (_partition, _seq)`;
}

export function viewTableDdl(db: string, metric: MetricDef): string {
  return (
    `CREATE TABLE IF NOT EXISTS ${viewTable(db, metric.name)} ` +
    "(`run` UInt64, `key` String, `window_start` DateTime64(3, 'UTC'), `value` UInt64) " +
    "ENGINE = MergeTree PARTITION BY run ORDER BY (run, key, window_start)"
  );
}

/** Creates the database, every master table and every view table. Idempotent. */
export async function ensureSchema(client: ClickHouseClient, db: string, catalog: Catalog): Promise<void> {
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${ident(db)}` });
  for (const s of catalog.sources.values()) await client.command({ query: masterTableDdl(db, s) });
  for (const m of catalog.metrics.values()) await client.command({ query: viewTableDdl(db, m) });
}
