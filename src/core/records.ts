import type { Watermark } from "./watermark.js";

/**
 * The small records roles exchange through KV buckets (besides the watermark):
 * heartbeats, partition assignments and archiver progress.
 */

/** `assignments` bucket, key `p.<p>`: which node owns partition p. */
export interface Assignment {
  readonly partition: number;
  /** Owning node, or "" while no node is alive. */
  readonly node: string;
  /** Grows each time the owner changes; an actor holding an older one is stale. */
  readonly generation: number;
  /** Leader epoch of the coordinator that wrote it (nats/leadership.ts); a lower one cannot overwrite it. */
  readonly epoch?: number;
}

/** `archiver` bucket, key `p.<p>`: the archiver has flushed everything below barrier `run`. */
export interface ArchiverProgress {
  readonly partition: number;
  readonly run: number;
  /** Stream sequence of that barrier. */
  readonly barrierSeq: number;
  readonly atMs: number;
  /** Epoch of the archiver lease (nats/archiver_lease.ts) its writer held; absent in records from before the lease (epoch 0). */
  readonly epoch?: number;
}

export const RunOutcomes = { running: "running", published: "published", failed: "failed", rolledBack: "rolled_back", abandoned: "abandoned" } as const;
export type RunOutcome = (typeof RunOutcomes)[keyof typeof RunOutcomes];

/** `watermark` bucket, key `run.<N>`: what happened to run N. */
export interface RunRecord {
  readonly run: number;
  readonly outcome: RunOutcome;
  readonly cuts: readonly number[];
  readonly coordinator: string;
  readonly startedAtMs: number;
  readonly finishedAtMs: number | null;
  /** Why it failed, or what rolled it back. */
  readonly detail: string | null;
  /** Time the watermark compare-and-set took (the watermark cannot carry its own). */
  readonly publishMs: number | null;
  /** The watermark the run published (kept for history and rollback). */
  readonly watermark: Watermark | null;
  /** Leader epoch of the coordinator that wrote the record (nats/leadership.ts). */
  readonly epoch?: number;
  /**
   * Leader epoch of the coordinator that wrote the run's barriers, recorded with `cuts` and kept
   * when a later leader rewrites the record (abandoned, rolled back): a barrier is trusted only
   * when it carries this epoch and lies at its partition's cut (nats/barrier_check.ts).
   */
  readonly barrierEpoch?: number;
  /** The phase the run reached (coordinator RunPhases), so a run whose coordinator died says where it stopped. */
  readonly phase?: string;
}

/** `members` bucket, key `<role>.<id>`: every role's heartbeat. */
export interface MemberHeartbeat {
  readonly role: "coordinator" | "executor" | "archiver" | "serving" | "speed";
  readonly id: string;
  readonly atMs: number;
  /** Coordinator: "leader" or "standby". */
  readonly state?: string;
  /** Coordinator: the leader epoch it holds (leader) or last saw (standby). */
  readonly epoch?: number;
  /** Coordinator: when the next scheduled run starts; null when runs are on demand only. */
  readonly nextRunAtMs?: number | null;
  /** Archiver: highest archived sequence per partition. */
  readonly archived?: readonly number[];
}
