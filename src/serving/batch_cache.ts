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
 * Entries are bounded by the window states they hold, least recently used first out. The states
 * handed out are the cache's own: callers merge them into new states and never change them.
 */
import type { AggState } from "../core/aggregate.js";
import type { MetricDef } from "../core/catalog.js";
import type { BatchStates } from "../ch/views.js";
import type { BatchReader } from "./query.js";

/** Windows of one key per cache block. */
export const BLOCK_WINDOWS = 128;
/** Widest range, in blocks, read and kept block by block; a wider one is kept as one entry for its exact range. */
export const MAX_BLOCKS_PER_READ = 64;
/** Window states the cache holds at most; the least recently used entries go first. */
export const BATCH_CACHE_STATES = 1_000_000;

export interface CachedBatchReader {
  readonly read: BatchReader;
  /** Reads answered without ClickHouse (hits) and with (misses); entries and window states held. */
  stats(): { hits: number; misses: number; entries: number; states: number };
}

/** What one cache entry holds: the states of its key (or of every key) in its block or range. */
interface Entry {
  /** Null while its read is in flight. */
  value: BatchStates | null;
  readonly loaded: Promise<BatchStates>;
  /** Window states in `value` (0 while in flight). */
  size: number;
}


/** The states of `key` (null: every key) among `states` whose window starts in [fromMs, toMs). */
function cut(states: BatchStates, key: string | null, fromMs: number, toMs: number): BatchStates {
  const out: BatchStates = new Map();
  const keep = (k: string, windows: ReadonlyMap<number, AggState>) => {
    const kept = new Map<number, AggState>();
    for (const [w, st] of windows) if (w >= fromMs && w < toMs) kept.set(w, st);
    if (kept.size > 0) out.set(k, kept);
  };
  if (key === null) for (const [k, windows] of states) keep(k, windows);
  else {
    const windows = states.get(key);
    if (windows) keep(key, windows);
  }
  return out;
}

const statesIn = (s: BatchStates): number => {
  let n = 0;
  for (const windows of s.values()) n += windows.size;
  return n;
};

export function cachedBatchReader(read: BatchReader, maxStates = BATCH_CACHE_STATES): CachedBatchReader {
  const entries = new Map<string, Entry>();
  let held = 0;
  let hits = 0;
  let misses = 0;

  const evict = () => {
    for (const [id, e] of entries) {
      if (held <= maxStates || entries.size <= 1) break;
      entries.delete(id);
      held -= e.size;
    }
  };
  /** Stores an entry for `loaded`; it counts once its read is done, and a failed read leaves no entry. */
  const store = (id: string, loaded: Promise<BatchStates>): Entry => {
    const e: Entry = { value: null, loaded, size: 0 };
    entries.set(id, e);
    loaded.then(
      (value) => {
        e.value = value;
        if (entries.get(id) !== e) return; // evicted while in flight
        e.size = statesIn(value);
        held += e.size;
        evict();
      },
      () => {
        if (entries.get(id) === e) entries.delete(id);
      },
    );
    return e;
  };
  /** The entry under `id`, now the most recently used; undefined when there is none. */
  const touch = (id: string): Entry | undefined => {
    const e = entries.get(id);
    if (e) {
      entries.delete(id);
      entries.set(id, e);
    }
    return e;
  };

  /** A range too wide for blocks: one entry for exactly it (the keys in the order asked). */
  const readWide = (metric: MetricDef, run: number, keys: readonly string[] | null, fromMs: number, toMs: number): Promise<BatchStates> => {
    const id = `${run}\u0000${metric.name}\u0000range\u0000${fromMs}\u0000${toMs}\u0000${keys === null ? "*" : `k${keys.join("\u0001")}`}`;
    const hit = touch(id);
    if (hit) {
      hits++;
      return hit.loaded;
    }
    misses++;
    return store(id, read(metric, run, keys, fromMs, toMs)).loaded;
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
      if (lastBlock - firstBlock + 1 > MAX_BLOCKS_PER_READ) return readWide(metric, run, keys, fromMs, toMs);

      // Every key's states (a top-k) are entries of their own, apart from any one key's.
      const names: (string | null)[] = keys === null ? [null] : [...new Set(keys)];
      const prefix = `${run}\u0000${metric.name}\u0000`;
      const parts: Entry[] = [];
      // Blocks and keys not held yet: read in one query spanning the blocks that miss any key.
      const missingKeys = new Set<string>();
      const missing: { id: string; key: string | null; block: number }[] = [];
      let lo = lastBlock;
      let hi = firstBlock;
      for (let b = firstBlock; b <= lastBlock; b++) {
        for (const key of names) {
          const id = key === null ? `${prefix}${b}\u0000*` : `${prefix}${b}\u0000k${key}`;
          const e = touch(id);
          if (e) parts.push(e);
          else {
            missing.push({ id, key, block: b });
            if (key !== null) missingKeys.add(key);
            lo = Math.min(lo, b);
            hi = Math.max(hi, b);
          }
        }
      }
      if (missing.length === 0) hits++;
      else {
        misses++;
        const loaded = read(metric, run, keys === null ? null : [...missingKeys], lo * spanMs, (hi + 1) * spanMs);
        for (const m of missing) parts.push(store(m.id, loaded.then((states) => cut(states, m.key, m.block * spanMs, (m.block + 1) * spanMs))));
      }
      const assemble = (values: readonly BatchStates[]): BatchStates => {
        const out: BatchStates = new Map();
        for (const part of values) {
          for (const [key, windows] of part) {
            let into = out.get(key);
            for (const [w, st] of windows) {
              if (w < fromMs || w >= toMs) continue;
              if (!into) out.set(key, (into = new Map()));
              into.set(w, st);
            }
          }
        }
        return out;
      };
      // Everything held and read already: answer without waiting for a promise per entry.
      if (parts.every((e) => e.value !== null)) return Promise.resolve(assemble(parts.map((e) => e.value!)));
      return Promise.all(parts.map((e) => e.loaded)).then(assemble);
    },
    stats: () => ({ hits, misses, entries: entries.size, states: held }),
  };
}
