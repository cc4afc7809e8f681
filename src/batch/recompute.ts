/**
 * A batch recompute: every metric from scratch over the master dataset, up to a
 * cut, into batch views versioned by the run number. Per source, the first
 * copies of the ids with several rows below the cut are materialised once;
 * every metric of the source aggregates from them and the master rows of the
 * other ids (src/batch/sql.ts). Older view versions are kept for readers still
 * answering at them, and dropped past a limit.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { Catalog } from "../core/catalog.js";
import { queryRows } from "../ch/client.js";
import { dropTableSql, SINGLE_LAYOUT, type ChLayout } from "../ch/layout.js";
import { ident, repeatedTable, viewTable } from "../ch/schema.js";
import { markViewVersion } from "../ch/views.js";
import { belowCutStatsSql, checkCuts, coverageSql, recomputeMetricSql, repeatedFirstCopiesSql, repeatedIdsSql, type RecomputeParams } from "./sql.js";

export interface RecomputeResult {
  /** Distinct events below the cut, over every source. */
  readonly eventsCovered: number;
  readonly coveredFromMs: number | null;
  readonly coveredToMs: number | null;
  /** Step → ms spent: `first_<source>` (deduplication below the cut and its coverage), then each metric name. */
  readonly stepMs: Readonly<Record<string, number>>;
}

export interface RecomputeRequest {
  readonly run: number;
  /** cuts[p]: barrier sequence of partition p; integers in 0..2^53-1. */
  readonly cuts: readonly number[];
  /** Called after each step (`first_<source>`, then each of its metrics), for progress. */
  readonly onStep?: (step: string, done: number, total: number) => void;
}

/**
 * Drops a run's partition. In a cluster too without ON CLUSTER: the tables are replicated, so
 * Keeper carries the drop to every replica (alter_sync 2 waits for them, ch/layout.ts), and ON
 * CLUSTER would only repeat it once per shard.
 */
const dropPartition = (client: ClickHouseClient, table: string, run: number) =>
  client.command({ query: `ALTER TABLE ${table} DROP PARTITION ${Number(run)}` });

/**
 * Which tables of `db` already hold a partition of run `run` (an earlier attempt of the run),
 * as `db`.`table`; null when that cannot be known from here, and every table must be dropped
 * from. On one server, one look at system.parts: a first attempt finds none, and skips a `DROP
 * PARTITION` per view table and repeated table. In a cluster a replica's system.parts may not
 * list yet a part another replica wrote.
 */
async function tablesWithRun(client: ClickHouseClient, db: string, run: number, layout: ChLayout): Promise<ReadonlySet<string> | null> {
  if (layout.kind !== "single") return null;
  const rows = await queryRows<{ table: string }>(client, "SELECT DISTINCT table FROM system.parts WHERE database = {db:String} AND active AND partition = {run:String}", {
    db,
    run: String(run),
  });
  return new Set(rows.map((r) => `${ident(db)}.${ident(r.table)}`));
}

type BelowCut = { source: number | string; rows: number | string; from_ms: number | string; to_ms: number | string };
type Coverage = { events: number | string; from_ms: number | string; to_ms: number | string };

/**
 * Recomputes every metric of `catalog` below `req.cuts` into view version `req.run`.
 * Rerunning a run replaces its views, never doubles them. `layout` says where the tables live
 * (one server or a cluster, ch/layout.ts); the SQL differs only where the master is sharded.
 * @throws RangeError when a cut is not an integer in 0..2^53-1
 */
