/**
 * The speed actor's state, and the pure functions that move it: apply a stream
 * record, apply a watermark, answer a query. No I/O here; the speed node
 * (host.ts) wraps these.
 *
 * Segments. The actor counts into an open segment. A barrier of run N closes it
 * (closedByRun = N) and opens the next (openedAfterRun = N), so every segment
 * holds exactly the events between two barriers. Watermark N drops the segments
 * closed at or before barrier N: batch view N holds those events now.
 *
 * A query at watermark N adds the segments opened at or after barrier N: exactly
 * the events above cut N that this actor has applied. An actor that has not yet
 * read barrier N holds no such segment and adds nothing, which is correct: the
 * events above the cut are simply not applied yet. An actor that has already
 * dropped past N answers "moved on", and the caller retries at the newer run.
 *
 * Duplicates. A copy of an id the actor has seen within its dedupe horizon is
 * skipped, whether the first copy lies above or below the last cut.
 *
 * The functions mutate the state object they are given, for speed; they never
 * touch anything else.
 */
import { windowStart, type MetricDef } from "../core/catalog.js";
import type { StreamRecord } from "../nats/codec.js";

/** key → window start (epoch ms) → count */
export type MetricCounts = Map<string, Map<number, number>>;

export interface Segment {
  /** Run of the barrier that opened this segment; 0 for the first segment. */
  readonly openedAfterRun: number;
  /** Run of the barrier that closed it; null while open. */
  closedByRun: number | null;
  /** Stream sequence of the first and last event counted (0 when none). */
  firstSeq: number;
  lastSeq: number;
  /** Events counted. */
  events: number;
  /** metric name → counts */
  readonly counts: Map<string, MetricCounts>;
}

export interface SpeedState {
  readonly partition: number;
  /** Last stream sequence applied; records at or below it are ignored (redeliveries). */
  appliedSeq: number;
  /** Highest watermark run applied (segments closed at or before it are gone). */
  watermarkRun: number;
  /** Retained segments, oldest first; the last one is open. */
  readonly segments: Segment[];
  /** Recently seen "source:id" → stream sequence, oldest first. */
  readonly seenIds: Map<string, number>;
  readonly dedupeHorizonIds: number;
  /** Copies skipped because their id had been seen. */
  skippedDuplicates: number;
}

export type ApplyOutcome = "counted" | "duplicate_id" | "redelivered" | "barrier" | "stale_barrier";

export function newSegment(openedAfterRun: number): Segment {
  return { openedAfterRun, closedByRun: null, firstSeq: 0, lastSeq: 0, events: 0, counts: new Map() };
}

/** A fresh actor state that starts after stream sequence `appliedSeq`. */
export function createSpeedState(partition: number, dedupeHorizonIds: number, appliedSeq = 0, openedAfterRun = 0): SpeedState {
  return {
    partition,
    appliedSeq,
    watermarkRun: openedAfterRun,
    segments: [newSegment(openedAfterRun)],
    seenIds: new Map(),
    dedupeHorizonIds,
    skippedDuplicates: 0,
  };
}

export function openSegment(state: SpeedState): Segment {
  return state.segments[state.segments.length - 1]!;
}

function remember(state: SpeedState, key: string, seq: number) {
  if (state.dedupeHorizonIds <= 0) return;
  state.seenIds.set(key, seq);
  if (state.seenIds.size > state.dedupeHorizonIds) {
    const oldest = state.seenIds.keys().next().value as string;
    state.seenIds.delete(oldest);
  }
}

/**
 * Applies one stream record at sequence `seq`.
 * @param metricsBySource the catalog's metrics grouped by source.
 */
export function applyRecord(
  state: SpeedState,
  seq: number,
  record: StreamRecord,
  metricsBySource: ReadonlyMap<string, readonly MetricDef[]>,
): ApplyOutcome {
  if (seq <= state.appliedSeq) return "redelivered";
  state.appliedSeq = seq;
  if (record.k === "b") {
    const open = openSegment(state);
    if (record.r <= open.openedAfterRun) return "stale_barrier";
    open.closedByRun = record.r;
    state.segments.push(newSegment(record.r));
    // The watermark may already have passed this barrier (the actor was behind).
    dropThrough(state, state.watermarkRun);
    return "barrier";
  }
  const idKey = `${record.s}:${record.id}`;
  if (state.seenIds.has(idKey)) {
    state.skippedDuplicates++;
    return "duplicate_id";
  }
  remember(state, idKey, seq);
  const seg = openSegment(state);
  if (seg.firstSeq === 0) seg.firstSeq = seq;
  seg.lastSeq = seq;
  seg.events++;
  for (const m of metricsBySource.get(record.s) ?? []) {
    const key = String(record.v[m.groupBy[0]!]);
    const w = windowStart(record.ts, m.windowMs);
    let byKey = seg.counts.get(m.name);
    if (!byKey) seg.counts.set(m.name, (byKey = new Map()));
    let byWindow = byKey.get(key);
    if (!byWindow) byKey.set(key, (byWindow = new Map()));
    byWindow.set(w, (byWindow.get(w) ?? 0) + 1);
  }
  return "counted";
}

function dropThrough(state: SpeedState, run: number): number {
  let dropped = 0;
  while (state.segments.length > 1) {
    const first = state.segments[0]!;
    if (first.closedByRun === null || first.closedByRun > run) break;
    state.segments.shift();
    dropped++;
  }
  return dropped;
}

/** Applies watermark `run`: drops every segment closed at or before barrier `run`. Returns how many. */
export function applyWatermark(state: SpeedState, run: number): number {
  if (run <= state.watermarkRun) return 0;
  state.watermarkRun = run;
  return dropThrough(state, run);
}

/** Events held in retained segments (not yet covered by an applied watermark). */
export function heldEvents(state: SpeedState): number {
  let n = 0;
  for (const s of state.segments) n += s.events;
  return n;
}

export interface RangeQuery {
  /** Watermark run the caller answers at. */
  readonly run: number;
  readonly metric: string;
  readonly key: string;
  /** Windows with start in [fromMs, toMs) count. */
  readonly fromMs: number;
  readonly toMs: number;
}

export type SpeedAnswer =
  | { readonly kind: "value"; readonly value: number; readonly eventsAboveCut: number }
  | { readonly kind: "moved_on"; readonly run: number };

/** The speed part of a query at watermark `q.run`: every applied event above cut `q.run`. */
export function querySpeed(state: SpeedState, q: RangeQuery): SpeedAnswer {
  // Segments opened after barrier q.run survive watermark q.run; a watermark beyond
  // q.run may have dropped segments the caller still needs.
  if (state.watermarkRun > q.run) return { kind: "moved_on", run: state.watermarkRun };
  let value = 0;
  let eventsAboveCut = 0;
  for (const seg of state.segments) {
    if (seg.openedAfterRun < q.run) continue;
    eventsAboveCut += seg.events;
    const byWindow = seg.counts.get(q.metric)?.get(q.key);
    if (!byWindow) continue;
    for (const [w, c] of byWindow) if (w >= q.fromMs && w < q.toMs) value += c;
  }
  return { kind: "value", value, eventsAboveCut };
}
