/**
 * The archiver: appends every event of the stream to the master dataset in
 * ClickHouse, exactly once, and records for each barrier that everything below
 * it is flushed.
 *
 * Any number of archivers may run (a rolling update with surge, a mistaken
 * `replicas: 2`, a paused pod that comes back); one writes. They compete for
 * the archiver lease (nats/archiver_lease.ts); the holder runs an archive writer
 * (batch/archive_writer.ts) under its epoch, the others stand by and take over
 * once the holder's lease lapses by the NATS server's clock. A holder whose lease
 * is not fresh on its own monotonic clock (paused past it) starts no insert and
 * records no progress; once a standby took over, its progress writes are refused
 * by the epoch the new holder stamped, and it drops what it buffered.
 *
 * Why no row is lost or counted twice across a change of holder:
 * - Lost: the new holder reads each table's head (its highest sequence per
 *   partition) from ClickHouse after taking the lease and consumes from the
 *   lowest of them; whatever the old holder did not insert is read again.
 * - Twice: the new holder skips every record at or below a table's head, so
 *   nothing the old holder inserted before the new holder read the heads goes in
 *   again. The one window left is an INSERT the old holder had already started
 *   when its lease lapsed (paused inside it, or slower than the rest of its
 *   lease) that lands after the new holder read the heads: its rows can then be
 *   in the table twice, as identical rows (same partition, sequence and id).
 *   ClickHouse has no compare-and-set to fence that INSERT, and the
 *   non-replicated tables do not deduplicate it; batch runs count each event id
 *   once (GROUP BY id, at its first sequence), so a copy never counts twice.
 * - Progress: a barrier is recorded only after the rows below it are in, and only
 *   with the epoch of a lease the writer holds at that moment; a stale holder's
 *   record is refused (nats/archiver_progress.ts), so it can neither claim a
 *   barrier nor move progress that a batch run reads.
 *
 * States (ArchiverStates): standby → holding (took the lease) ⇄ lapsed (not renewed in time on its
 * own clock) → standby (another archiver holds it); closed from any of them.
 */
import type { Observability } from "../core/metrics.js";
import { ensureError } from "../core/errors.js";
import { closeable, type Closeable } from "../core/lifecycle.js";
import { ARCHIVER_LEASE_MS, ARCHIVER_RENEW_MS } from "../core/config.js";
import { startArchiverLease, type ArchiverLease } from "../nats/archiver_lease.js";
import { failHealthOnEnd } from "../nats/kv.js";
import { startHeartbeat } from "../nats/members.js";
import { openBuckets } from "../nats/setup.js";
import { startArchiveWriter, type ArchiverStats, type ArchiveWriter, type WriterDeps, type WriterOptions } from "./archive_writer.js";

export type { ArchiverStats } from "./archive_writer.js";

export interface ArchiverOptions extends WriterOptions {
  /** Member id for the heartbeat and the lease. */
  nodeId: string;
  heartbeatIntervalMs: number;
  /**
   * An archiver holding the lease that has not renewed it for this long may be replaced by a standby
   * (LAMBDA_ARCHIVER_LEASE_MS). @default ARCHIVER_LEASE_MS (5000)
   */
  leaseMs?: number;
  /** How often the holder renews the lease and a standby checks it (LAMBDA_ARCHIVER_RENEW_MS); below the lease. @default ARCHIVER_RENEW_MS (1000) */
  renewMs?: number;
}

type ResolvedArchiverOptions = Required<ArchiverOptions>;

/** @throws RangeError when the renewal period is not below the lease */
function resolveArchiverOptions(o: ArchiverOptions): ResolvedArchiverOptions {
  const leaseMs = o.leaseMs ?? ARCHIVER_LEASE_MS;
  const renewMs = o.renewMs ?? ARCHIVER_RENEW_MS;
  if (renewMs >= leaseMs) throw new RangeError(`archiver renewMs must be below leaseMs (${leaseMs} ms), got ${renewMs} ms`);
  return { ...o, leaseMs, renewMs };
}

/** What the archiver runs on; it opens the buckets itself. */
export type ArchiverDeps = Omit<WriterDeps, "buckets"> & { observe?: Observability };

/**
 * Where this archiver stands: "holding" the lease and writing; "lapsed": it holds the lease but has
 * not renewed it within the lease on its own clock (paused, or NATS unreachable), so it inserts
 * nothing until a renewal succeeds (→ holding) or shows another archiver took over (→ standby);
 * "standby": no writer runs.
 */
export const ArchiverStates = { standby: "standby", holding: "holding", lapsed: "lapsed" } as const;
export type ArchiverState = (typeof ArchiverStates)[keyof typeof ArchiverStates];

/** close() flushes what is buffered (while it holds the lease), releases the lease and stops. */
export interface Archiver extends Closeable {
  /** Totals since start, over every period this archiver held the lease. */
  stats(): ArchiverStats;
  /** Where it stands (ArchiverStates). */
  state(): ArchiverState;
  /** The lease epoch it writes under, or null while it stands by or its lease is not fresh. */
  epoch(): number | null;
}

