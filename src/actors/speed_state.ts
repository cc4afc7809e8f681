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
import { addEvent, emptyState, encodeState, keyOfEvent, mergeState, type AggState, type EncodedState } from "../core/aggregate.js";
import { windowStart, type Catalog, type MetricDef } from "../core/catalog.js";
import { activeDefinitions, type Definition } from "../core/definitions.js";
import { fnv1a32 } from "../core/events.js";
import { matches } from "../core/filter.js";
import type { StreamRecord } from "../nats/codec.js";
import { createDedupeHorizon, type DedupeHorizon } from "./dedupe_horizon.js";

/** key → window start (epoch ms) → state */
export type MetricStates = Map<string, Map<number, AggState>>;

/** The definitions a speed actor computes (core/definitions activeDefinitions), indexed. */
export interface SpeedCatalog {
  readonly bySource: ReadonlyMap<string, readonly Definition[]>;
  readonly byFingerprint: ReadonlyMap<string, MetricDef>;
}

export function speedCatalog(definitions: Iterable<Definition>): SpeedCatalog {
  const bySource = new Map<string, Definition[]>();
  const byFingerprint = new Map<string, MetricDef>();
  for (const d of definitions) {
    if (byFingerprint.has(d.fingerprint)) continue;
    byFingerprint.set(d.fingerprint, d.metric);
    bySource.set(d.metric.source, [...(bySource.get(d.metric.source) ?? []), d]);
  }
  return { bySource, byFingerprint };
}

/** The definitions of a catalog alone (no watermark recorded others). */
export function speedCatalogOf(catalog: Catalog): SpeedCatalog {
  return speedCatalog(activeDefinitions(catalog, null));
}

/** Fingerprints `catalog` computes that `held` does not: an actor holding `held` must rebuild to compute them. */
export function missingDefinitions(held: SpeedCatalog, catalog: SpeedCatalog): string[] {
  return [...catalog.byFingerprint.keys()].filter((fp) => !held.byFingerprint.has(fp));
}

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
  /** definition fingerprint → states */
  readonly states: Map<string, MetricStates>;
}

export interface SpeedState {
  readonly partition: number;
  /** Last stream sequence applied; records at or below it are ignored (redeliveries). */
  appliedSeq: number;
  /** Highest watermark run applied (segments closed at or before it are gone). */
  watermarkRun: number;
  /** Retained segments, oldest first; the last one is open. */
  readonly segments: Segment[];
  /** Hashes (idHash) of the `dedupeHorizonIds` most recently seen event ids, oldest first. */
  readonly seenIds: DedupeHorizon;
  readonly dedupeHorizonIds: number;
  /** Copies skipped because their id had been seen. */
  skippedDuplicates: number;
  /**
   * Records below this sequence only teach the dedupe set (warm-up after a
   * rebuild from a cut: the batch layer counts them, but a later copy of one
   * must still be skipped). 0 when there is no warm-up.
   */
  warmBelowSeq: number;
}

export type ApplyOutcome = "counted" | "duplicate_id" | "redelivered" | "barrier" | "stale_barrier" | "warm_up";

export function newSegment(openedAfterRun: number): Segment {
  return { openedAfterRun, closedByRun: null, firstSeq: 0, lastSeq: 0, events: 0, states: new Map() };
}

/**
 * A fresh actor state that starts after stream sequence `appliedSeq`; records
 * below `warmBelowSeq` only fill the dedupe set.
 */
export function createSpeedState(partition: number, dedupeHorizonIds: number, appliedSeq = 0, openedAfterRun = 0, warmBelowSeq = 0): SpeedState {
  return {
    warmBelowSeq,
    partition,
    appliedSeq,
    watermarkRun: openedAfterRun,
    segments: [newSegment(openedAfterRun)],
    seenIds: createDedupeHorizon(dedupeHorizonIds),
    dedupeHorizonIds,
    skippedDuplicates: 0,
  };
}

export function openSegment(state: SpeedState): Segment {
  return state.segments[state.segments.length - 1]!;
}

/**
 * The dedupe key of an event id: a 53-bit hash of "source:id" (two multiplicative 32-bit lanes
 * over the UTF-16 code units, cross-mixed). A number instead of the string keeps the horizon at
 * about a third of the memory (docs/performance.md). Two ids of one horizon share a hash with
 * odds of about horizon / 2^53 per event (1e-11 at 100k ids); the later one would be skipped by
 * the speed layer until the next batch run, which counts by the ids themselves. Each hash takes
 * ~6.5 B in the horizon at its default size (~15 B below 8192 ids; dedupe_horizon.ts).
 */
export function idHash(source: string, id: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  const text = `${source}:${id}`;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (h2 & 0x1fffff) + (h1 >>> 0);
}

/**
 * Applies one stream record at sequence `seq` to every metric of its source.
 */
