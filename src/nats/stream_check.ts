/**
 * Reading a partition subject's records without trusting them. The archiver
 * and the speed actors both read every record through here, so a record one
 * layer skips the other skips too and the seam between them stays exact.
 */
import type { Catalog } from "../core/catalog.js";
import type { Logger } from "../core/logger.js";
import type { FieldProblem } from "../core/errors.js";
import { validateStreamEvent, type NormalizedEvent } from "../core/events.js";
import { readStreamRecord, type StreamRecord } from "./codec.js";

export type CheckedRecord =
  | { readonly kind: "event"; readonly event: NormalizedEvent; /** The event as a stream record, normalised. */ readonly record: StreamRecord & { readonly k: "e" } }
  /** A barrier as read: only nats/barrier_check.ts says whether a run of the leader really wrote it. */
  | { readonly kind: "barrier"; readonly run: number; readonly epoch?: number; readonly record: StreamRecord & { readonly k: "b" } }
  /** Not a valid stream record: both layers skip it; the archiver dead-letters it. */
  | { readonly kind: "skip"; readonly source: string | null; readonly eventId: string | null; readonly problems: readonly FieldProblem[]; readonly raw: unknown };

export interface StreamCheckerDeps {
  /** The catalog the layer runs now. */
  catalog(): Catalog;
  /**
   * Reads the newest stored catalog version (and makes it `catalog()`): called once for a record
   * whose source or field the catalog lacks, before it is called invalid. Absent: no catalog feed.
   */
  refresh?(): Promise<void>;
  partitions: number;
}

/** Checks one message of partition `partition`; synchronous unless a record needs a catalog refresh. */
export type StreamChecker = (data: Uint8Array, partition: number) => CheckedRecord | Promise<CheckedRecord>;

export function createStreamChecker(deps: StreamCheckerDeps): StreamChecker {
  return (data, partition) => {
    const read = readStreamRecord(data);
    if (read.kind === "barrier") {
      const { run, epoch } = read;
      return epoch === undefined ? { kind: "barrier", run, record: { k: "b", r: run } } : { kind: "barrier", run, epoch, record: { k: "b", r: run, e: epoch } };
    }
    if (read.kind === "unreadable") {
      return { kind: "skip", source: null, eventId: null, problems: [{ field: "(record)", reason: read.reason }], raw: read.value === undefined ? data : read.value };
    }
    const check = () => {
      const c = validateStreamEvent(deps.catalog(), read, partition, deps.partitions);
      return { c, checked: toChecked(c, read) };
    };
    const first = check();
    if (first.c.kind === "valid" || !first.c.unknownName || !deps.refresh) return first.checked;
    // Sources only grow: a name this catalog lacks may be defined by a newer version.
    return deps.refresh().then(() => check().checked);
  };
}

function toChecked(c: ReturnType<typeof validateStreamEvent>, read: { s: unknown; id: unknown; ts: unknown; v: unknown }): CheckedRecord {
  if (c.kind === "valid") {
    const e = c.event;
    return { kind: "event", event: e, record: { k: "e", s: e.source, id: e.id, ts: e.ts, v: e.fields } };
  }
  return {
    kind: "skip",
    source: typeof read.s === "string" ? read.s : null,
    eventId: c.eventId ?? null,
    problems: c.problems,
    raw: { k: "e", s: read.s, id: read.id, ts: read.ts, v: read.v },
  };
}

/** One line for logs and dead letters: every problem of a skipped record. */
export const describeProblems = (problems: readonly FieldProblem[]) => problems.map((p) => `${p.field} ${p.reason}`).join("; ");

/**
 * Logs skipped records without a line per record in a flood: the first at once, then at most one
 * line per `intervalMs` with how many were skipped since.
 */
export function skipReporter(log: Logger, intervalMs = 10_000): (context: Record<string, unknown>) => void {
  let lastAt = -Infinity;
  let since = 0;
  return (context) => {
    since++;
    const now = Date.now();
    if (now - lastAt < intervalMs) return;
    log.warn("skipping an invalid stream record (both layers skip it; the archiver dead-letters it)", { ...context, skippedSinceLastLine: since });
    lastAt = now;
    since = 0;
  };
}