const ZERO_STATS: ArchiverStats = { rowsArchived: 0, rowsSkipped: 0, recordsInvalid: 0, rowsRefused: 0, barriersIgnored: 0, historyMismatches: 0, heads: {}, read: [], rowsBuffered: 0 };

/** `a` plus `b`'s counts, with `b`'s positions (the later writer's). */
function addStats(a: ArchiverStats, b: ArchiverStats): ArchiverStats {
  return {
    rowsArchived: a.rowsArchived + b.rowsArchived,
    rowsSkipped: a.rowsSkipped + b.rowsSkipped,
    recordsInvalid: a.recordsInvalid + b.recordsInvalid,
    rowsRefused: a.rowsRefused + b.rowsRefused,
    barriersIgnored: a.barriersIgnored + b.barriersIgnored,
    historyMismatches: a.historyMismatches + b.historyMismatches,
    heads: b.heads,
    read: b.read,
    rowsBuffered: b.rowsBuffered,
  };
}

export async function createArchiver(deps: ArchiverDeps, options: ArchiverOptions): Promise<Archiver> {
  const opts = resolveArchiverOptions(options);
  const log = deps.log.child({ component: "archiver" });
  const buckets = await openBuckets(deps.nc, deps.names);
  let writer: ArchiveWriter | null = null;
  /** Totals of the writers closed so far. */
  let past = ZERO_STATS;
  let stopping = false;

  const stats = (): ArchiverStats => (writer ? addStats(past, writer.stats()) : past);
  // How far this archiver got per partition (the last writer's heads while it stands by), for lag in `lambdactl status` and the metrics.
  const archivedHeads = () => {
    const heads = Object.values(stats().heads);
    return heads.length === 0 ? null : Array.from({ length: opts.partitions }, (_, p) => Math.max(0, ...heads.map((h) => h[p] ?? 0)));
  };

  const stopWriting = async () => {
    const w = writer;
    if (!w) return;
    writer = null;
    await w.close();
    past = addStats(past, w.stats());
  };
  // Calls never overlap (nats/leadership.ts): a writer is closed before the next starts.
  const onLeaseChange = async (epoch: number | null) => {
    if (epoch === null) return stopWriting();
    if (stopping) return;
    const fence = {
      epoch,
      holds: () => lease.epoch() === epoch,
      // A newer holder stamped the progress keys: give the lease up now rather than at the next renewal.
      fenced: () => void lease.confirm().catch(() => undefined), // a NotLeaderError here is the step down itself
    };
    try {
      writer = await startArchiveWriter({ ...deps, log, buckets }, opts, fence);
    } catch (err) {
      log.error("could not start archiving under the lease; resigning it so another archiver can take it", { epoch, err: ensureError(err) });
      lease.resign(`starting to archive failed: ${ensureError(err).message}`);
    }
  };
  const lease: ArchiverLease = await startArchiverLease(buckets, { id: opts.nodeId, leaseMs: opts.leaseMs, renewMs: opts.renewMs }, log, onLeaseChange);
  failHealthOnEnd(lease.clockEnded, deps.observe?.health, "archiver lease", "archiver heartbeats");
  const state = (): ArchiverState => (!writer ? ArchiverStates.standby : lease.epoch() !== null ? ArchiverStates.holding : ArchiverStates.lapsed);
  const heartbeat = await startHeartbeat(buckets.members, "archiver", opts.nodeId, opts.heartbeatIntervalMs, log, () => {
    const archived = archivedHeads();
    const epoch = lease.epoch();
    return { state: state(), ...(epoch === null ? {} : { epoch }), ...(archived ? { archived } : {}) };
  });
  // After the heartbeat: its stored time is part of the clock a standby times the lease on.
  await lease.join();
  log.info("archiver running", { partitions: opts.partitions, state: state(), leaseMs: opts.leaseMs });

  const m = deps.observe?.metrics;
  const unobserve = m?.onScrape(() => {
    archivedHeads()?.forEach((seq, p) => m.archiverFlushedSequence.set({ partition: String(p) }, seq));
    const s = stats();
    m.archiverRows.set({ outcome: "archived" }, s.rowsArchived);
    m.archiverRows.set({ outcome: "skipped" }, s.rowsSkipped);
    m.archiverRows.set({ outcome: "invalid" }, s.recordsInvalid);
    m.archiverRows.set({ outcome: "refused" }, s.rowsRefused);
  });

  const lifecycle = closeable(async () => {
    stopping = true;
    unobserve?.();
    // The writer flushes first, while the lease still holds; then the lease is released so a standby takes over at once.
    await stopWriting();
    await lease.stop();
    await heartbeat.stop();
    log.info("archiver closed", { rowsArchived: stats().rowsArchived });
  });
  return { stats, state, epoch: () => (writer ? lease.epoch() : null), ...lifecycle };
}
