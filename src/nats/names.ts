/**
 * Every subject, stream, bucket and key name of the runtime, derived from one
 * prefix so several clusters (or tests) can share a NATS server.
 */

export interface Names {
  readonly prefix: string;
  /** The partitioned event stream. */
  readonly eventStream: string;
  /** Wildcard subject the event stream captures. */
  readonly eventSubjects: string;
  /** Subject of partition `p`. */
  eventSubject(p: number): string;
  /** Stream of refused events. */
  readonly deadLetterStream: string;
  readonly deadLetterSubject: string;
  /** KV: `current` → the watermark; `run.<N>` → history of run N. */
  readonly watermarkBucket: string;
  /** KV: `<role>.<id>` → heartbeat (nats/members.ts). */
  readonly membersBucket: string;
  /** KV: `p.<p>` → assignment. */
  readonly assignmentsBucket: string;
  /** KV: `p.<p>` → barrier the archiver has flushed through; `lease` → which archiver writes (nats/archiver_lease.ts). */
  readonly archiverBucket: string;
  /** KV: `runs` → the last run number handed out; `settings` → the cluster's partition count; `leader` → who leads (nats/leadership.ts); `retention` → the stream's retention (nats/stream_retention.ts). */
  readonly coordinatorBucket: string;
  /** KV: speed actor snapshots (actors/snapshot_store.ts). */
  readonly snapshotBucket: string;
  /** KV: `current` → the catalog the cluster runs, with its older versions as history (nats/catalog_store.ts). */
  readonly catalogBucket: string;
  /** Request subject a speed actor answers queries on. */
  speedQuerySubject(p: number): string;
  /** Request subject a speed actor answers status requests on. */
  speedStatusSubject(p: number): string;
  /** Request subject the coordinator answers "run a batch now" on. */
  readonly runNowSubject: string;
  /** Request subject the coordinator answers "roll the watermark back" on. */
  readonly rollbackSubject: string;
  /** Request subject batch executors answer recompute requests on (nats/executor_control.ts). */
  readonly executorSubject: string;
}

export const WATERMARK_KEY = "current";
export const CATALOG_KEY = "current";
export const RUN_COUNTER_KEY = "runs";
/** Coordinator bucket: who leads, with the fencing epoch (nats/leadership.ts). */
export const LEADER_KEY = "leader";
/** Archiver bucket: which archiver holds the single-writer lease, with the fencing epoch (nats/archiver_lease.ts). */
export const ARCHIVER_LEASE_KEY = "lease";
/** Coordinator bucket: settings every process of the cluster shares (nats/cluster_settings.ts). */
export const CLUSTER_SETTINGS_KEY = "settings";
/** Coordinator bucket: what stream retention kept and removed after the last run (nats/stream_retention.ts). */
export const RETENTION_KEY = "retention";
export const runKey = (run: number) => `run.${run}`;
export const partitionKey = (p: number) => `p.${p}`;

export function namesFor(prefix: string): Names {
  const up = prefix.toUpperCase();
  return {
    prefix,
    eventStream: `${up}_EVENTS`,
    eventSubjects: `${prefix}.events.*`,
    eventSubject: (p) => `${prefix}.events.${p}`,
    deadLetterStream: `${up}_DEADLETTER`,
    deadLetterSubject: `${prefix}.deadletter`,
    watermarkBucket: `${prefix}_watermark`,
    membersBucket: `${prefix}_members`,
    assignmentsBucket: `${prefix}_assignments`,
    archiverBucket: `${prefix}_archiver`,
    coordinatorBucket: `${prefix}_coordinator`,
    snapshotBucket: `${prefix}_snapshots`,
    catalogBucket: `${prefix}_catalog`,
    speedQuerySubject: (p) => `${prefix}.speed.${p}.query`,
    speedStatusSubject: (p) => `${prefix}.speed.${p}.status`,
    runNowSubject: `${prefix}.coordinator.run`,
    rollbackSubject: `${prefix}.coordinator.rollback`,
    executorSubject: `${prefix}.batch.execute`,
  };
}
