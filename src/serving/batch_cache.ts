/**
 * A cache of batch-view reads. A batch view version never changes once its watermark is
 * published, so what was read of version N stays true until it is evicted; a newer watermark
 * simply asks for version N+1 under other cache keys.
 *
 * The cache holds, per (run, metric, key), the key's windows in fixed blocks of BLOCK_WINDOWS
 * windows (block b holds the windows starting in [b·span, (b+1)·span), span = BLOCK_WINDOWS ·
 * window), and cuts any range asked out of them in memory. So a range that slides with the
 * clock ("the last 30 minutes, now") hits once its key's blocks were read, and a many-key call
 * reads only the keys not held yet. An entry always holds a whole block of its key, read from
 * the version with its marker checked (ch/views.ts), so cutting it gives what a read of the range
 * would. A top-k (every key) caches whole blocks of every key the same way, under the key "*".
 * A range wider than MAX_BLOCKS_PER_READ blocks is cached as it was asked, as one entry.
 *
 * Entries are bounded by the window states they hold, least recently used first out. The maps
 * and states handed out are the cache's own (a key's map is handed out whole when the range
 * covers it): callers merge them into new states and never change them.
 */
import type { AggState } from "../core/aggregate.js";
import type { MetricDef } from "../core/catalog.js";
import type { BatchStates } from "../ch/views.js";
import { BATCH_CACHE_STATES } from "../core/config.js";
import type { BatchReader } from "./query.js";

/** Windows of one key per cache block. */
export const BLOCK_WINDOWS = 128;
/** Widest range, in blocks, read and kept block by block; a wider one is kept as one entry for its exact range. */
export const MAX_BLOCKS_PER_READ = 64;

export interface CachedBatchReader {
  readonly read: BatchReader;
  /** Reads answered without ClickHouse (hits) and with (misses); entries and window states held. */
  stats(): { hits: number; misses: number; entries: number; states: number };
}

/** One key's windows in an entry, with the first and last window start (to hand the map out whole when the range covers it). */
interface KeyWindows {
  readonly windows: ReadonlyMap<number, AggState>;
  readonly firstMs: number;
  readonly lastMs: number;
  /** The last part of `windows` cut out for a range: the same range again (a dashboard's refresh) reuses it. */
  lastCut?: { readonly fromMs: number; readonly toMs: number; readonly windows: ReadonlyMap<number, AggState> };
  /** The last join of this block's windows with the next blocks' (`rest`) for a range across their ends: reused as lastCut is. */
  lastJoin?: { readonly fromMs: number; readonly toMs: number; readonly rest: readonly KeyWindows[]; readonly windows: ReadonlyMap<number, AggState> };
}

/** What one cache entry holds: the windows of its key (or of every key) in its block or range. */
type Held = ReadonlyMap<string, KeyWindows>;

interface Entry {
  /** Null while its read is in flight. */
  value: Held | null;
  readonly loaded: Promise<Held>;
  /** Window states in `value` (0 while in flight). */
  size: number;
  /** The read call that used it last (for least-recently-used eviction). */
  usedAt: number;
  /** Where it is kept: its group's id and its name in the group. */
  readonly groupId: string;
  readonly name: string;
}

/** The windows of `key` (null: every key) among `states` that start in [fromMs, toMs). */
function cut(states: BatchStates, key: string | null, fromMs: number, toMs: number): Held {
  const out = new Map<string, KeyWindows>();
  const keep = (k: string, windows: ReadonlyMap<number, AggState>) => {
    const kept = new Map<number, AggState>();
    let firstMs = Infinity;
    let lastMs = -Infinity;
    for (const [w, st] of windows) {
      if (w < fromMs || w >= toMs) continue;
      kept.set(w, st);
      if (w < firstMs) firstMs = w;
      if (w > lastMs) lastMs = w;
    }
    if (kept.size > 0) out.set(k, { windows: kept, firstMs, lastMs });
  };
  if (key === null) for (const [k, windows] of states) keep(k, windows);
  else {
    const windows = states.get(key);
    if (windows) keep(key, windows);
  }
  return out;
}