export function applyRecord(state: SpeedState, seq: number, record: StreamRecord, catalog: SpeedCatalog): ApplyOutcome {
  if (seq <= state.appliedSeq) return "redelivered";
  state.appliedSeq = seq;
  if (seq < state.warmBelowSeq) {
    if (record.k === "e") state.seenIds.add(idHash(record.s, record.id));
    return "warm_up";
  }
  if (record.k === "b") {
    const open = openSegment(state);
    if (record.r <= open.openedAfterRun) return "stale_barrier";
    open.closedByRun = record.r;
    state.segments.push(newSegment(record.r));
    // The watermark may already have passed this barrier (the actor was behind).
    dropThrough(state, state.watermarkRun);
    return "barrier";
  }
  const idKey = idHash(record.s, record.id);
  if (!state.seenIds.add(idKey)) {
    state.skippedDuplicates++;
    return "duplicate_id";
  }
  const seg = openSegment(state);
  if (seg.firstSeq === 0) seg.firstSeq = seq;
  seg.lastSeq = seq;
  seg.events++;
  for (const { fingerprint, metric: m } of catalog.bySource.get(record.s) ?? []) {
    if (m.filter && !matches(m.filter, record.v)) continue;
    const key = keyOfEvent(m, record.v);
    const w = windowStart(record.ts, m.windowMs);
    let byKey = seg.states.get(fingerprint);
    if (!byKey) seg.states.set(fingerprint, (byKey = new Map()));
    let byWindow = byKey.get(key);
    if (!byWindow) byKey.set(key, (byWindow = new Map()));
    let st = byWindow.get(w);
    if (!st) byWindow.set(w, (st = emptyState(m)));
    addEvent(m, st, record.v);
  }
  return "counted";
}

/**
 * Whether a barrier of `run` at `seq` would change the state: not a redelivery, not in the
 * warm-up, not at or below the open segment's run. Only such a barrier needs checking against
 * the run history (nats/barrier_check.ts); the others are passed over by applyRecord anyway.
 */
export function barrierActs(state: SpeedState, seq: number, run: number): boolean {
  return seq > state.appliedSeq && seq >= state.warmBelowSeq && run > openSegment(state).openedAfterRun;
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

/** Drops the states of definitions `catalog` no longer computes (a run adopted their replacement). */
export function retainDefinitions(state: SpeedState, catalog: SpeedCatalog): void {
  for (const seg of state.segments) for (const fp of seg.states.keys()) if (!catalog.byFingerprint.has(fp)) seg.states.delete(fp);
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
  /** Metric name, for messages. */
  readonly metric: string;
  /** Fingerprint of the definition asked for: the one the watermark's run used (core/definitions definitionAt). */
  readonly definition: string;
  /** Keys asked for; null for every key the actor holds (top-k). */
  readonly keys: readonly string[] | null;
  /** Windows with start in [fromMs, toMs) count. */
  readonly fromMs: number;
  readonly toMs: number;
  /** Also return the state of each window. */
  readonly series: boolean;
  /**
   * Only the keys of shard `index` of `count` (keyShard): an answer of every key (keys null) too
   * large for one NATS message is asked for in shards. Absent: every key.
   */
  readonly shard?: { readonly index: number; readonly count: number };
}

/**
 * The shard of `count` a key falls in. Keys of one partition share their FNV-1a hash modulo the
 * partition count, and FNV's low bits follow its input's (a salt does not change that), so the
 * hash goes through murmur3's finalizer, which spreads every bit over the low ones.
 */
export function keyShard(key: string, count: number): number {
  let h = fnv1a32(key);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % count;
}

/** Per key: the state over the range, and per window when asked. */
export type KeyStates = [key: string, total: EncodedState, series: [window: number, state: EncodedState][] | null];

export type SpeedAnswer =
  | { readonly kind: "value"; readonly keys: KeyStates[]; readonly eventsAboveCut: number }
  | { readonly kind: "moved_on"; readonly run: number }
  /** The actor does not compute this definition (yet): it is rebuilding to, or runs another catalog. */
  | { readonly kind: "missing_definition"; readonly definition: string };

/**
 * The speed part of a query at watermark `q.run`: every applied event above
 * cut `q.run`, as merged states per key (and window).
 */
export function querySpeed(state: SpeedState, catalog: SpeedCatalog, q: RangeQuery): SpeedAnswer {
  // Segments opened after barrier q.run survive watermark q.run; a watermark beyond
  // q.run may have dropped segments the caller still needs.
  if (state.watermarkRun > q.run) return { kind: "moved_on", run: state.watermarkRun };
  const metric = catalog.byFingerprint.get(q.definition);
  if (!metric) return { kind: "missing_definition", definition: q.definition };
  const totals = new Map<string, { total: AggState; windows: Map<number, AggState> | null }>();
  let eventsAboveCut = 0;
  const wanted = q.keys ? new Set(q.keys) : null;
  // Per key and segment: its windows in the range merged into the key's total (and windows).
  const addKey = (key: string, windows: ReadonlyMap<number, AggState>) => {
    if (q.shard && keyShard(key, q.shard.count) !== q.shard.index) return;
    let acc = totals.get(key);
    for (const [w, st] of windows) {
      if (w < q.fromMs || w >= q.toMs) continue;
      if (!acc) totals.set(key, (acc = { total: emptyState(metric), windows: q.series ? new Map() : null }));
      mergeState(acc.total, st);
      if (acc.windows) {
        let ws = acc.windows.get(w);
        if (!ws) acc.windows.set(w, (ws = emptyState(metric)));
        mergeState(ws, st);
      }
    }
  };
  for (const seg of state.segments) {
    if (seg.openedAfterRun < q.run) continue;
    eventsAboveCut += seg.events;
    const byKey = seg.states.get(q.definition);
    if (!byKey) continue;
    if (wanted) {
      for (const key of wanted) {
        const windows = byKey.get(key);
        if (windows) addKey(key, windows);
      }
    } else for (const [key, windows] of byKey) addKey(key, windows);
  }
  const keys: KeyStates[] = [...totals].map(([k, acc]) => [
    k,
    encodeState(acc.total),
    acc.windows ? [...acc.windows].sort(([a], [b]) => a - b).map(([w, st]) => [w, encodeState(st)]) : null,
  ]);
  return { kind: "value", keys, eventsAboveCut };
}
