/**
 * The aggregate states of a speed actor's segments as its snapshot holds them, encoded once and
 * re-encoded only where they changed.
 *
 * A snapshot is written every few seconds, and encoding the whole state each time stalled the
 * speed node's event loop for tens of milliseconds per partition (docs/performance.md, section
 * 5). Most of a state does not change between two snapshots: a closed segment never receives
 * another event, and in the open one an event touches one window of one key per definition. So
 * each (segment, definition) is kept encoded as one block, a msgpack array of `[key, [window,
 * state][]]` entries, and the next snapshot copies the bytes of every key, and of every window of
 * a key, that did not change, and encodes only the others.
 *
 * Whether a window changed is read from its state without any help from speed_state.ts: a state
 * changes only through `addEvent` (core/aggregate.ts), which increments its event count `n`, and
 * a key's windows are only ever added, in order. So a window whose start and `n` are those its
 * cached entry recorded holds exactly the state that entry encodes. A segment that was closed
 * when its block was built (closedByRun set) is final and is not looked at again.
 */
import { decodeState, emptyState, encodeState, mergeState, type AggState } from "../core/aggregate.js";
import type { MetricDef } from "../core/catalog.js";
import { decode, encode } from "../nats/codec.js";
import type { MetricStates, Segment, SpeedCatalog } from "./speed_state.js";

/** One segment's states: [definition fingerprint, msgpack array of [key, [window, state][]]][]. */
export type EncodedSegmentStates = [fingerprint: string, block: Uint8Array][];

interface KeyEntry {
  /** Where the key's `[key, [window, state][]]` entry lies in its block's bytes. */
  readonly start: number;
  readonly end: number;
  /**
   * What the entry encodes and where, flat: the end of its head (from `start`), then per window
   * in the key's order: window start, end of the window's entry (from `start`), event count.
   */
  readonly layout: readonly number[];
}

interface StatesBlock {
  readonly bytes: Uint8Array;
  readonly keys: ReadonlyMap<string, KeyEntry>;
  /** Built after its segment closed: nothing in it can change any more. */
  readonly final: boolean;
}

/**
 * Work done in steps: each `yield` is a point where the caller may let the event loop run
 * (snapshot.ts encodeSnapshotInSlices). Everything the work reads was captured before its first
 * step, so what happens meanwhile does not change its result.
 */
export type SteppedWork<T> = Generator<void, T, void>;

/** Encodes the states of segments for snapshots, keeping what it encoded for the next snapshot of the same segments. */
export interface SegmentStatesEncoder {
  /**
   * Captures `segment`'s states as they are now, at once: the windows that changed since the
   * encoder's previous snapshot are copied, the others are bytes encoded before. The returned work
   * encodes the copies. Run one capture's work to its end before the next capture.
   * @throws Error when the segment holds states of a definition `catalog` lacks (never, for an actor's own catalog).
   */
  capture(segment: Segment, catalog: SpeedCatalog): SteppedWork<EncodedSegmentStates>;
}

/** How a window of a key gets into the new block: bytes of the previous block, or a copy of its state to encode. */
type WindowPlan = { readonly w: number; readonly n: number } & ({ readonly start: number; readonly end: number } | { readonly copy: AggState });

/** A key of the new block: its entry in the previous block as it is, or window by window. */
type KeyPlan = { readonly key: string } & ({ readonly whole: KeyEntry } | { readonly windows: readonly WindowPlan[] });

/** A definition's block in the new snapshot: the previous one as it is, or built key by key. */
type BlockPlan = { readonly fingerprint: string } & ({ readonly reuse: StatesBlock } | { readonly previous: StatesBlock | undefined; readonly final: boolean; readonly keys: readonly KeyPlan[] });

/** An encoder with an empty cache; a segment dropped from the state drops out of the cache with it. */
export function createSegmentStatesEncoder(): SegmentStatesEncoder {
  const cache = new WeakMap<Segment, Map<string, StatesBlock>>();
  return {
    capture(segment, catalog) {
      let blocks = cache.get(segment);
      if (!blocks) cache.set(segment, (blocks = new Map()));
      const plans: BlockPlan[] = [];
      for (const [fingerprint, byKey] of segment.states) {
        const previous = blocks.get(fingerprint);
        if (previous?.final) {
          plans.push({ fingerprint, reuse: previous });
          continue;
        }
        const metric = catalog.byFingerprint.get(fingerprint);
        if (!metric) throw new Error(`a segment holds states of definition ${fingerprint}, which the actor's catalog lacks`);
        plans.push(planBlock(fingerprint, byKey, previous, segment.closedByRun !== null, metric));
      }
      // Definitions no longer computed (retainDefinitions) leave the cache too.
      if (blocks.size > segment.states.size) for (const fingerprint of blocks.keys()) if (!segment.states.has(fingerprint)) blocks.delete(fingerprint);
      const into = blocks;
      return (function* () {
        const out: EncodedSegmentStates = [];
        for (const plan of plans) {
          const block = "reuse" in plan ? plan.reuse : yield* buildBlock(plan);
          into.set(plan.fingerprint, block);
          out.push([plan.fingerprint, block.bytes]);
        }
        return out;
      })();
    },
  };
}

