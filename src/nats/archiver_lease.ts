/**
 * The archiver's single-writer lease: key `lease` of the archiver bucket names
 * the archiver that consumes the stream and inserts into the master dataset,
 * with its epoch. Any number of archivers run (a rolling update with surge, a
 * mistaken `replicas: 2`, a paused pod that comes back); only the holder writes.
 * The election is the coordinators' (nats/leadership.ts) on another key: renewed
 * by compare-and-set, taken over by a standby once the server's clock says it
 * lapsed, judged by the holder on its monotonic clock.
 *
 * A standby times the lease on the NATS server's clock, which it sees move
 * through the heartbeats of the archivers (its own included) in the members
 * bucket: so a standby takes over within a lease and a heartbeat of the
 * holder's last renewal.
 */
import type { KV } from "@nats-io/kv";
import type { Logger } from "../core/logger.js";
import { readLease, startLease, type LeaderRecord, type Leadership, type LeadershipOptions } from "./leadership.js";
import { watchValues, type Stored, type WatchEnd } from "./kv.js";
import { parseHeartbeat } from "./members.js";
import { ARCHIVER_LEASE_KEY } from "./names.js";

/** The lease key as stored, with the server time of its last renewal; null when no archiver ever held it. @throws MalformedValueError */
export function readArchiverLease(archiverKv: KV): Promise<Stored<LeaderRecord> | null> {
  return readLease(archiverKv, ARCHIVER_LEASE_KEY);
}

/** The buckets the lease lives in and is timed by. */
export interface ArchiverLeaseBuckets {
  /** Holds the lease key. */
  readonly archiver: KV;
  /** Archiver heartbeats: their stored times are the server's clock a standby times the lease on. */
  readonly members: KV;
}

/** The archivers' election as one archiver follows it. */
export interface ArchiverLease extends Leadership {
  /**
   * Resolves when the watch of archiver heartbeats ends (never rejects): after an end other than stop(),
   * a standby no longer sees the server's clock move and would never take over.
   */
  readonly clockEnded: Promise<WatchEnd>;
}

/**
 * Follows the archivers' election; `join()` takes part in it. `onChange` is called with the epoch when
 * this archiver takes the lease and with null when it loses it; calls never overlap and come in order.
 * `stop()` releases a lease held, so a standby takes over at once.
 */
export async function startArchiverLease(buckets: ArchiverLeaseBuckets, opts: LeadershipOptions, log: Logger, onChange: (epoch: number | null) => void | Promise<void>): Promise<ArchiverLease> {
  const lease = await startLease(buckets.archiver, { key: ARCHIVER_LEASE_KEY, role: "archiver" }, opts, log, onChange);
  const clock = await watchValues(buckets.members, {
    key: "archiver.*",
    parse: parseHeartbeat,
    what: "archiver heartbeats (the server clock the archiver lease is timed on)",
    log,
    onValue: (_k, _hb, _rev, storedAtMs) => lease.serverTimeSeen(storedAtMs),
    onDelete: (_k, _rev, storedAtMs) => lease.serverTimeSeen(storedAtMs),
  }).catch(async (err: unknown) => {
    await lease.stop();
    throw err;
  });
  return {
    ...lease,
    clockEnded: clock.ended,
    async stop() {
      clock.stop();
      await lease.stop();
    },
  };
}
