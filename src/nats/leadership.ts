/**
 * Leadership through a KV lease, for any role with one writer at a time: the
 * coordinators (key `leader` of the coordinator bucket) and the archivers (key
 * `lease` of the archiver bucket, nats/archiver_lease.ts). The key names the
 * process that leads and its epoch. Any number of processes run; each
 * watches the key. The leader renews it every renewal period (compare-and-set on
 * the revision it last wrote); a standby takes it over (compare-and-set on the
 * revision it saw, epoch + 1) once it has not been renewed for a lease.
 *
 * Time: a standby judges the lease on the NATS server's clock (the time the
 * server stored the last renewal against the newest time it stored anything the
 * standby watches), never on its own wall clock, so a host whose clock is skewed
 * or runs fast moves nothing. The leader judges its own lease on its monotonic
 * clock: a leader that was paused past its lease (SIGSTOP, a long GC) stops
 * leading the moment it runs again, until a renewal proves nobody took over.
 *
 * The epoch is the fencing token: every write the leader makes to shared state
 * carries it, and a store refuses a write with an older epoch than the value it
 * replaces (nats/kv fencedWrite). A new leader first stamps its epoch on the run
 * counter, the watermark and the assignments, so a deposed leader's late writes
 * fail. A clean stop releases the key (holder "") so a standby takes over at once;
 * the key is never deleted, so epochs only grow.
 */