/** Whether `cached` encodes the windows of `byWindow` exactly: same windows in the same order, same event counts. */
function unchanged(cached: KeyEntry, byWindow: ReadonlyMap<number, AggState>): boolean {
  if (cached.layout.length !== 1 + 3 * byWindow.size) return false;
  let i = 1;
  for (const [w, st] of byWindow) {
    if (cached.layout[i] !== w || cached.layout[i + 2] !== st.n) return false;
    i += 3;
  }
  return true;
}

/** A copy of `st`, equal to it as state (and so in its encoding), that later events do not touch. */
function copyState(metric: MetricDef, st: AggState): AggState {
  const copy = emptyState(metric);
  mergeState(copy, st);
  return copy;
}

function planBlock(fingerprint: string, byKey: MetricStates, previous: StatesBlock | undefined, final: boolean, metric: MetricDef): BlockPlan {
  const keys: KeyPlan[] = [];
  let changed = previous === undefined || previous.keys.size !== byKey.size;
  for (const [key, byWindow] of byKey) {
    const cached = previous?.keys.get(key);
    if (cached && unchanged(cached, byWindow)) {
      keys.push({ key, whole: cached });
      continue;
    }
    changed = true;
    const windows: WindowPlan[] = [];
    let i = 0;
    for (const [w, st] of byWindow) {
      const at = 1 + 3 * i;
      if (cached && cached.layout[at] === w && cached.layout[at + 2] === st.n) {
        const from = i === 0 ? cached.layout[0]! : cached.layout[at - 2]!;
        windows.push({ w, n: st.n, start: cached.start + from, end: cached.start + cached.layout[at + 1]! });
      } else {
        windows.push({ w, n: st.n, copy: copyState(metric, st) });
      }
      i++;
    }
    keys.push({ key, windows });
  }
  if (!changed) return { fingerprint, reuse: final ? { ...previous!, final } : previous! };
  return { fingerprint, previous, final, keys };
}

/** Builds a block from its plan, encoding the copied states; yields after each of them. */
function* buildBlock(plan: Extract<BlockPlan, { keys: unknown }>): SteppedWork<StatesBlock> {
  const { previous } = plan;
  const pieces: Uint8Array[] = [arrayHeader(plan.keys.length)];
  const keys = new Map<string, KeyEntry>();
  let length = pieces[0]!.length;
  const add = (piece: Uint8Array) => {
    pieces.push(piece);
    length += piece.length;
  };
  for (const k of plan.keys) {
    const start = length;
    if ("whole" in k) {
      add(previous!.bytes.subarray(k.whole.start, k.whole.end));
      keys.set(k.key, { start, end: length, layout: k.whole.layout });
      continue;
    }
    // [key, [window, state][]], written piece by piece so that the windows whose states did not change are copied.
    add(FIXARRAY_OF_TWO);
    add(encode(k.key).slice());
    add(arrayHeader(k.windows.length));
    const layout = [length - start];
    for (const w of k.windows) {
      if ("copy" in w) {
        // Copied out of the codec's buffer, which every other encode shares while this work pauses.
        add(encode([w.w, encodeState(w.copy)]).slice());
        yield;
      } else {
        add(previous!.bytes.subarray(w.start, w.end));
      }
      layout.push(w.w, length - start, w.n);
    }
    keys.set(k.key, { start, end: length, layout });
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const piece of pieces) {
    bytes.set(piece, offset);
    offset += piece.length;
  }
  return { bytes, keys, final: plan.final };
}

const FIXARRAY_OF_TWO = Uint8Array.of(0x92);

/** The msgpack header of an array of `n` elements (fixarray, array 16 or array 32). */
function arrayHeader(n: number): Uint8Array {
  if (n < 16) return Uint8Array.of(0x90 | n);
  if (n < 0x10000) return Uint8Array.of(0xdc, n >>> 8, n & 0xff);
  return Uint8Array.of(0xdd, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/**
 * Decodes one segment's states, keeping the definitions `catalog` computes (the others were
 * replaced by a run's definitions).
 * @throws TypeError when the states are malformed: the caller treats the snapshot as unusable.
 */
export function decodeSegmentStates(encoded: unknown, catalog: SpeedCatalog): Map<string, MetricStates> {
  if (!Array.isArray(encoded)) throw new TypeError("segment states are not a list");
  const states = new Map<string, MetricStates>();
  for (const entry of encoded as unknown[]) {
    if (!Array.isArray(entry) || typeof entry[0] !== "string" || !(entry[1] instanceof Uint8Array)) throw new TypeError("segment states are not [definition, bytes] pairs");
    const [fingerprint, block] = entry as [string, Uint8Array];
    const def = catalog.byFingerprint.get(fingerprint);
    if (!def) continue; // a definition no longer computed: a run has adopted its replacement
    const keys = decode<unknown>(block);
    if (!Array.isArray(keys)) throw new TypeError(`the states of ${def.name} are not a list`);
    states.set(fingerprint, new Map((keys as [string, [number, unknown][]][]).map(([k, ws]) => [k, new Map(ws.map(([w, st]): [number, AggState] => [w, decodeState(def, st)]))])));
  }
  return states;
}
