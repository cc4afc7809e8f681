/**
 * Where the tables live: one ClickHouse (a server or embedded chDB), or a ClickHouse cluster as
 * operators deploy it (remote_servers with `{shard}`/`{replica}` macros and Keeper). Pure: the
 * DDL and SQL generators take a layout and return text; nothing here talks to ClickHouse.
 *
 * In a cluster every CREATE, DROP TABLE and ALTER … ADD COLUMN runs `ON CLUSTER`, and every
 * table is a ReplicatedMergeTree. Two placements:
 * - whole: a table every node of the cluster holds in full; its Keeper path has no `{shard}`, so
 *   all nodes are replicas of one table. The batch views and `repeated_<source>` always, and the
 *   master dataset when it is not sharded.
 * - sharded (LAMBDA_CLICKHOUSE_SHARDED): the master dataset only, as `master_<source>_shard`
 *   (replicated within its shard, Keeper path with `{shard}`) under a Distributed table with the
 *   master's own name, sharded by stream partition. By partition, not by event id: the
 *   archiver's retry after a failed insert relies on the rows that landed being a prefix of each
 *   partition's rows (src/batch/archiver.ts); a whole partition on one shard keeps that true when
 *   one shard takes its part of an insert and another does not.
 *
 * What keeps answers exact with replicas is in {@link writerSettings} and {@link readerSettings}
 * (and docs/deploy.md, "ClickHouse cluster").
 */
import type { ClickHouseSettings } from "@clickhouse/client";
import type { ResolvedConfig } from "../core/config.js";

/** The cluster settings of the config (LAMBDA_CLICKHOUSE_CLUSTER and its companions). */
export interface ClusterLayout {
  readonly kind: "cluster";
  /** The cluster's name in the servers' remote_servers (LAMBDA_CLICKHOUSE_CLUSTER). */
  readonly cluster: string;
  /** Whether the master dataset is sharded under a Distributed table (LAMBDA_CLICKHOUSE_SHARDED). */
  readonly sharded: boolean;
  /** Keeper path prefix of the replicated tables, no trailing `/` (LAMBDA_CLICKHOUSE_KEEPER_PATH). */
  readonly keeperPath: string;
}

/** One ClickHouse server, or embedded chDB: the DDL of before clusters, byte for byte. */
export interface SingleLayout {
  readonly kind: "single";
}

export type ChLayout = SingleLayout | ClusterLayout;

export const SINGLE_LAYOUT: SingleLayout = { kind: "single" };

/** The layout the config's three settings describe; an empty cluster name is one server. */
export function layoutOf(cfg: Pick<ResolvedConfig, "clickhouseCluster" | "clickhouseSharded" | "clickhouseKeeperPath">): ChLayout {
  if (cfg.clickhouseCluster === "") return SINGLE_LAYOUT;
  return { kind: "cluster", cluster: cfg.clickhouseCluster, sharded: cfg.clickhouseSharded, keeperPath: cfg.clickhouseKeeperPath };
}

/** A string literal of SQL; the values come from validated config (core/config), the escaping keeps any value a literal. */
const literal = (s: string) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
const quote = (name: string) => `\`${name.replace(/`/g, "``")}\``;

/** ` ON CLUSTER `name`` in a cluster, "" on one server. */
export const onCluster = (layout: ChLayout) => (layout.kind === "cluster" ? ` ON CLUSTER ${quote(layout.cluster)}` : "");

/** Whether the master dataset is a Distributed table over per-shard tables. */
export const shardedMaster = (layout: ChLayout): layout is ClusterLayout => layout.kind === "cluster" && layout.sharded;

/** The name of the per-shard table under a sharded master's Distributed table. */
export const shardTableName = (table: string) => `${table}_shard`;

/**
 * The ENGINE of a MergeTree table: `MergeTree` on one server; in a cluster a ReplicatedMergeTree
 * with its Keeper path (the database and table named in it, `{shard}` for a per-shard table) and
 * `{replica}`, the macros every node of an operator's cluster defines.
 */
export function mergeTreeEngine(layout: ChLayout, db: string, table: string, placement: "whole" | "shard"): string {
  if (layout.kind === "single") return "MergeTree";
  const path = `${layout.keeperPath}${placement === "shard" ? "/{shard}" : ""}/${db}/${table}`;
  return `ReplicatedMergeTree(${literal(path)}, '{replica}')`;
}

/** The ENGINE of the Distributed table over the per-shard `local` tables of `db`, sharded by stream partition. */
export function distributedEngine(layout: ClusterLayout, db: string, local: string): string {
  return `Distributed(${literal(layout.cluster)}, ${literal(db)}, ${literal(local)}, _partition)`;
}

/**
 * "GLOBAL " before `IN`/`NOT IN` whose outer query reads the sharded master, else "". GLOBAL runs
 * the subquery once, on the initiator, and sends its result to every shard: a plain IN there is
 * refused (distributed_product_mode 'deny') or would run per shard against that shard's rows only.
 */
export const globalIn = (layout: ChLayout) => (shardedMaster(layout) ? "GLOBAL " : "");

/** `DROP TABLE IF EXISTS t` on one server; in a cluster on every node, and `SYNC`, so a table of the same name made later finds its Keeper path free. */
export const dropTableSql = (layout: ChLayout, table: string) => `DROP TABLE IF EXISTS ${table}${onCluster(layout)}${layout.kind === "cluster" ? " SYNC" : ""}`;

/**
 * Settings of every statement a writing process (archiver, batch executor) sends to a cluster;
 * none on one server. Each is what keeps a batch run and serving exact with replicas:
 * - insert_quorum 'auto' + insert_quorum_parallel 0: an INSERT returns once a majority of the
 *   table's replicas hold it, and quorum inserts are linearised, so
 * - select_sequential_consistency 1: a read on a replica that lacks an acknowledged insert
 *   fails instead of answering without it (a batch run fails and runs again; it never misses a
 *   row the archiver recorded below a cut). The archiver's and the executor's reads carry it.
 * - insert_distributed_sync 1 (distributed_foreground_insert since 23.x; the old name stays an
 *   alias): an INSERT into the sharded master returns once every shard has its rows (with the
 *   quorum above), not when they are queued on the initiator's disk.
 * - insert_deduplicate 0: a retried batch run drops its version and inserts the same rows
 *   again; Keeper's block hashes would drop them as duplicates of the first attempt and leave
 *   the version empty. The archiver needs no block dedup: its re-inserts are rows the table
 *   lacked, and a row archived twice counts once in a batch run (src/batch/sql.ts).
 * - alter_sync 2: DROP PARTITION (a retried run, old versions) returns once every replica
 *   dropped it, not only the one asked.
 */
export function writerSettings(layout: ChLayout): ClickHouseSettings {
  if (layout.kind === "single") return {};
  return {
    insert_quorum: "auto",
    insert_quorum_parallel: 0,
    select_sequential_consistency: "1",
    insert_deduplicate: 0,
    alter_sync: "2",
    ...(layout.sharded ? { insert_distributed_sync: 1 } : {}),
  };
}

/** Settings of the serving role's reads in a cluster (see read_only.ts): a replica without the view version's last insert refuses rather than answer short. */
export function readerSettings(layout: ChLayout): ClickHouseSettings {
  return layout.kind === "single" ? {} : { select_sequential_consistency: "1" };
}
