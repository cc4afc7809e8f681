/**
 * Batch-run history for operators: the run records, the difference between
 * two runs (what lies between their cuts, what changed between their views).
 */
import type { ClickHouseClient } from "@clickhouse/client";
import { encodeState } from "../core/aggregate.js";
import type { Catalog } from "../core/catalog.js";
import { InvalidQueryError, PreconditionError } from "../core/errors.js";
import type { RunRecord } from "../core/records.js";
import { queryRows } from "../ch/client.js";
import { masterTable, oldestKeptView } from "../ch/schema.js";
import { readBatchStates } from "../ch/views.js";
import { lastRunNumber, readRun, runsBetween, type RunHistoryBuckets } from "../nats/run_history.js";

/** Runs listed when a request leaves the limit at 0. */
export const DEFAULT_RUN_LIMIT = 20;

/** A run record that published a watermark. @throws InvalidQueryError naming the run */
export async function publishedRun(buckets: RunHistoryBuckets, run: number, field: string): Promise<RunRecord & { watermark: NonNullable<RunRecord["watermark"]> }> {
  const last = await lastRunNumber(buckets);
  if (!Number.isSafeInteger(run) || run < 1) throw new InvalidQueryError(field, `runs start at 1, got ${run}`);
  if (run > last) throw new InvalidQueryError(field, `run ${run} does not exist yet; the last run is ${last}`);
  const rec = await readRun(buckets, run);
  if (!rec) throw new InvalidQueryError(field, `run ${run} is not in the history`);
  if (!rec.watermark) throw new InvalidQueryError(field, `run ${run} did not publish a watermark (outcome ${rec.outcome})`);
  return rec as RunRecord & { watermark: NonNullable<RunRecord["watermark"]> };
}

export interface PartitionDiff {
  readonly partition: number;
  readonly fromCut: number;
  readonly toCut: number;
  readonly positions: number;
  readonly events: number;
}

export interface MetricDiff {
  readonly metric: string;
  readonly keysChanged: number;
  readonly windowsChanged: number;
}

export interface RunsDiff {
  readonly partitions: readonly PartitionDiff[];
  readonly metrics: readonly MetricDiff[];
}

export interface DiffDeps {
  readonly ch: ClickHouseClient;
  readonly database: string;
  readonly catalog: Catalog;
  readonly buckets: RunHistoryBuckets;
  readonly viewVersionsKept: number;
}

export async function diffRuns(deps: DiffDeps, fromRun: number, toRun: number): Promise<RunsDiff> {
  if (fromRun >= toRun) throw new InvalidQueryError("to_run", `must be after from_run (${fromRun} → ${toRun})`);
  const a = await publishedRun(deps.buckets, fromRun, "from_run");
  const b = await publishedRun(deps.buckets, toRun, "to_run");
  const last = await lastRunNumber(deps.buckets);
  const oldest = oldestKeptView(last, deps.viewVersionsKept);
  if (fromRun < oldest) {
    throw new PreconditionError(`batch view ${fromRun} is gone: only the last ${deps.viewVersionsKept} versions are kept (LAMBDA_VIEW_VERSIONS_KEPT); the oldest is ${oldest}`);
  }
  // Barriers of the runs in between also take a position in each partition.
  const between = await runsBetween(deps.buckets, fromRun + 1, toRun - 1);
  const partitions: PartitionDiff[] = [];
  for (let p = 0; p < a.watermark.cuts.length; p++) {
    const fromCut = a.watermark.cuts[p]!;
    const toCut = b.watermark.cuts[p]!;
    let events = 0;
    for (const s of deps.catalog.sources.values()) {
      const table = masterTable(deps.database, s.name);
      const [row] = await queryRows<{ n: number | string }>(deps.ch, `SELECT count() AS n FROM ${table} WHERE _partition = {p:UInt16} AND _seq >= {a:UInt64} AND _seq < {b:UInt64}`, { p, a: fromCut, b: toCut });
      events += Number(row?.n ?? 0);
    }
    const barriers = 1 + between.filter((r) => (r.cuts[p] ?? 0) > fromCut && (r.cuts[p] ?? 0) < toCut).length;
    partitions.push({ partition: p, fromCut, toCut, positions: events + barriers, events });
  }
  const metrics: MetricDiff[] = [];
  for (const m of deps.catalog.metrics.values()) {
    const [va, vb] = await Promise.all([fromRun, toRun].map((run) => readBatchStates(deps.ch, deps.database, m, run, null, 0, Number.MAX_SAFE_INTEGER)));
    const keys = new Set<string>();
    let windows = 0;
    for (const key of new Set([...va!.keys(), ...vb!.keys()])) {
      const wa = va!.get(key) ?? new Map();
      const wb = vb!.get(key) ?? new Map();
      for (const w of new Set([...wa.keys(), ...wb.keys()])) {
        const sa = wa.get(w);
        const sb = wb.get(w);
        if (!sa || !sb || JSON.stringify(encodeState(sa)) !== JSON.stringify(encodeState(sb))) {
          windows++;
          keys.add(key);
        }
      }
    }
    metrics.push({ metric: m.name, keysChanged: keys.size, windowsChanged: windows });
  }
  return { partitions, metrics };
}
