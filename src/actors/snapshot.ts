/**
 * Snapshot of a speed actor: its segments, last applied sequence, watermark and
 * dedupe ids, as msgpack. A new owner resumes from a snapshot and replays the
 * stream after `appliedSeq`, so each event is applied once.
 */
import { decodeState, encodeState, type AggState } from "../core/aggregate.js";
import { decode, encode } from "../nats/codec.js";
import { dedupeHorizonOf } from "./dedupe_horizon.js";
import type { MetricStates, Segment, SpeedCatalog, SpeedState } from "./speed_state.js";

/** Bumped whenever the encoded shape changes; older snapshots are ignored (the stream replays). */
export const SNAPSHOT_FORMAT = 4;

interface EncodedSegment {
  o: number;
  c: number | null;
  f: number;
  l: number;
  n: number;
  /** [definition fingerprint, [key, [window, state][]][]][] */
  m: [string, [string, [number, unknown][]][]][];
}

interface EncodedSnapshot {
  format: number;
  partition: number;
  generation: number;
  /** Fingerprints of the definitions the actor computed (every one since the start of each segment). */
  defs: string[];
  appliedSeq: number;
  watermarkRun: number;
  skippedDuplicates: number;
  segments: EncodedSegment[];
  /** The dedupe horizon's id hashes, oldest first, as the bytes of a Float64Array (one binary value, cheap to write). */
  ids: Uint8Array;
}

export interface SnapshotMeta {
  readonly partition: number;
  readonly generation: number;
  /** The definitions the actor computes. */
  readonly catalog: SpeedCatalog;
}

export function encodeSnapshot(state: SpeedState, meta: SnapshotMeta): Uint8Array {
  const segments: EncodedSegment[] = state.segments.map((s) => ({
    o: s.openedAfterRun,
    c: s.closedByRun,
    f: s.firstSeq,
    l: s.lastSeq,
    n: s.events,
    m: [...s.states].map(([metric, byKey]) => [metric, [...byKey].map(([k, byW]) => [k, [...byW].map(([w, st]) => [w, encodeState(st)])])]),
  }));
  const snap: EncodedSnapshot = {
    format: SNAPSHOT_FORMAT,
    partition: meta.partition,
    generation: meta.generation,
    defs: [...meta.catalog.byFingerprint.keys()],
    appliedSeq: state.appliedSeq,
    watermarkRun: state.watermarkRun,
    skippedDuplicates: state.skippedDuplicates,
    segments,
    ids: new Uint8Array(state.seenIds.toFloat64Array().buffer),
  };
  return encode(snap);
}

export type DecodedSnapshot =
  | { readonly kind: "state"; readonly state: SpeedState; readonly generation: number }
  | { readonly kind: "unusable"; readonly reason: string };

/**
 * Decodes a snapshot for `partition`, keeping the states of the definitions in
 * `catalog`. A snapshot that lacks one of them is unusable: the actor rebuilds
 * from the cut, which starts the new definition from the cut.
 */
export function decodeSnapshot(data: Uint8Array, partition: number, dedupeHorizonIds: number, catalog: SpeedCatalog): DecodedSnapshot {
  let snap: EncodedSnapshot;
  try {
    snap = decode<EncodedSnapshot>(data);
  } catch (err) {
    return { kind: "unusable", reason: `not msgpack: ${(err as Error).message}` };
  }
  if (snap?.format !== SNAPSHOT_FORMAT) return { kind: "unusable", reason: `format ${String(snap?.format)}, expected ${SNAPSHOT_FORMAT}` };
  if (snap.partition !== partition) return { kind: "unusable", reason: `snapshot is of partition ${snap.partition}` };
  if (!Array.isArray(snap.defs)) return { kind: "unusable", reason: "malformed body: defs is not a list" };
  const held = new Set(snap.defs);
  const missing = [...catalog.byFingerprint].filter(([fp]) => !held.has(fp)).map(([fp, m]) => `${m.name}@${fp}`);
  if (missing.length > 0) return { kind: "unusable", reason: `the snapshot does not compute ${missing.join(", ")} (added or redefined since)` };
  try {
    return restore(snap, partition, dedupeHorizonIds, catalog);
  } catch (err) {
    // A corrupt body must not stop every future owner: the stream rebuilds the state.
    return { kind: "unusable", reason: `malformed body: ${(err as Error).message}` };
  }
}

function restore(snap: EncodedSnapshot, partition: number, dedupeHorizonIds: number, catalog: SpeedCatalog): DecodedSnapshot {
  const num = (v: unknown, what: string): number => {
    if (typeof v !== "number") throw new TypeError(`${what} is not a number`);
    return v;
  };
  if (!Array.isArray(snap.segments)) throw new TypeError("segments is not a list");
  if (!(snap.ids instanceof Uint8Array) || snap.ids.byteLength % 8 !== 0) throw new TypeError("ids is not a list of 8-byte hashes");
  const segments: Segment[] = snap.segments.map((s) => {
    const states = new Map<string, MetricStates>();
    if (!Array.isArray(s.m)) throw new TypeError("segment states are not a list");
    for (const [fingerprint, keys] of s.m) {
      const def = catalog.byFingerprint.get(fingerprint);
      if (!def) continue; // a definition no longer computed: a run has adopted its replacement
      states.set(fingerprint, new Map(keys.map(([k, ws]) => [k, new Map(ws.map(([w, st]): [number, AggState] => [w, decodeState(def, st)]))])));
    }
    const closedByRun = s.c === null ? null : num(s.c, "closedByRun");
    return { openedAfterRun: num(s.o, "openedAfterRun"), closedByRun, firstSeq: num(s.f, "firstSeq"), lastSeq: num(s.l, "lastSeq"), events: num(s.n, "events"), states };
  });
  if (segments.length === 0 || segments[segments.length - 1]!.closedByRun !== null) {
    return { kind: "unusable", reason: "no open segment" };
  }
  // Copied into a buffer of its own: the decoded bytes may sit at any offset of a shared one.
  const hashes = new Float64Array(new Uint8Array(snap.ids).buffer);
  // The horizon may have shrunk since the snapshot: keep the newest ids.
  const seenIds = dedupeHorizonOf(hashes.subarray(Math.max(0, hashes.length - Math.max(0, dedupeHorizonIds))), Math.max(0, dedupeHorizonIds));
  return {
    kind: "state",
    generation: snap.generation,
    state: {
      partition,
      appliedSeq: num(snap.appliedSeq, "appliedSeq"),
      watermarkRun: num(snap.watermarkRun, "watermarkRun"),
      segments,
      seenIds,
      dedupeHorizonIds,
      skippedDuplicates: num(snap.skippedDuplicates, "skippedDuplicates"),
      warmBelowSeq: 0,
    },
  };
}
