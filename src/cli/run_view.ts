/**
 * Batch runs as lambdactl shows them (`watermark history`, the run marks of
 * `watermark timeline`): outcomes, cuts per partition, durations. Pure.
 */
import type { RunInfo } from "../gen/lambda/v1/admin.js";
import type { PartitionCut } from "../gen/lambda/v1/serving.js";
import { ABSENT, formatElapsed, formatInstant, formatInstantRange, msCell, table, type Cell } from "./render.js";

/** What became of a batch run, as the admin API names it. */
export const RunOutcomes = {
  /** Still going. */
  running: "running",
  /** Published: the watermark moved to it (it may have moved on since). */
  published: "published",
  /** Failed; `detail` says why. The watermark did not move. */
  failed: "failed",
  /** Published, then the watermark was rolled back before it; `detail` says by which rollback. */
  rolledBack: "rolled_back",
} as const;
export type RunOutcome = (typeof RunOutcomes)[keyof typeof RunOutcomes];

/** Up to this many partitions, a runs table has a cut column per partition; past it, one compact column. */
export const MAX_CUT_COLUMNS = 8;

/** The stable JSON shape of one run (`watermark history --json` prints `{ runs: RunJson[] }`, newest first). */
export interface RunJson {
  readonly run: number;
  /** One of {@link RunOutcomes} (a newer server may add others). */
  readonly outcome: string;
  /** Barrier stream sequence per partition, by partition; empty for a run that failed before its barriers. */
  readonly cuts: readonly { readonly partition: number; readonly seq: number }[];
  readonly viewVersion: number;
  readonly eventsCovered: number;
  /** Event-time range of the covered events, ISO 8601; null when none. */
  readonly coveredFrom: string | null;
  readonly coveredTo: string | null;
  /** ISO 8601; `finishedAt` is null while the run is going. */
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  /** finishedAt - startedAt; null while the run is going. */
  readonly durationMs: number | null;
  readonly phases: { readonly barrierMs: number; readonly archiverFlushMs: number; readonly recomputeMs: number; readonly publishMs: number };
  /** Member id of the coordinator that ran it. */
  readonly coordinator: string;
  /** Why it failed, or what rolled it back; "" when nothing to say. */
  readonly detail: string;
}

/** The cuts of a run in partition order. */
export function sortedCuts(cuts: readonly PartitionCut[]): PartitionCut[] {
  return [...cuts].sort((a, b) => a.partition - b.partition);
}

/** Cuts in one short cell, "0:123 1:130 2:98", in partition order; {@link ABSENT} when there are none. */
export function formatCutsCompact(cuts: readonly PartitionCut[]): string {
  return cuts.length === 0 ? ABSENT : sortedCuts(cuts).map((c) => `${c.partition}:${c.seq}`).join(" ");
}

function durationMs(r: RunInfo): number | null {
  return r.startedAt && r.finishedAt ? r.finishedAt.getTime() - r.startedAt.getTime() : null;
}

/** One run as `--json` prints it. */
export function runJson(r: RunInfo): RunJson {
  const iso = (d: Date | undefined) => d?.toISOString() ?? null;
  return {
    run: r.run,
    outcome: r.outcome,
    cuts: sortedCuts(r.cuts).map((c) => ({ partition: c.partition, seq: c.seq })),
    viewVersion: r.viewVersion,
    eventsCovered: r.eventsCovered,
    coveredFrom: iso(r.coveredFrom),
    coveredTo: iso(r.coveredTo),
    startedAt: iso(r.startedAt),
    finishedAt: iso(r.finishedAt),
    durationMs: durationMs(r),
    phases: { barrierMs: r.barrierMs, archiverFlushMs: r.archiverFlushMs, recomputeMs: r.recomputeMs, publishMs: r.publishMs },
    coordinator: r.coordinator,
    detail: r.detail,
  };
}

/**
 * How the cuts of these runs are laid out: the partitions seen in any of them,
 * and whether each gets its own column (at most {@link MAX_CUT_COLUMNS}).
 */
export function cutLayout(runs: readonly { readonly cuts: readonly PartitionCut[] }[]): { readonly partitions: readonly number[]; readonly columns: boolean } {
  const partitions = [...new Set(runs.flatMap((r) => r.cuts.map((c) => c.partition)))].sort((a, b) => a - b);
  return { partitions, columns: partitions.length <= MAX_CUT_COLUMNS };
}

/**
 * The runs table of `watermark history`, newest first as given, with a legend
 * saying what the cut columns and the phase columns hold.
 */
export function renderRunsTable(runs: readonly RunInfo[]): string {
  if (runs.length === 0) return "no batch runs yet: `lambdactl run` starts one\n";
  const layout = cutLayout(runs);
  const cutHeads = layout.columns ? layout.partitions.map((p) => `p${p}`) : ["cuts"];
  const columns = [
    "run",
    "outcome",
    ...cutHeads,
    "view",
    "events",
    "event time",
    "started",
    "duration",
    "barrier ms",
    "flush ms",
    "recompute ms",
    "publish ms",
    "coordinator",
    "detail",
  ];
  const rows = runs.map((r): Cell[] => {
    const bySeq = new Map(r.cuts.map((c) => [c.partition, c.seq]));
    const cutCells: Cell[] = layout.columns ? layout.partitions.map((p) => bySeq.get(p) ?? ABSENT) : [formatCutsCompact(r.cuts)];
    const d = durationMs(r);
    return [
      r.run,
      r.outcome,
      ...cutCells,
      r.viewVersion,
      r.eventsCovered,
      formatInstantRange(r.coveredFrom, r.coveredTo),
      formatInstant(r.startedAt),
      d === null ? (r.outcome === RunOutcomes.running ? "running" : ABSENT) : formatElapsed(d),
      msCell(r.barrierMs),
      msCell(r.archiverFlushMs),
      msCell(r.recomputeMs),
      msCell(r.publishMs),
      r.coordinator || ABSENT,
      r.detail || ABSENT,
    ];
  });
  const legend = layout.columns
    ? "p<n>: the run's cut on partition n (barrier stream sequence; events below it are in the run's batch view)."
    : "cuts: partition:cut pairs (barrier stream sequence; events below it are in the run's batch view).";
  return `${table(columns, rows)}\n${legend}\nphases: barrier, archiver flush, recompute, publish; event time: the range the batch view covers.\n`;
}
