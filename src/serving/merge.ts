/**
 * The merge at a watermark, pure: batch states (view N) and speed states (the
 * actors' segments above cut N) per key and window, into the answer with its
 * parts.
 */
import { emptyState, finalize, merged, mergeState, valuesOfKey, type AggState } from "../core/aggregate.js";
import type { MetricDef } from "../core/catalog.js";

export interface WindowResult {
  readonly windowStartMs: number;
  readonly value: number | null;
  readonly batchPart: number | null;
  readonly speedPart: number | null;
  readonly events: number;
}

export interface KeyResult {
  readonly key: string;
  readonly group: Readonly<Record<string, string>>;
  /** The aggregate of the merged state. */
  readonly total: number | null;
  /** The aggregate of each side alone (they add up for count and sum). */
  readonly batchPart: number | null;
  readonly speedPart: number | null;
  readonly events: number;
  readonly series: readonly WindowResult[];
}

/** Per key: window start → state, from one side. */
export type SideStates = ReadonlyMap<string, ReadonlyMap<number, AggState>>;

export interface MergeRequest {
  readonly metric: MetricDef;
  readonly aggregateIndex: number;
  readonly quantile: number;
  readonly series: boolean;
}

function sumOver(metric: MetricDef, windows: ReadonlyMap<number, AggState> | undefined): AggState {
  const out = emptyState(metric);
  if (windows) for (const st of windows.values()) mergeState(out, st);
  return out;
}

/**
 * Sum of a batch side's windows, per map. The batch reader hands out its cached maps and never
 * changes them (BatchReader), so a key asked again over the same range (same map) sums its
 * windows once, not on every call; a map dropped from the cache drops its sum with it.
 */
const batchSums = new WeakMap<ReadonlyMap<number, AggState>, AggState>();

function batchSumOver(metric: MetricDef, windows: ReadonlyMap<number, AggState> | undefined): AggState {
  if (!windows) return emptyState(metric);
  let sum = batchSums.get(windows);
  if (!sum) batchSums.set(windows, (sum = sumOver(metric, windows)));
  return sum;
}

export function groupOf(metric: MetricDef, key: string): Record<string, string> {
  const fields = metric.groupBy;
  // One field (the common case): the key is its value.
  if (fields.length === 1) return { [fields[0]!]: key };
  const values = valuesOfKey(key, fields.length);
  return Object.fromEntries(fields.map((f, i) => [f, values[i]!]));
}

/**
 * The answer for one key from both sides' states. `batch` maps must never change once passed
 * (the BatchReader contract): their sums are kept per map.
 */
export function mergeKey(req: MergeRequest, key: string, batch: SideStates, speed: SideStates): KeyResult {
  const { metric, aggregateIndex: i, quantile: q } = req;
  const b = batchSumOver(metric, batch.get(key));
  const s = sumOver(metric, speed.get(key));
  const total = merged(metric, b, s);
  let series: WindowResult[] = [];
  if (req.series) {
    const bw = batch.get(key) ?? new Map<number, AggState>();
    const sw = speed.get(key) ?? new Map<number, AggState>();
    const windows = [...new Set([...bw.keys(), ...sw.keys()])].sort((x, y) => x - y);
    series = windows.map((w) => {
      const bs = bw.get(w);
      const ss = sw.get(w);
      const m = merged(metric, bs, ss);
      return {
        windowStartMs: w,
        value: finalize(m, i, q),
        batchPart: bs ? finalize(bs, i, q) : finalize(merged(metric), i, q),
        speedPart: ss ? finalize(ss, i, q) : finalize(merged(metric), i, q),
        events: m.n,
      };
    });
  }
  return {
    key,
    group: groupOf(metric, key),
    total: finalize(total, i, q),
    batchPart: finalize(b, i, q),
    speedPart: finalize(s, i, q),
    events: total.n,
    series,
  };
}

/** Orders answers for top-k: highest value first, absent values last, ties by key. */
export function compareForTopK(a: KeyResult, b: KeyResult): number {
  if (a.total === null && b.total !== null) return 1;
  if (b.total === null && a.total !== null) return -1;
  if (a.total !== null && b.total !== null && a.total !== b.total) return b.total - a.total;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}
