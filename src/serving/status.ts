/** `lambdactl status`: members with heartbeat age, assignments, lag per partition, the next run. */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../core/logger.js";
import type { MemberHeartbeat } from "../core/records.js";
import type { SpeedClient, SpeedStatus } from "../actors/index.js";
import { readAssignments } from "../nats/assignments_store.js";
import { readMembers } from "../nats/members.js";
import type { Names } from "../nats/names.js";
import { partitionHeads, type Buckets } from "../nats/setup.js";

export interface MemberStatus {
  readonly role: string;
  readonly id: string;
  readonly heartbeatAgeS: number;
  /** "gone" once the heartbeat expired; otherwise the member's own state ("leader" for a coordinator, "" for most). */
  readonly state: string;
}

/** The state `status` gives a member whose heartbeat is older than the node timeout. */
export const GONE = "gone";

/**
 * A heartbeat older than `nodeTimeoutMs` (LAMBDA_NODE_TIMEOUT_MS, the age at which the
 * coordinator takes a speed node's partitions away) means the member is gone, whatever it
 * last said about itself: a SIGKILLed coordinator's last beat still says "leader".
 */
export function memberState(hb: MemberHeartbeat, nowMs: number, nodeTimeoutMs: number): string {
  return nowMs - hb.atMs > nodeTimeoutMs ? GONE : (hb.state ?? "");
}

export interface PartitionStatus {
  readonly partition: number;
  readonly node: string;
  readonly generation: number;
  readonly streamHead: number;
  readonly appliedSeq: number;
  readonly archivedSeq: number;
  readonly speedLag: number;
  readonly archiverLag: number;
  readonly speedEventsHeld: number;
  /** Invalid records the partition's actor skipped since it started (the archiver dead-letters them). */
  readonly speedSkippedInvalid: number;
}

export interface ClusterStatus {
  readonly members: readonly MemberStatus[];
  readonly partitions: readonly PartitionStatus[];
  readonly nextRunAtMs: number | null;
}

/** How long status waits for each speed actor; a silent one shows as applied 0. */
const STATUS_TIMEOUT_MS = 1_000;

/**
 * @param nodeTimeoutMs heartbeats older than this show as gone (LAMBDA_NODE_TIMEOUT_MS).
 */
export async function clusterStatus(nc: NatsConnection, names: Names, buckets: Buckets, speed: SpeedClient, partitions: number, nodeTimeoutMs: number, log: Logger): Promise<ClusterStatus> {
  const now = Date.now();
  const members: MemberStatus[] = [];
  let nextRunAtMs: number | null = null;
  const archived = new Array<number>(partitions).fill(0);
  for (const hb of await readMembers(buckets.members, log)) {
    const state = memberState(hb, now, nodeTimeoutMs);
    members.push({ role: hb.role, id: hb.id, heartbeatAgeS: Math.max(0, now - hb.atMs) / 1000, state });
    // A gone coordinator's schedule died with it.
    if (hb.role === "coordinator" && state !== GONE && hb.nextRunAtMs !== undefined) nextRunAtMs = hb.nextRunAtMs;
    hb.archived?.forEach((s, p) => (archived[p] = Math.max(archived[p] ?? 0, s)));
  }
  members.sort((a, b) => (a.role === b.role ? (a.id < b.id ? -1 : 1) : a.role < b.role ? -1 : 1));
  const heads = await partitionHeads(nc, names, partitions);
  const statuses = await Promise.all(
    Array.from({ length: partitions }, (_, p) => speed.status(p, STATUS_TIMEOUT_MS).catch((): SpeedStatus | null => null)),
  );
  const assignments = await readAssignments(buckets.assignments, partitions);
  const rows: PartitionStatus[] = [];
  for (let p = 0; p < partitions; p++) {
    const a = assignments.get(p);
    const s = statuses[p];
    const head = heads[p]!;
    const applied = s?.appliedSeq ?? 0;
    rows.push({
      partition: p,
      node: a?.node ?? "",
      generation: a?.generation ?? 0,
      streamHead: head,
      appliedSeq: applied,
      archivedSeq: archived[p]!,
      speedLag: Math.max(0, head - applied),
      archiverLag: Math.max(0, head - archived[p]!),
      speedEventsHeld: s?.heldEvents ?? 0,
      speedSkippedInvalid: s?.skippedInvalid ?? 0,
    });
  }
  return { members, partitions: rows, nextRunAtMs };
}
