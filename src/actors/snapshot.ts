/**
 * Snapshot of a speed actor: its segments, last applied sequence, watermark and
 * dedupe ids, as msgpack. A new owner resumes from a snapshot and replays the
 * stream after `appliedSeq`, so each event is applied once. The segments'
 * aggregate states are encoded by snapshot_states.ts, which re-encodes only what
 * changed since the actor's previous snapshot.
 */
import { decode, encodeLarge } from "../nats/codec.js";
import { dedupeHorizonOf } from "./dedupe_horizon.js";
import type { Segment, SpeedCatalog, SpeedState } from "./speed_state.js";
import { createSegmentStatesEncoder, decodeSegmentStates, type EncodedSegmentStates, type SegmentStatesEncoder, type SteppedWork } from "./snapshot_states.js";

/** Bumped whenever the encoded shape changes; older snapshots are ignored (the stream replays). */
export const SNAPSHOT_FORMAT = 5;

interface EncodedSegment {
  o: number;
  c: number | null;
  f: number;
  l: number;
  n: number;
  /** Per definition fingerprint, a msgpack array of [key, [window, state][]] (snapshot_states.ts). */
  m: EncodedSegmentStates;
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

/**
 * Captures `state` as a snapshot now and returns the work that encodes it (snapshot_states.ts).
 * Only the capture reads `state`: the state may move on while the work runs. An actor passes the
 * same `states` encoder to every snapshot it writes, so the states that did not change since the
 * previous one are copied, not encoded again.
 */
function captureSnapshot(state: SpeedState, meta: SnapshotMeta, states: SegmentStatesEncoder): SteppedWork<Uint8Array> {
  const captured = state.segments.map((s) => ({
    o: s.openedAfterRun,
    c: s.closedByRun,
    f: s.firstSeq,
    l: s.lastSeq,
    n: s.events,
    m: states.capture(s, meta.catalog),
  }));
  const snap: EncodedSnapshot = {
    format: SNAPSHOT_FORMAT,
    partition: meta.partition,
    generation: meta.generation,
    defs: [...meta.catalog.byFingerprint.keys()],
    appliedSeq: state.appliedSeq,
    watermarkRun: state.watermarkRun,
    skippedDuplicates: state.skippedDuplicates,
    segments: [],
    ids: new Uint8Array(state.seenIds.toFloat64Array().buffer),
  };
  return (function* () {
    for (const { m, ...segment } of captured) snap.segments.push({ ...segment, m: yield* m });
    return encodeLarge(snap);
  })();
}

/**
 * Encodes `state` as a snapshot, at once.
 * @param states the encoder of the actor's previous snapshots. @default a new one (everything is encoded)
 */
export function encodeSnapshot(state: SpeedState, meta: SnapshotMeta, states: SegmentStatesEncoder = createSegmentStatesEncoder()): Uint8Array {
  const work = captureSnapshot(state, meta, states);
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
  }
}

/**
 * Encodes `state` as a snapshot of the state as it is when called, letting the event loop run
 * (queries, events, other actors) every `sliceMs` of encoding: a large state no longer stalls its
 * node. Only the capture, at the call, is done at once: it copies the states that changed since
 * the previous snapshot of `states`.
 */
export async function encodeSnapshotInSlices(state: SpeedState, meta: SnapshotMeta, states: SegmentStatesEncoder, sliceMs: number): Promise<Uint8Array> {
  const work = captureSnapshot(state, meta, states);
  let sliceStart = performance.now();
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
    if (performance.now() - sliceStart >= sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
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
    const states = decodeSegmentStates(s.m, catalog);
    const closedByRun = s.c === null ? null : num(s.c, "closedByRun");
    return { openedAfterRun: num(s.o, "openedAfterRun"), closedByRun, firstSeq: num(s.f, "firstSeq"), lastSeq: num(s.l, "lastSeq"), events: num(s.n, "events"), states };
  });
  if (segments.length === 0 || segments[segments.length - 1]!.closedByRun !== null) {
    return { kind: "unusable", reason: "no open segment" };
  }
  // Copied into a buffer of its own: the decoded bytes may sit at any offset of a shared one.
  const hashes = new Float64Array(new Uint8Array(snap.ids).buffer);
  // dedupeHorizonOf keeps the newest ids the horizon holds (more than dedupeHorizonIds by up to
  // one generation, as the compact horizon did when it wrote them), also when it has shrunk since.
  const seenIds = dedupeHorizonOf(hashes, Math.max(0, dedupeHorizonIds));
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
