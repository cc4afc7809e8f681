/**
 * A cache of batch-view reads. A batch view version never changes once its
 * watermark is published, so a read keyed by (run, metric, keys, range) stays
 * true until the entry is evicted; a newer watermark simply asks for other
 * keys. Least recently used entries go first.
 */
import type { MetricDef } from "../core/catalog.js";
import type { BatchStates } from "../ch/views.js";
import type { BatchReader } from "./query.js";

/** Entries kept by default. */
export const BATCH_CACHE_ENTRIES = 4_096;

export interface CachedBatchReader {
  readonly read: BatchReader;
  stats(): { hits: number; misses: number; entries: number };
}

export function cachedBatchReader(read: BatchReader, maxEntries = BATCH_CACHE_ENTRIES): CachedBatchReader {
  const entries = new Map<string, Promise<BatchStates>>();
  let hits = 0;
  let misses = 0;
  return {
    read(metric: MetricDef, run: number, keys: readonly string[] | null, rawFromMs: number, rawToMs: number) {
      // Windows count by their start, and starts are multiples of the window: rounding both
      // bounds up to a window start selects the same windows, and "the last hour until now"
      // then hits the cache for a whole window instead of missing on every call.
      const fromMs = Math.ceil(rawFromMs / metric.windowMs) * metric.windowMs;
      const toMs = Math.ceil(rawToMs / metric.windowMs) * metric.windowMs;
      if (fromMs >= toMs) return Promise.resolve<BatchStates>(new Map());
      const k = `${run}\u0000${metric.name}\u0000${fromMs}\u0000${toMs}\u0000${keys === null ? "*" : keys.join("\u0001")}`;
      const hit = entries.get(k);
      if (hit) {
        hits++;
        entries.delete(k); // re-insert: most recently used last
        entries.set(k, hit);
        return hit;
      }
      misses++;
      const p = read(metric, run, keys, fromMs, toMs);
      entries.set(k, p);
      // A failed read must not be served from the cache.
      p.catch(() => entries.delete(k));
      while (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
      return p;
    },
    stats: () => ({ hits, misses, entries: entries.size }),
  };
}
