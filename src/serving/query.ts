/**
 * Answering a query at the watermark: validate, read the batch part from batch
 * view N, ask the actor of each partition involved for the speed part above cut
 * N, merge. An actor that has moved on to run M makes the whole answer retry at
 * M, so batch and speed parts always come from the same cut.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { Catalog } from "../core/catalog.js";
import { InvalidQueryError, UnavailableError } from "../core/errors.js";
import { partitionOfKey } from "../core/events.js";
import type { Watermark } from "../core/watermark.js";
import type { SpeedClient } from "../actors/index.js";
import { readBatchTotal } from "../ch/views.js";
import { mergeAtWatermark, type MergedAnswer, type PartitionPart } from "./merge.js";

/** Longest range a query may span: 10 years of windows. */
export const MAX_QUERY_RANGE_MS = 10 * 366 * 86_400_000;
/** How many times a query restarts at a newer watermark before giving up. */
export const MAX_WATERMARK_RETRIES = 5;

export interface MetricQuery {
  readonly metric: string;
  readonly key: string;
  readonly fromMs: number;
  readonly toMs: number;
}

export interface WatermarkSource {
  /** The newest watermark this node knows, or null before the first run. */
  current(): Watermark | null;
  /** Reads the watermark bucket now (after an actor reported a newer run). */
  refresh(): Promise<Watermark | null>;
}

export interface QueryDeps {
  ch: ClickHouseClient;
  database: string;
  catalog: Catalog;
  partitions: number;
  speed: SpeedClient;
  watermarks: WatermarkSource;
}

/** @throws InvalidQueryError naming the field. */
export function validateQuery(catalog: Catalog, q: MetricQuery): void {
  if (!q.metric) throw new InvalidQueryError("metric", "is required");
  if (!catalog.metrics.has(q.metric)) {
    throw new InvalidQueryError("metric", `unknown metric ${JSON.stringify(q.metric)}; defined: ${[...catalog.metrics.keys()].join(", ")}`);
  }
  if (!q.key) throw new InvalidQueryError("key", "is required");
  if (!Number.isFinite(q.fromMs)) throw new InvalidQueryError("from", "is required (a timestamp)");
  if (!Number.isFinite(q.toMs)) throw new InvalidQueryError("to", "is required (a timestamp)");
  if (q.fromMs >= q.toMs) throw new InvalidQueryError("to", `must be after from (from=${new Date(q.fromMs).toISOString()}, to=${new Date(q.toMs).toISOString()})`);
  if (q.toMs - q.fromMs > MAX_QUERY_RANGE_MS) throw new InvalidQueryError("to", `range spans more than ${MAX_QUERY_RANGE_MS / 86_400_000} days`);
}

/** The partitions whose actors can hold events of `key`. */
export function partitionsFor(catalog: Catalog, metricName: string, key: string, partitions: number): number[] {
  const metric = catalog.metrics.get(metricName)!;
  const source = catalog.sources.get(metric.source)!;
  if (metric.groupBy.length === 1 && metric.groupBy[0] === source.partitionKey) return [partitionOfKey(key, partitions)];
  return Array.from({ length: partitions }, (_, p) => p);
}

export async function answerQuery(deps: QueryDeps, q: MetricQuery): Promise<MergedAnswer> {
  validateQuery(deps.catalog, q);
  const involved = partitionsFor(deps.catalog, q.metric, q.key, deps.partitions);
  let w = deps.watermarks.current();
  for (let attempt = 0; attempt <= MAX_WATERMARK_RETRIES; attempt++) {
    const run = w?.run ?? 0;
    const [batchPart, replies] = await Promise.all([
      w ? readBatchTotal(deps.ch, deps.database, q.metric, w.viewVersion, q.key, q.fromMs, q.toMs) : Promise.resolve(0),
      Promise.all(involved.map((p) => deps.speed.query(p, { run, metric: q.metric, key: q.key, fromMs: q.fromMs, toMs: q.toMs }))),
    ]);
    const parts: PartitionPart[] = [];
    let movedOn = 0;
    for (const [i, r] of replies.entries()) {
      if (r.kind === "error") throw new UnavailableError(`speed actor of partition ${involved[i]} failed: ${r.message}`);
      if (r.kind === "moved_on") {
        movedOn = Math.max(movedOn, r.run);
        continue;
      }
      parts.push({ partition: r.partition, cutSeq: w?.cuts[r.partition] ?? 0, appliedSeq: r.appliedSeq, value: r.value, heldEvents: r.eventsAboveCut, generation: r.generation });
    }
    if (movedOn === 0) return mergeAtWatermark(run, batchPart, parts);
    // An actor dropped past our watermark: answer again at a newer one.
    const fresh = await deps.watermarks.refresh();
    if (fresh && fresh.run > run) w = fresh;
  }
  throw new UnavailableError(`the watermark kept moving during the query (${MAX_WATERMARK_RETRIES} retries); try again`);
}