/** The windows of `kw` in [fromMs, toMs): its map itself when the range covers it, else a cut kept for the next call. */
function windowsIn(kw: KeyWindows, fromMs: number, toMs: number): ReadonlyMap<number, AggState> {
  if (kw.firstMs >= fromMs && kw.lastMs < toMs) return kw.windows;
  const memo = kw.lastCut;
  if (memo && memo.fromMs === fromMs && memo.toMs === toMs) return memo.windows;
  const windows = new Map<number, AggState>();
  for (const [w, st] of kw.windows) if (w >= fromMs && w < toMs) windows.set(w, st);
  kw.lastCut = { fromMs, toMs, windows };
  return windows;
}

/**
 * The windows in [fromMs, toMs) of a key held in several parts (a range across a block's end), in
 * one new map; kept on the first part's entry with the others it was joined with, so the same
 * range again (a dashboard's refresh) gets the same map, as for a key in one part.
 */
function joined(kws: readonly KeyWindows[], fromMs: number, toMs: number): ReadonlyMap<number, AggState> {
  const [first, ...rest] = kws as [KeyWindows, ...KeyWindows[]];
  const memo = first.lastJoin;
  if (memo && memo.fromMs === fromMs && memo.toMs === toMs && memo.rest.length === rest.length && memo.rest.every((kw, i) => kw === rest[i])) return memo.windows;
  const windows = new Map<number, AggState>();
  for (const kw of kws) for (const [w, st] of kw.windows) if (w >= fromMs && w < toMs) windows.set(w, st);
  first.lastJoin = { fromMs, toMs, rest, windows };
  return windows;
}

/**
 * The windows in [fromMs, toMs) of every key in `parts`. A key one part holds gets that part's
 * map, or its cut for the range; a key in several parts their join (each kept for the next call
 * with the same range). The cache's own maps are never changed.
 */
function assemble(parts: readonly Held[], fromMs: number, toMs: number): BatchStates {
  const out: BatchStates = new Map();
  if (parts.length === 1) {
    for (const [key, kw] of parts[0]!) {
      const windows = windowsIn(kw, fromMs, toMs);
      if (windows.size > 0) out.set(key, windows as Map<number, AggState>);
    }
    return out;
  }
  const byKey = new Map<string, KeyWindows[]>();
  for (const part of parts) {
    for (const [key, kw] of part) {
      const kws = byKey.get(key);
      if (kws) kws.push(kw);
      else byKey.set(key, [kw]);
    }
  }
  for (const [key, kws] of byKey) {
    const windows = kws.length === 1 ? windowsIn(kws[0]!, fromMs, toMs) : joined(kws, fromMs, toMs);
    if (windows.size > 0) out.set(key, windows as Map<number, AggState>);
  }
  return out;
}

const statesIn = (h: Held): number => {
  let n = 0;
  for (const kw of h.values()) n += kw.windows.size;
  return n;
};

/** Share of the bound the cache shrinks to when it evicts, so that eviction (a sort) runs once per many reads. */
const EVICT_TO_SHARE = 0.9;

/**
 * Caches `read`, holding at most `maxStates` window states (the least recently used go first);
 * with 0 every read goes to `read` and counts as a miss.
 */
