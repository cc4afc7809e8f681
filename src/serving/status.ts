/** `lambdactl status`: members with heartbeat age, assignments, lag per partition, the next run. */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../core/logger.js";
import type { SpeedClient, SpeedStatus } from "../actors/index.js";
import { readAssignments } from "../nats/assignments_store.js";
import { readLeader } from "../nats/leadership.js";
import { readMembers, type StoredHeartbeat } from "../nats/members.js";
import type { Names } from "../nats/names.js";
import { partitionHeads, type Buckets } from "../nats/setup.js";

export interface MemberStatus {
  readonly role: string;
  readonly id: string;
  /** Age of its last heartbeat by the NATS server's clock. */
  readonly heartbeatAgeS: number;
  /**
   * "gone" once the heartbeat expired; for a live coordinator "leader" or "standby" as the
   * leadership key says (never what the coordinator last said of itself); "" for most others.
   */
  readonly state: string;
}

/** The state `status` gives a member whose heartbeat is older than the node timeout. */
export const GONE = "gone";

/** The leadership key as status shows it. */
export interface LeaderStatus {
  readonly id: string;
  readonly epoch: number;
  /** Server time since the leader last renewed its lease. */
  readonly leaseAgeMs: number;
  readonly leaseMs: number;
}

/** Whether the leader's lease still holds: past it, a standby may take over at any moment. */
export const leaseHolds = (l: LeaderStatus): boolean => l.leaseAgeMs < l.leaseMs;

/**
 * A member's state, timed on the NATS server's clock (`serverNowMs`, the newest time it stored
 * anything status read), so skewed or paused hosts make no member look alive or dead. A
 * heartbeat older than `nodeTimeoutMs` (LAMBDA_NODE_TIMEOUT_MS, the age at which the coordinator
 * takes a speed node's partitions away) means the member is gone, whatever it last said about
 * itself. A live coordinator leads only if the leadership key names it with its lease holding:
 * so status never shows two leaders, whatever stale heartbeats say.
 */
export function memberState(m: StoredHeartbeat, serverNowMs: number, nodeTimeoutMs: number, leader: LeaderStatus | null): string {
  if (serverNowMs - m.storedAtMs > nodeTimeoutMs) return GONE;
  if (m.hb.role !== "coordinator") return m.hb.state ?? "";
  return leader && leader.id === m.hb.id && leaseHolds(leader) ? "leader" : "standby";
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
  /** Barriers the partition's actor passed over since it started because no batch run wrote them. */
  readonly speedIgnoredBarriers: number;
}

export interface ClusterStatus {
  readonly members: readonly MemberStatus[];
  readonly partitions: readonly PartitionStatus[];
  readonly nextRunAtMs: number | null;
  /** Null when no coordinator holds the lead (none ever did, or the last one released it). */
  readonly leader: LeaderStatus | null;
}

/** How long status waits for each speed actor; a silent one shows as applied 0. */
const STATUS_TIMEOUT_MS = 1_000;

/**
 * @param nodeTimeoutMs heartbeats older than this show as gone (LAMBDA_NODE_TIMEOUT_MS).
 */
export async function clusterStatus(nc: NatsConnection, names: Names, buckets: Buckets, speed: SpeedClient, partitions: number, nodeTimeoutMs: number, log: Logger): Promise<ClusterStatus> {
  const [beats, lead] = await Promise.all([readMembers(buckets.members, log), readLeader(buckets.coordinator)]);
  // Every member beats (this serving node too): the newest stored time is the server's "now".
  const serverNowMs = Math.max(0, lead?.storedAtMs ?? 0, ...beats.map((b) => b.storedAtMs));
  const leader: LeaderStatus | null =
    lead && lead.value.holder !== "" ? { id: lead.value.holder, epoch: lead.value.epoch, leaseAgeMs: serverNowMs - lead.storedAtMs, leaseMs: lead.value.leaseMs } : null;
  const members: MemberStatus[] = [];
  let nextRunAtMs: number | null = null;
  const archived = new Array<number>(partitions).fill(0);
  for (const b of beats) {
    const state = memberState(b, serverNowMs, nodeTimeoutMs, leader);
    members.push({ role: b.hb.role, id: b.hb.id, heartbeatAgeS: Math.max(0, serverNowMs - b.storedAtMs) / 1000, state });
    // Only the leader schedules runs; a gone or deposed coordinator's schedule died with its lead.
    if (state === "leader" && b.hb.nextRunAtMs !== undefined) nextRunAtMs = b.hb.nextRunAtMs;
    b.hb.archived?.forEach((s, p) => (archived[p] = Math.max(archived[p] ?? 0, s)));
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
      speedIgnoredBarriers: s?.ignoredBarriers ?? 0,
    });
  }
  return { members, partitions: rows, nextRunAtMs, leader };
}
