/**
 * `watermark verify`: an independent check that batch and speed meet exactly at
 * the cut of the current watermark run N. It shares no code with the batch run
 * or the archiver (nothing here imports src/batch/): its SQL is written here,
 * over the master dataset, and written differently (uniqExact and a GROUP BY _id
 * where the batch run keeps first copies, one UNION ALL over every source where
 * the archiver asks each table), so a bug in the batch SQL cannot hide itself
 * by being repeated here. test/unit/design-claims.test.ts keeps it that way.
 *
 * Per partition p with cut c:
 *   - below: distinct ids with a copy below c (the batch side's events);
 *   - above: distinct ids whose first copy lies in [c, e], e being the last event
 *     the speed actor applied; the actor should hold exactly these.
 * gaps = expected − held when positive (events counted nowhere); overlaps = held −
 * expected when positive (events counted twice, e.g. a late copy beyond the dedupe
 * horizon). The sum of `below` must equal the events batch run N reports.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { Catalog } from "../core/catalog.js";
import { PreconditionError, UnavailableError } from "../core/errors.js";
import { waitFor } from "../core/wait.js";
import type { Watermark } from "../core/watermark.js";
import type { SpeedClient, SpeedStatus } from "../actors/index.js";
import { queryRows } from "../ch/client.js";
import { masterTable } from "../ch/schema.js";

/** How long verify waits for the archiver to catch up with the speed actors. */
export const VERIFY_ARCHIVER_WAIT_MS = 30_000;

export interface PartitionCheck {
  readonly partition: number;
  readonly cut: number;
  readonly belowCut: number;
  readonly appliedSeq: number;
  readonly aboveCutExpected: number;
  readonly aboveCutHeld: number;
  readonly gaps: number;
  readonly overlaps: number;
}

export interface VerifyResult {
  readonly run: number;
  readonly partitions: readonly PartitionCheck[];
  readonly batchEventsReported: number;
  readonly batchEventsRecounted: number;
  readonly exact: boolean;
}

export interface VerifyDeps {
  readonly ch: ClickHouseClient;
  readonly database: string;
  readonly catalog: Catalog;
  readonly partitions: number;
  readonly speed: SpeedClient;
}

/**
 * Highest archived sequence per partition, over every source: read from the master tables
 * themselves, which is what the archiver's position means (and a read that cannot hang on a
 * KV key listing, as `members.keys()` could).
 */
async function archivedHeads(deps: VerifyDeps): Promise<number[]> {
  const heads = new Array<number>(deps.partitions).fill(0);
  const tables = [...deps.catalog.sources.values()].map((s) => `SELECT _partition, _seq FROM ${masterTable(deps.database, s.name)}`);
  if (tables.length === 0) return heads;
  const sql = `SELECT _partition AS partition, max(_seq) AS seq FROM (${tables.join(" UNION ALL ")}) GROUP BY _partition`;
  for (const r of await queryRows<{ partition: number; seq: number | string }>(deps.ch, sql)) {
    if (r.partition < deps.partitions) heads[r.partition] = Number(r.seq);
  }
  return heads;
}

/** Distinct ids of every source in partition p with a copy below `cut`. */
async function recountBelow(deps: VerifyDeps, p: number, cut: number): Promise<number> {
  let n = 0;
  for (const s of deps.catalog.sources.values()) {
    const table = masterTable(deps.database, s.name);
    const [row] = await queryRows<{ n: number | string }>(deps.ch, `SELECT uniqExact(_id) AS n FROM ${table} WHERE _partition = {p:UInt16} AND _seq < {cut:UInt64}`, { p, cut });
    n += Number(row?.n ?? 0);
  }
  return n;
}

/** Distinct ids of every source in partition p whose first copy lies in [cut, last]. */
async function recountAbove(deps: VerifyDeps, p: number, cut: number, last: number): Promise<number> {
  if (last < cut) return 0;
  let n = 0;
  for (const s of deps.catalog.sources.values()) {
    const table = masterTable(deps.database, s.name);
    const [row] = await queryRows<{ n: number | string }>(
      deps.ch,
      `SELECT countIf(first >= {cut:UInt64}) AS n FROM (SELECT min(_seq) AS first FROM ${table} WHERE _partition = {p:UInt16} AND _seq <= {last:UInt64} GROUP BY _id)`,
      { p, cut, last },
    );
    n += Number(row?.n ?? 0);
  }
  return n;
}

export async function verifySeam(deps: VerifyDeps, w: Watermark): Promise<VerifyResult> {
  const statuses: SpeedStatus[] = [];
  for (let p = 0; p < deps.partitions; p++) {
    try {
      statuses.push(await deps.speed.status(p));
    } catch (err) {
      throw new UnavailableError(`cannot verify: the speed actor of partition ${p} does not answer`, { cause: err });
    }
  }
  for (const s of statuses) {
    if (s.watermarkRun > w.run) throw new PreconditionError(`speed actor of partition ${s.partition} has moved on to run ${s.watermarkRun}; verify the current watermark`);
  }
  // The last event each actor counted above the cut: the archiver must hold everything up to it.
  const lastEvent = statuses.map((s) => Math.max(0, ...s.segments.filter((g) => g.openedAfterRun >= w.run).map((g) => g.lastSeq)));
  try {
    await waitFor(
      "the archiver to catch up with the speed actors",
      async () => {
        const heads = await archivedHeads(deps);
        return lastEvent.every((e, p) => heads[p]! >= e);
      },
      { timeoutMs: VERIFY_ARCHIVER_WAIT_MS, intervalMs: 100 },
    );
  } catch (err) {
    throw new UnavailableError(`the archiver has not caught up with the speed actors within ${VERIFY_ARCHIVER_WAIT_MS} ms; is it running?`, { cause: err });
  }
  const partitions: PartitionCheck[] = [];
  for (const s of statuses) {
    const p = s.partition;
    const cut = w.cuts[p] ?? 0;
    const belowCut = await recountBelow(deps, p, cut);
    const aboveCutExpected = await recountAbove(deps, p, cut, lastEvent[p]!);
    const aboveCutHeld = s.segments.filter((g) => g.openedAfterRun >= w.run).reduce((n, g) => n + g.events, 0);
    partitions.push({
      partition: p,
      cut,
      belowCut,
      appliedSeq: s.appliedSeq,
      aboveCutExpected,
      aboveCutHeld,
      gaps: Math.max(0, aboveCutExpected - aboveCutHeld),
      overlaps: Math.max(0, aboveCutHeld - aboveCutExpected),
    });
  }
  const recounted = partitions.reduce((n, c) => n + c.belowCut, 0);
  return {
    run: w.run,
    partitions,
    batchEventsReported: w.eventsCovered,
    batchEventsRecounted: recounted,
    exact: recounted === w.eventsCovered && partitions.every((c) => c.gaps === 0 && c.overlaps === 0),
  };
}
