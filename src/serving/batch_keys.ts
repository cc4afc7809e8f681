/**
 * Skips batch-view reads for keys a view version does not hold. A key seen for the first time
 * (a new user, a new article: what the freshness figure asks for every probe) has no row in
 * batch view N, yet a read of it went to ClickHouse every time, because the batch cache only
 * keeps what a read returned: 7–9 ms at p50 and up to ~35 ms behind other chDB work, most of
 * such a query's time while its speed part took ~3 ms.
 *
 * So, per (run, metric), the set of keys view version `run` holds is read once (the first
 * query at that run starts the read and does not wait for it) and kept: a key not in it has
 * no batch states in any range at that run, and is answered without a read. Exact, because a
 * version never changes once its watermark is published: a key absent from version N is read
 * as usual at version N+1, which has a set of its own. Until a set is loaded, when its read
 * failed (retried after a pause), for a version with more than `maxKeysPerSet` keys, and for
 * a top-k (every key), reads go through unchanged.
 *
 * Bounded: the sets of the two newest runs per metric are kept (an answer at an older run
 * reads as before), and at most `maxKeys` keys across all sets.
 */
import type { MetricDef } from "../core/catalog.js";
import type { BatchKeys, BatchStates } from "../ch/views.js";
import type { BatchReader } from "./query.js";

/** Reads the keys of view version `run` of `metric`, up to `limit` of them (ch/views.ts readBatchKeys). */
export type BatchKeysReader = (metric: MetricDef, run: number, limit: number) => Promise<BatchKeys>;

export interface KeyFilterOptions {
  /** Keys one set may hold; a version with more keeps no set (its reads go through). @default 200_000 */
  readonly maxKeysPerSet?: number;
  /** Keys all sets together may hold. @default 400_000 */
  readonly maxKeys?: number;
  /** Pause before a failed set read is tried again, in ms. @default 5_000 */
  readonly retryMs?: number;
  /** Told when a set read fails (the reads go through meanwhile). */
  readonly onError?: (err: unknown, metric: string, run: number) => void;
  /** Clock for the retry pause, in ms. @default Date.now */
  readonly now?: () => number;
}

export interface KeyFilteredBatchReader {
  readonly read: BatchReader;
  /** Reads skipped (every key absent), reads narrowed to fewer keys, sets held and their keys. */
  stats(): { skipped: number; narrowed: number; sets: number; keys: number };
}

/** Runs per metric whose sets are kept: the watermark's and the one before (answers in flight at a moving watermark). */
const RUNS_KEPT = 2;

type SetState = { kind: "loading" } | { kind: "keys"; keys: ReadonlySet<string> } | { kind: "none" } | { kind: "failed"; retryAt: number };

const EMPTY: BatchStates = new Map();

export function keyFilteredBatchReader(read: BatchReader, readKeys: BatchKeysReader, opts: KeyFilterOptions = {}): KeyFilteredBatchReader {
  const maxKeysPerSet = opts.maxKeysPerSet ?? 200_000;
  const maxKeys = opts.maxKeys ?? 400_000;
  const retryMs = opts.retryMs ?? 5_000;
  const now = opts.now ?? Date.now;
  // metric name → run → its set's state.
  const byMetric = new Map<string, Map<number, SetState>>();
  let held = 0;
  let skipped = 0;
  let narrowed = 0;

  const release = (s: SetState | undefined) => {
    if (s?.kind === "keys") held -= s.keys.size;
  };
  /** Starts reading the set of (metric, run); the runs of `metric` older than the RUNS_KEPT newest go. */
  const load = (metric: MetricDef, run: number, runs: Map<number, SetState>) => {
    const loading: SetState = { kind: "loading" };
    runs.set(run, loading);
    for (const r of [...runs.keys()].sort((a, b) => b - a).slice(RUNS_KEPT)) {
      release(runs.get(r));
      runs.delete(r);
    }
    if (!runs.has(run)) return; // older than the runs kept: reads go through
    const limit = Math.min(maxKeysPerSet, maxKeys - held);
    if (limit <= 0) {
      runs.set(run, { kind: "none" });
      return;
    }
    readKeys(metric, run, limit).then(
      (r) => {
        if (runs.get(run) !== loading) return; // dropped meanwhile
        if (r.kind === "keys" && r.keys.size <= maxKeys - held) {
          runs.set(run, { kind: "keys", keys: r.keys });
          held += r.keys.size;
        } else runs.set(run, { kind: "none" });
      },
      (err) => {
        if (runs.get(run) === loading) runs.set(run, { kind: "failed", retryAt: now() + retryMs });
        opts.onError?.(err, metric.name, run);
      },
    );
  };

  return {
    read(metric: MetricDef, run: number, keys: readonly string[] | null, fromMs: number, toMs: number): Promise<BatchStates> {
      if (keys === null) return read(metric, run, keys, fromMs, toMs);
      let runs = byMetric.get(metric.name);
      if (!runs) byMetric.set(metric.name, (runs = new Map()));
      const s = runs.get(run);
      if (s === undefined || (s.kind === "failed" && now() >= s.retryAt)) load(metric, run, runs);
      if (s?.kind !== "keys") return read(metric, run, keys, fromMs, toMs);
      const present = keys.filter((k) => s.keys.has(k));
      if (present.length === 0) {
        skipped++;
        return Promise.resolve(EMPTY);
      }
      if (present.length < keys.length) narrowed++;
      return read(metric, run, present.length < keys.length ? present : keys, fromMs, toMs);
    },
    stats() {
      let sets = 0;
      for (const runs of byMetric.values()) for (const s of runs.values()) if (s.kind === "keys") sets++;
      return { skipped, narrowed, sets, keys: held };
    },
  };
}
