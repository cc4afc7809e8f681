/**
 * A batch recompute: every metric from scratch over the master dataset, up to a
 * cut, into batch views versioned by the run number. Older versions are kept
 * (for readers still answering at them) and dropped past a limit.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { Catalog } from "../core/catalog.js";
import { queryRows } from "../ch/client.js";
import { viewTable } from "../ch/schema.js";
import { coverageSql, recomputeMetricSql } from "./sql.js";

export interface RecomputeResult {
  /** Distinct events below the cut, over every source. */
  readonly eventsCovered: number;
  readonly coveredFromMs: number | null;
  readonly coveredToMs: number | null;
  /** Metric name → ms spent. */
  readonly metricMs: Readonly<Record<string, number>>;
}

export interface RecomputeRequest {
  readonly run: number;
  /** cuts[p]: barrier sequence of partition p. */
  readonly cuts: readonly number[];
  /** Called after each metric, for progress. */
  readonly onMetric?: (metric: string, done: number, total: number) => void;
}

export async function recomputeViews(client: ClickHouseClient, catalog: Catalog, db: string, req: RecomputeRequest): Promise<RecomputeResult> {
  const params = { run: req.run, cuts: [...req.cuts] };
  const metricMs: Record<string, number> = {};
  const metrics = [...catalog.metrics.values()];
  let done = 0;
  for (const m of metrics) {
    const t0 = performance.now();
    // A retried run must not add a second copy of its rows.
    await client.command({ query: `ALTER TABLE ${viewTable(db, m.name)} DROP PARTITION ${Number(req.run)}` });
    await client.command({ query: recomputeMetricSql(db, m, catalog.sources.get(m.source)!), query_params: params });
    metricMs[m.name] = performance.now() - t0;
    req.onMetric?.(m.name, ++done, metrics.length);
  }
  let eventsCovered = 0;
  let from: number | null = null;
  let to: number | null = null;
  for (const s of catalog.sources.values()) {
    const [row] = await queryRows<{ events: number | string; from_ms: number | string; to_ms: number | string }>(client, coverageSql(db, s), params);
    const n = Number(row?.events ?? 0);
    if (n === 0) continue;
    eventsCovered += n;
    from = Math.min(from ?? Infinity, Number(row!.from_ms));
    to = Math.max(to ?? -Infinity, Number(row!.to_ms));
  }
  return { eventsCovered, coveredFromMs: from, coveredToMs: to, metricMs };
}

/** Drops view versions older than `keepFrom` (exclusive lower bound kept). */
export async function dropViewsBefore(client: ClickHouseClient, catalog: Catalog, db: string, keepFrom: number): Promise<void> {
  if (keepFrom <= 1) return;
  for (const m of catalog.metrics.values()) {
    const rows = await queryRows<{ run: number | string }>(client, `SELECT DISTINCT run FROM ${viewTable(db, m.name)} WHERE run < {keep:UInt64}`, { keep: keepFrom });
    for (const r of rows) await client.command({ query: `ALTER TABLE ${viewTable(db, m.name)} DROP PARTITION ${Number(r.run)}` });
  }
}
