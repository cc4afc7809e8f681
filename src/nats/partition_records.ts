/**
 * How many records a partition subject holds after a stream position: what an
 * answer without that partition's speed part lacks. JetStream counts it for a
 * consumer (num_pending), so this asks for a short-lived ephemeral consumer
 * that never delivers, reads its count and deletes it.
 */
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { Names } from "./names.js";

/** A probe consumer the server removes by itself if this process dies before deleting it. */
const PROBE_INACTIVE_MS = 10_000;
/** How long a count stays good: a partition that is away is asked about by every query meanwhile. */
export const RECORDS_AFTER_CACHE_MS = 1_000;

export type RecordsAfter = (partition: number, seq: number) => Promise<number>;

/** Records on `partition`'s subject after stream position `seq` (all of them for 0), counted now by a probe consumer. */
export async function countRecordsAfter(jsm: JetStreamManager, names: Names, partition: number, seq: number): Promise<number> {
  const info = await jsm.consumers.add(names.eventStream, {
    filter_subject: names.eventSubject(partition),
    ...(seq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: seq + 1 } : { deliver_policy: DeliverPolicy.All }),
    ack_policy: AckPolicy.None,
    inactive_threshold: nanos(PROBE_INACTIVE_MS),
    mem_storage: true,
    num_replicas: 1,
  });
  // The count is read; a failed delete leaves a consumer the server drops once inactive.
  await jsm.consumers.delete(names.eventStream, info.name).catch(() => undefined);
  return info.num_pending;
}

/** Counts records after a position on a partition subject, cached briefly per (partition, position). */
export function partitionRecordsAfter(nc: NatsConnection, names: Names): RecordsAfter {
  let jsm: Promise<JetStreamManager> | undefined;
  const cache = new Map<string, { atMs: number; count: Promise<number> }>();
  return (partition, seq) => {
    const key = `${partition}:${seq}`;
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && now - hit.atMs < RECORDS_AFTER_CACHE_MS) return hit.count;
    for (const [k, v] of cache) if (now - v.atMs >= RECORDS_AFTER_CACHE_MS) cache.delete(k);
    jsm ??= jetstreamManager(nc);
    const count = jsm.then((m) => countRecordsAfter(m, names, partition, seq));
    // A failure is not cached: the next query asks again.
    count.catch(() => cache.delete(key));
    cache.set(key, { atMs: now, count });
    return count;
  };
}