export async function recomputeViews(client: ClickHouseClient, catalog: Catalog, db: string, req: RecomputeRequest, layout: ChLayout = SINGLE_LAYOUT): Promise<RecomputeResult> {
  const params: RecomputeParams = { run: req.run };
  const { cuts } = req;
  checkCuts(cuts);
  const stepMs: Record<string, number> = {};
  const total = catalog.sources.size + catalog.metrics.size;
  let done = 0;
  let eventsCovered = 0;
  let from: number | null = null;
  let to: number | null = null;
  let t0 = performance.now();
  const sources = [...catalog.sources.values()];
  // What lies below the cut, every source in one query; a source with no row there (say, one
  // just added to the catalog) needs no deduplication and no metric query.
  const below = new Map((await queryRows<BelowCut>(client, belowCutStatsSql(db, sources, cuts))).map((r) => [Number(r.source), r]));
  // A retried run must not add a second copy of its rows: drop what an earlier attempt wrote.
  const written = await tablesWithRun(client, db, req.run, layout);
  const dropStale = async (table: string) => {
    if (written === null || written.has(table)) await dropPartition(client, table, req.run);
  };
  for (const [i, source] of sources.entries()) {
    const repeated = repeatedTable(db, source.name);
    await dropStale(repeated);
    const stats = below.get(i);
    let n = 0;
    let repeatedIds = 0;
    if (Number(stats?.rows ?? 0) > 0) {
      await client.command({ query: repeatedFirstCopiesSql(db, source, cuts, layout), query_params: { ...params } });
      const [ids] = await queryRows<{ ids: number | string }>(client, repeatedIdsSql(db, source), { ...params });
      repeatedIds = Number(ids?.ids ?? 0);
      // No id with two rows below the cut: every row there is a first copy, and the counts above are the coverage.
      const [cov] = repeatedIds === 0 ? [{ events: stats!.rows, from_ms: stats!.from_ms, to_ms: stats!.to_ms }] : await queryRows<Coverage>(client, coverageSql(db, source, cuts, layout), { ...params });
      n = Number(cov?.events ?? 0);
      if (n > 0) {
        eventsCovered += n;
        from = Math.min(from ?? Infinity, Number(cov!.from_ms));
        to = Math.max(to ?? -Infinity, Number(cov!.to_ms));
      }
    }
    stepMs[`first_${source.name}`] = performance.now() - t0;
    req.onStep?.(`first_${source.name}`, ++done, total);
    for (const metric of catalog.metrics.values()) {
      if (metric.source !== source.name) continue;
      const m0 = performance.now();
      await dropStale(viewTable(db, metric));
      if (n > 0) {
        // The version's rows and its marker (ch/views.ts), in one INSERT.
        const metricParams: Record<string, unknown> = {};
        const sql = recomputeMetricSql(db, metric, source, cuts, metricParams, layout);
        await client.command({ query: sql, query_params: { ...params, ...metricParams } });
      } else {
        // No event of the source below the cut: the version is empty, no query needed. It is
        // marked all the same: serving tells it from a version this ClickHouse lacks.
        await markViewVersion(client, db, metric, req.run);
      }
      stepMs[metric.name] = performance.now() - m0;
      req.onStep?.(metric.name, ++done, total);
    }
    // Only repeated ids wrote rows to the run's partition of repeated_<source>.
    if (repeatedIds > 0) await dropPartition(client, repeated, req.run);
    t0 = performance.now();
  }
  return { eventsCovered, coveredFromMs: from, coveredToMs: to, stepMs };
}

/**
 * Drops view versions older than `keepFrom` from every view table of the database, whichever
 * definition it holds: a redefined or removed metric's old table too. A table left empty whose
 * definition the catalog no longer has is dropped (no kept run can answer with it); in a
 * cluster on every node (`layout`).
 */
export async function dropViewsBefore(client: ClickHouseClient, catalog: Catalog, db: string, keepFrom: number, layout: ChLayout = SINGLE_LAYOUT): Promise<void> {
  if (keepFrom <= 1) return;
  const current = new Set([...catalog.metrics.values()].map((m) => viewTable(db, m)));
  const tables = await queryRows<{ name: string }>(client, `SELECT name FROM system.tables WHERE database = {db:String} AND startsWith(name, 'view_')`, { db });
  for (const { name } of tables) {
    const table = `${ident(db)}.${ident(name)}`;
    const rows = await queryRows<{ run: number | string }>(client, `SELECT DISTINCT run FROM ${table} WHERE run < {keep:UInt64}`, { keep: keepFrom });
    for (const r of rows) await dropPartition(client, table, Number(r.run));
    if (current.has(table)) continue;
    const [left] = await queryRows<{ n: number | string }>(client, `SELECT count() AS n FROM ${table}`);
    if (Number(left?.n ?? 0) === 0) await client.command({ query: dropTableSql(layout, table) });
  }
}
