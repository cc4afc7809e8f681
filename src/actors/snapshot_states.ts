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
import { decodeState, encodeState, type AggState } from "../core/aggregate.js";
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

/** Encodes the states of segments for snapshots, keeping what it encoded for the next snapshot of the same segments. */
export interface SegmentStatesEncoder {
  encode(segment: Segment): EncodedSegmentStates;
}

/** An encoder with an empty cache; a segment dropped from the state drops out of the cache with it. */
export function createSegmentStatesEncoder(): SegmentStatesEncoder {
  const cache = new WeakMap<Segment, Map<string, StatesBlock>>();
  return {
    encode(segment) {
      let blocks = cache.get(segment);
      if (!blocks) cache.set(segment, (blocks = new Map()));
      const out: EncodedSegmentStates = [];
      for (const [fingerprint, byKey] of segment.states) {
        let block = blocks.get(fingerprint);
        if (!block?.final) {
          block = encodeBlock(byKey, block, segment.closedByRun !== null);
          blocks.set(fingerprint, block);
        }
        out.push([fingerprint, block.bytes]);
      }
      // Definitions no longer computed (retainDefinitions) leave the cache too.
      if (blocks.size > segment.states.size) for (const fingerprint of blocks.keys()) if (!segment.states.has(fingerprint)) blocks.delete(fingerprint);
      return out;
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

function encodeBlock(byKey: MetricStates, previous: StatesBlock | undefined, final: boolean): StatesBlock {
  const pieces: Uint8Array[] = [arrayHeader(byKey.size)];
  const keys = new Map<string, KeyEntry>();
  let length = pieces[0]!.length;
  const add = (piece: Uint8Array) => {
    pieces.push(piece);
    length += piece.length;
  };
  let changed = previous === undefined || previous.keys.size !== byKey.size;
  for (const [key, byWindow] of byKey) {
    const cached = previous?.keys.get(key);
    const start = length;
    if (cached && unchanged(cached, byWindow)) {
      add(previous!.bytes.subarray(cached.start, cached.end));
      keys.set(key, { start, end: length, layout: cached.layout });
      continue;
    }
    changed = true;
    // [key, [window, state][]], written piece by piece so that the windows whose states did not change are copied.
    add(FIXARRAY_OF_TWO);
    add(encode(key));
    add(arrayHeader(byWindow.size));
    const layout = [length - start];
    let i = 0;
    for (const [w, st] of byWindow) {
      const at = 1 + 3 * i;
      if (cached && cached.layout[at] === w && cached.layout[at + 2] === st.n) {
        const from = i === 0 ? cached.layout[0]! : cached.layout[at - 2]!;
        add(previous!.bytes.subarray(cached.start + from, cached.start + cached.layout[at + 1]!));
      } else {
        add(encode([w, encodeState(st)]));
      }
      layout.push(w, length - start, st.n);
      i++;
    }
    keys.set(key, { start, end: length, layout });
  }
  if (!changed) return final ? { ...previous!, final } : previous!;
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const piece of pieces) {
    bytes.set(piece, offset);
    offset += piece.length;
  }
  return { bytes, keys, final };
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