import type { KV } from "@nats-io/kv";
import { ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { encode } from "./codec.js";
import { fields, readValue, watchValues, type Stored, type ValueWatch } from "./kv.js";
import { LEADER_KEY } from "./names.js";

/** Coordinator bucket, key `leader`; archiver bucket, key `lease`. */
export interface LeaderRecord {
  /** Member id of the leader; "" once it released the key on a clean stop. */
  readonly holder: string;
  /** Grows by one at every change of leader. */
  readonly epoch: number;
  /** The lease the holder runs with, for operators. */
  readonly leaseMs: number;
}

export function parseLeaderRecord(v: unknown): LeaderRecord {
  const o = fields.object(v, "leader record");
  return { holder: fields.string(o, "holder"), epoch: fields.int(o, "epoch", 1), leaseMs: fields.int(o, "leaseMs") };
}

/** The coordinators' leadership key as stored, with the server time of its last renewal; null when no coordinator ever led. */
export function readLeader(kv: KV): Promise<Stored<LeaderRecord> | null> {
  return readLease(kv, LEADER_KEY);
}

/** A lease key as stored, with the server time of its last renewal; null when nobody ever held it. @throws MalformedValueError */
export function readLease(kv: KV, key: string): Promise<Stored<LeaderRecord> | null> {
  return readValue(kv, key, parseLeaderRecord);
}

/** This process does not lead (any more): a standby, or deposed. Not retryable here. */
export class NotLeaderError extends Error {
  override readonly name = "NotLeaderError";
  constructor(
    readonly id: string,
    readonly reason: string,
    /** The role that elects a leader ("coordinator", "archiver"). */
    readonly role: string = "coordinator",
  ) {
    super(`${role} ${id} is not the leader: ${reason}`);
  }
}

export interface LeadershipOptions {
  /** This process's member id. */
  readonly id: string;
  /** A leader not renewed for this long may be replaced (LAMBDA_LEADER_LEASE_MS, LAMBDA_ARCHIVER_LEASE_MS). */
  readonly leaseMs: number;
  /** How often the leader renews and a standby checks (LAMBDA_LEADER_RENEW_MS, LAMBDA_ARCHIVER_RENEW_MS); well below the lease. */
  readonly renewMs: number;
}

/** Which lease: the key and the role that competes for it. */
export interface LeaseKey {
  /** The key in the bucket given to startLease. */
  readonly key: string;
  /** The role whose processes compete, for messages ("coordinator", "archiver"). */
  readonly role: string;
}

/** The leader as this process last saw it. */
export interface ObservedLeader {
  readonly holder: string;
  readonly epoch: number;
  /** Server time of the last renewal. */
  readonly renewedAtMs: number;
  /** Server time since then, as far as this process has seen the server's clock move. */
  readonly ageMs: number;
}

export interface Leadership {
  /** The epoch this process leads with, or null while it is a standby or its lease is not fresh. */
  epoch(): number | null;
  /** The leader as last seen, or null when nobody ever led. */
  observed(): ObservedLeader | null;
  /** Reads the key now; resolves with the epoch while this process still leads. @throws NotLeaderError (and steps down) */
  confirm(): Promise<number>;
  /**
   * Gives the lead up (it could not take over: NATS failed under it): stops renewing, so the
   * lease lapses and a standby takes it; this process tries again only after two leases.
   */
  resign(reason: string): void;
  /** Feeds a time the NATS server stored something at (heartbeats): a standby's lease check runs on it. */
  serverTimeSeen(storedAtMs: number): void;
  /** Starts deciding: takes the lead now if nobody holds it, then checks every renewal period. Resolves after the first decision took effect. */
  join(): Promise<void>;
  /** Stops watching and renewing; a leader releases the key so a standby takes over at once. */
  stop(): Promise<void>;
}

/**
 * Follows the coordinators' election; `join()` takes part in it. `onChange` is called with the epoch when this coordinator becomes
 * leader and with null when it stops leading; calls never overlap and come in order.
 */
export function startLeadership(kv: KV, opts: LeadershipOptions, log: Logger, onChange: (epoch: number | null) => void | Promise<void>): Promise<Leadership> {
  return startLease(kv, { key: LEADER_KEY, role: "coordinator" }, opts, log, onChange);
}

/**
 * Follows the election of `lease` in `kv`; `join()` takes part in it. `onChange` is called with the epoch when this
 * process becomes leader and with null when it stops leading; calls never overlap and come in order.
 */
export async function startLease(kv: KV, lease: LeaseKey, opts: LeadershipOptions, log: Logger, onChange: (epoch: number | null) => void | Promise<void>): Promise<Leadership> {
  const { key, role } = lease;
  let seen: { record: LeaderRecord; revision: number; storedAtMs: number } | null = null;
  let serverNowMs = 0;
  let mine: { epoch: number; revision: number; renewedAtMono: number } | null = null;
  let stopped = false;
  let changing: Promise<void> = Promise.resolve();
  // After resign(): not before this (monotonic) time does this process try to lead again.
  let holdOffUntilMono = 0;
  const notify = (epoch: number | null) => {
    changing = changing.then(() => onChange(epoch)).catch((err) => log.error("reacting to a leadership change failed", { epoch, err: ensureError(err) }));
  };

  const fresh = () => mine !== null && performance.now() - mine.renewedAtMono < opts.leaseMs;
  const lose = (reason: string) => {
    if (!mine) return;
    log.warn("no longer the leader; now a standby", { epoch: mine.epoch, reason });
    mine = null;
    notify(null);
  };
  // The lease is timed from before the write went out: the server stored it at or after that moment, and a standby
  // times it from the server's store time. Timing it from the reply would stretch this leader's lease past the
  // standby's by the round trip, and both would lead for that long.
  const won = (epoch: number, revision: number, sentAtMono: number, takenFrom: LeaderRecord | null) => {
    mine = { epoch, revision, renewedAtMono: sentAtMono };
    log.info("became the leader", { epoch, leaseMs: opts.leaseMs, previous: takenFrom ? { holder: takenFrom.holder || "(released)", epoch: takenFrom.epoch } : null });
    notify(epoch);
  };

  const acquire = async () => {
    const previous = seen;
    const epoch = (previous?.record.epoch ?? 0) + 1;
    const value = encode({ holder: opts.id, epoch, leaseMs: opts.leaseMs } satisfies LeaderRecord);
    const sentAtMono = performance.now();
    try {
      const revision = previous ? await kv.update(key, value, previous.revision) : await kv.create(key, value);
      won(epoch, revision, sentAtMono, previous?.record ?? null);
    } catch (err) {
      // Another standby was faster (the revision moved): its record arrives through the watch.
      log.debug(`leadership not taken: another ${role} wrote the key first`, { epoch, err: ensureError(err) });
    }
  };

  const renew = async () => {
    const m = mine!;
    const sentAtMono = performance.now();
    try {
      const revision = await kv.update(key, encode({ holder: opts.id, epoch: m.epoch, leaseMs: opts.leaseMs } satisfies LeaderRecord), m.revision);
      if (mine === m) mine = { ...m, revision, renewedAtMono: sentAtMono };
    } catch (err) {
      const now = await readLease(kv, key).catch(() => undefined);
      if (now && (now.value.holder !== opts.id || now.value.epoch !== m.epoch)) return lose(`${role} ${now.value.holder || "(none)"} leads with epoch ${now.value.epoch}`);
      if (now && mine === m) mine = { ...m, revision: now.revision }; // our own write landed but its answer was lost
      if (!fresh()) lose(`could not renew the lease for ${opts.leaseMs} ms: ${ensureError(err).message}`);
      else log.warn("leadership renewal failed; retrying", { epoch: m.epoch, err: ensureError(err) });
    }
  };

  let busy = false;
  const check = async () => {
    if (stopped || busy) return;
    busy = true;
    try {
      if (mine) {
        // A leader that was paused past its lease leads again only once a renewal proves nobody took over.
        await renew();
        return;
      }
      if (performance.now() < holdOffUntilMono) return;
      const s = seen;
      const expired = !s || s.record.holder === "" || s.record.holder === opts.id || serverNowMs - s.storedAtMs >= opts.leaseMs;
      if (expired) await acquire();
    } finally {
      busy = false;
    }
  };

  const watch: ValueWatch = await watchValues(kv, {
    key,
    parse: parseLeaderRecord,
    what: `${role} leadership`,
    log,
    onValue: (_k, record, revision, storedAtMs) => {
      seen = { record, revision, storedAtMs };
      serverNowMs = Math.max(serverNowMs, storedAtMs);
      if (mine && (record.holder !== opts.id || record.epoch !== mine.epoch)) lose(`${role} ${record.holder || "(none)"} leads with epoch ${record.epoch}`);
    },
  });
  let timer: NodeJS.Timeout | undefined;

  return {
    async join() {
      // The watch may not have delivered the current record yet: read it, so the first decision sees it.
      if (!seen) {
        const current = await readLease(kv, key);
        if (current && !seen) {
          seen = { record: current.value, revision: current.revision, storedAtMs: current.storedAtMs };
          serverNowMs = Math.max(serverNowMs, current.storedAtMs);
        }
      }
      await check();
      await changing;
      timer ??= setInterval(() => void check(), opts.renewMs);
    },
    epoch: () => (fresh() ? mine!.epoch : null),
    observed: () => (seen ? { holder: seen.record.holder, epoch: seen.record.epoch, renewedAtMs: seen.storedAtMs, ageMs: Math.max(0, serverNowMs - seen.storedAtMs) } : null),
    async confirm() {
      const m = mine;
      if (!m || !fresh()) throw new NotLeaderError(opts.id, m ? `its lease (${opts.leaseMs} ms) was not renewed in time` : "it is a standby", role);
      const now = await readLease(kv, key);
      if (!now || now.value.holder !== opts.id || now.value.epoch !== m.epoch) {
        const reason = `${role} ${now?.value.holder || "(none)"} leads with epoch ${now?.value.epoch ?? 0}`;
        lose(reason);
        throw new NotLeaderError(opts.id, reason, role);
      }
      return m.epoch;
    },
    resign(reason) {
      if (!mine) return;
      // Two leases: a standby sees the lease lapse after one and takes over before this one tries again.
      holdOffUntilMono = performance.now() + 2 * opts.leaseMs;
      lose(`it resigned: ${reason}`);
    },
    serverTimeSeen(ms) {
      serverNowMs = Math.max(serverNowMs, ms);
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      watch.stop();
      const m = mine;
      if (m) {
        mine = null;
        // Released, not deleted: the epoch stays in the key, so the next leader's is higher.
        await kv
          .update(key, encode({ holder: "", epoch: m.epoch, leaseMs: opts.leaseMs } satisfies LeaderRecord), m.revision)
          .then(() => log.info("released the leadership", { epoch: m.epoch }))
          .catch((err) => log.warn("could not release the leadership; a standby takes over when the lease lapses", { err: ensureError(err) }));
      }
      await changing;
    },
  };
}