export function cachedBatchReader(read: BatchReader, maxStates = BATCH_CACHE_STATES): CachedBatchReader {
  if (maxStates === 0) {
    let misses = 0;
    return {
      read: (...args) => {
        misses++;
        return read(...args);
      },
      stats: () => ({ hits: 0, misses, entries: 0, states: 0 }),
    };
  }
  // Entries in groups of one block (or one wide range) of one run and metric, by key: a read
  // builds one id string per block, not one per key.
  const groups = new Map<string, Map<string, Entry>>();
  let count = 0;
  let held = 0;
  let hits = 0;
  let misses = 0;
  let clock = 0;

  const drop = (e: Entry) => {
    const group = groups.get(e.groupId);
    if (group?.get(e.name) !== e) return;
    group.delete(e.name);
    if (group.size === 0) groups.delete(e.groupId);
    count--;
    held -= e.size;
  };
  /** Drops the least recently used entries (never `keep`, just read) until the bound holds again with room. */
  const evict = (keep: Entry) => {
    if (held <= maxStates) return;
    const loaded: Entry[] = [];
    for (const group of groups.values()) for (const e of group.values()) if (e.value !== null && e !== keep) loaded.push(e);
    loaded.sort((a, b) => a.usedAt - b.usedAt);
    for (const e of loaded) {
      if (held <= maxStates * EVICT_TO_SHARE) break;
      drop(e);
    }
  };
  /** Stores an entry for `loaded`; it counts once its read is done, and a failed read leaves no entry. */
  const store = (groupId: string, name: string, loaded: Promise<Held>): Entry => {
    const e: Entry = { value: null, loaded, size: 0, usedAt: clock, groupId, name };
    let group = groups.get(groupId);
    if (!group) groups.set(groupId, (group = new Map()));
    group.set(name, e);
    count++;
    loaded.then(
      (value) => {
        e.value = value;
        if (groups.get(groupId)?.get(name) !== e) return; // evicted while in flight
        e.size = statesIn(value);
        held += e.size;
        evict(e);
      },
      () => drop(e),
    );
    return e;
  };
  /** The entry `name` of group `groupId`, marked used by this read; undefined when there is none. */
  const touch = (group: Map<string, Entry> | undefined, name: string): Entry | undefined => {
    const e = group?.get(name);
    if (e) e.usedAt = clock;
    return e;
  };

  /** A range too wide for blocks: one entry for exactly it (the keys in the order asked). */
  const readWide = (metric: MetricDef, run: number, keys: readonly string[] | null, fromMs: number, toMs: number): Promise<BatchStates> => {
    const groupId = `${run}\u0000${metric.name}\u0000${fromMs}\u0000${toMs}\u0000range`;
    const name = keys === null ? "*" : `k${keys.join("\u0001")}`;
    let e = touch(groups.get(groupId), name);
    if (e) hits++;
    else {
      misses++;
      e = store(groupId, name, read(metric, run, keys, fromMs, toMs).then((states) => cut(states, null, fromMs, toMs)));
    }
    return e.value ? Promise.resolve(assemble([e.value], fromMs, toMs)) : e.loaded.then((h) => assemble([h], fromMs, toMs));
  };

  return {
    read(metric: MetricDef, run: number, keys: readonly string[] | null, rawFromMs: number, rawToMs: number) {
      // Windows count by their start, and starts are multiples of the window: rounding both
      // bounds up to a window start selects the same windows.
      const windowMs = metric.windowMs;
      const fromMs = Math.ceil(rawFromMs / windowMs) * windowMs;
      const toMs = Math.ceil(rawToMs / windowMs) * windowMs;
      if (fromMs >= toMs) return Promise.resolve<BatchStates>(new Map());
      const spanMs = windowMs * BLOCK_WINDOWS;
      const firstBlock = Math.floor(fromMs / spanMs);
      const lastBlock = Math.floor((toMs - windowMs) / spanMs);
      clock++;
      if (lastBlock - firstBlock + 1 > MAX_BLOCKS_PER_READ) return readWide(metric, run, keys, fromMs, toMs);

      // Every key's states (a top-k) are a group of their own, apart from the single keys'.
      const names: readonly string[] = keys === null ? [""] : [...new Set(keys)];
      const prefix = `${run}\u0000${metric.name}\u0000`;
      const parts: Entry[] = [];
      // Blocks and keys not held yet: read in one query spanning the blocks that miss any key.
      const missingKeys = new Set<string>();
      const missing: { groupId: string; key: string; block: number }[] = [];
      let lo = lastBlock;
      let hi = firstBlock;
      for (let b = firstBlock; b <= lastBlock; b++) {
        const groupId = `${prefix}${b}\u0000${keys === null ? "*" : "k"}`;
        const group = groups.get(groupId);
        for (const key of names) {
          const e = touch(group, key);
          if (e) parts.push(e);
          else {
            missing.push({ groupId, key, block: b });
            missingKeys.add(key);
            lo = Math.min(lo, b);
            hi = Math.max(hi, b);
          }
        }
      }
      if (missing.length === 0) hits++;
      else {
        misses++;
        const loaded = read(metric, run, keys === null ? null : [...missingKeys], lo * spanMs, (hi + 1) * spanMs);
        for (const m of missing) parts.push(store(m.groupId, m.key, loaded.then((states) => cut(states, keys === null ? null : m.key, m.block * spanMs, (m.block + 1) * spanMs))));
      }
      // Everything held and read already: answer without waiting for a promise per entry.
      if (parts.every((e) => e.value !== null)) return Promise.resolve(assemble(parts.map((e) => e.value!), fromMs, toMs));
      return Promise.all(parts.map((e) => e.loaded)).then((values) => assemble(values, fromMs, toMs));
    },
    stats: () => ({ hits, misses, entries: count, states: held }),
  };
}
