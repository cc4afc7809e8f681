/**
 * How a query is laid out over the speed actors, pure: which partitions can hold its keys, its
 * keys in runs that fit in one NATS message, and a speed query in halves when its reply would not.
 */
import type { SpeedQuery } from "../actors/index.js";
import { valuesOfKey } from "../core/aggregate.js";
import type { Catalog, MetricDef } from "../core/catalog.js";
import { partitionOfKey } from "../core/events.js";

/**
 * The partitions whose actors can hold events of `keys` (null: every key), each with the keys
 * it can hold (null: every key), in partition order.
 */
export function partitionsFor(catalog: Catalog, metric: MetricDef, keys: readonly string[] | null, partitions: number): Map<number, readonly string[] | null> {
  // A source removed from the catalog (its metric still answers at an older run) is asked everywhere.
  const source = catalog.sources.get(metric.source);
  const i = source ? metric.groupBy.indexOf(source.partitionKey) : -1;
  if (keys === null || i < 0) return new Map(Array.from({ length: partitions }, (_, p) => [p, keys]));
  const byPartition = new Map<number, string[]>();
  for (const k of keys) {
    const p = partitionOfKey(valuesOfKey(k, metric.groupBy.length)[i]!, partitions);
    const ks = byPartition.get(p);
    if (ks) ks.push(k);
    else byPartition.set(p, [k]);
  }
  return new Map([...byPartition].sort(([a], [b]) => a - b));
}

/**
 * Share of the NATS server's max_payload the keys of one speed query may fill: the rest is for
 * the query's other fields, and the reply echoes the keys with their states.
 */
export const SPEED_KEYS_PAYLOAD_SHARE = 0.25;
/** Bytes msgpack spends on a string's header, at most. */
const MSGPACK_STR_HEADER_BYTES = 5;

/** `keys` in runs whose encoded size stays within `budgetBytes` (a key alone may not: MAX_KEY_BYTES keeps it far below). */
export function keyChunks(keys: readonly string[] | null, budgetBytes: number): (readonly string[] | null)[] {
  if (keys === null) return [null];
  const chunks: string[][] = [];
  let chunk: string[] = [];
  let size = 0;
  for (const k of keys) {
    const bytes = Buffer.byteLength(k, "utf8") + MSGPACK_STR_HEADER_BYTES;
    if (chunk.length > 0 && size + bytes > budgetBytes) {
      chunks.push(chunk);
      chunk = [];
      size = 0;
    }
    chunk.push(k);
    size += bytes;
  }
  chunks.push(chunk);
  return chunks;
}


/** Times a partition's reply may be split because it would not fit in one NATS message: 2^12 parts at most. */
export const MAX_REPLY_SPLITS = 12;

/**
 * `q` in two halves that together ask exactly what it asks: its keys in two runs; every key in
 * two key shards; one key over two halves of the range. Null when it cannot be split.
 */
export function splitSpeedQuery(q: SpeedQuery): [SpeedQuery, SpeedQuery] | null {
  if (q.keys && q.keys.length > 1) {
    const mid = Math.ceil(q.keys.length / 2);
    return [
      { ...q, keys: q.keys.slice(0, mid) },
      { ...q, keys: q.keys.slice(mid) },
    ];
  }
  if (q.keys === null) {
    const { index, count } = q.shard ?? { index: 0, count: 1 };
    return [
      { ...q, shard: { index, count: count * 2 } },
      { ...q, shard: { index: index + count, count: count * 2 } },
    ];
  }
  // Windows count by their start, so two halves of the range hold every window once.
  if (q.toMs - q.fromMs < 2) return null;
  const mid = q.fromMs + Math.floor((q.toMs - q.fromMs) / 2);
  return [
    { ...q, toMs: mid },
    { ...q, fromMs: mid },
  ];
}
