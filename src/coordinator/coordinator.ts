/**
 * The coordinator. Any number run; one leads (nats/leadership.ts) and the rest
 * stand by, watching. The leader keeps partitions assigned (balanced, sticky,
 * generation-fenced) from speed-node membership, and runs batch runs one at a
 * time, on an interval and on demand (in process through `runNow`, or over
 * NATS on the run-now subject), having a batch executor recompute the views.
 * Every write it makes carries its leader epoch; when it stops leading it stops
 * its duties at once and a run in flight fails at its next write.
 *
 * States: standby ⇄ leader, then stopping → closed.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Catalog } from "../core/catalog.js";
import { DEDUPE_HORIZON_IDS, STREAM_RETENTION, STREAM_RETENTION_EXTRA_RUNS, type StreamRetentionMode } from "../core/config.js";
import { catalogDiffers } from "../core/definitions.js";
import type { CatalogFeed } from "../nats/catalog_store.js";
import { ensureError } from "../core/errors.js";
import { closeable, type Closeable } from "../core/lifecycle.js";
import type { Logger } from "../core/logger.js";
import type { Assignment } from "../core/records.js";
import type { Watermark } from "../core/watermark.js";
import { readAssignments, writeAssignment } from "../nats/assignments_store.js";
import { QUEUED_PHASE, serveRollbackRequests, serveRunRequests, type QueuedDetail, type RollbackReply } from "../nats/coordinator_control.js";
import { FencedError, failHealthOnEnd } from "../nats/kv.js";
import type { Observability } from "../core/metrics.js";
import { NotLeaderError, startLeadership } from "../nats/leadership.js";
import { dropMember, startHeartbeat, watchMembers } from "../nats/members.js";
import type { Names } from "../nats/names.js";
import { openBuckets } from "../nats/setup.js";
import { readWatermarkState } from "../nats/watermark_store.js";
import { assignPartitions } from "./assignment.js";
import { runBatch, type RunProgress } from "./batch_run.js";
import { MEMBER_DROP_AFTER_NODE_TIMEOUTS, MembershipTracker } from "./membership.js";
import { RollbackRefusedError, rollbackTo } from "./rollback.js";
import { takeOver } from "./takeover.js";
import { coordinatorGauges, timedRun } from "./observe.js";

/** How long a batch run waits for the archiver by default. */
export const ARCHIVER_TIMEOUT_MS = 120_000;
/**
 * How long the batch executor may stay silent during a run by default: it says it is alive every
 * second (nats/executor_control.ts EXECUTOR_KEEPALIVE_MS), so this much silence means its
 * process died mid-run, and the run fails instead of blocking the next for minutes.
 */
export const EXECUTOR_TIMEOUT_MS = 30_000;

export interface CoordinatorOptions {
  coordinatorId: string;
  partitions: number;
  /** 0 disables scheduled runs (on demand only). */
  batchIntervalMs: number;
  /** How often membership and assignments are checked. */
  heartbeatIntervalMs: number;
  nodeTimeoutMs: number;
  viewVersionsKept: number;
  /** What the stream lets go after each published run (LAMBDA_STREAM_RETENTION). @default STREAM_RETENTION */
  streamRetention?: StreamRetentionMode;
  /** Runs before the oldest kept view whose events the stream keeps too (LAMBDA_STREAM_RETENTION_EXTRA_RUNS). @default STREAM_RETENTION_EXTRA_RUNS */
  streamRetentionExtraRuns?: number;
  /**
   * The speed nodes' LAMBDA_DEDUPE_HORIZON_IDS: a rebuild from a cut replays horizon × partitions
   * positions before it, so retention keeps them. @default DEDUPE_HORIZON_IDS
   */
  dedupeHorizonIds?: number;
  /** A leader not renewed for this long is replaced (LAMBDA_LEADER_LEASE_MS). */
  leaderLeaseMs: number;
  /** How often the leader renews its lease and standbys check it (LAMBDA_LEADER_RENEW_MS). */
  leaderRenewMs: number;
  /** @default ARCHIVER_TIMEOUT_MS */
  archiverTimeoutMs?: number;
  /** @default EXECUTOR_TIMEOUT_MS */
  executorTimeoutMs?: number;
}

export interface CoordinatorDeps {
  nc: NatsConnection;
  /** The catalog at start. */
  catalog: Catalog;
  /** Newer catalog versions (nats/catalog_store): each is adopted by a run at once. */
  catalogFeed?: CatalogFeed;
  names: Names;
  log: Logger;
  /** The process's metrics (leading, batch runs, the stream's size and heads) and readiness (the members watch). */
  observe?: Observability;
}

export interface Coordinator extends Closeable {
  /** The leader epoch this coordinator leads with, or null while it stands by. */
  leaderEpoch(): number | null;
  /** Runs a batch run now (after any run in progress) and returns its watermark. @throws NotLeaderError on a standby */
  runNow(progress?: RunProgress): Promise<Watermark>;
  /** Rolls the watermark back to `run` (after any run in progress). @throws RollbackRefusedError */
  rollback(run: number): Promise<{ watermark: Watermark; from: number }>;
  /** The current assignment of every partition. */
  assignments(): Assignment[];
}

export async function createCoordinator(deps: CoordinatorDeps, opts: CoordinatorOptions): Promise<Coordinator> {
  const log = deps.log.child({ component: "coordinator", coordinator: opts.coordinatorId });
  let catalog = deps.catalog;
  const buckets = await openBuckets(deps.nc, deps.names);
  const members = new MembershipTracker();
  let current = new Map<number, Assignment>();
  let stopping = false;
  const retention = {
    mode: opts.streamRetention ?? STREAM_RETENTION,
    extraRuns: opts.streamRetentionExtraRuns ?? STREAM_RETENTION_EXTRA_RUNS,
    warmUpPositions: (opts.dedupeHorizonIds ?? DEDUPE_HORIZON_IDS) * opts.partitions,
  };

  // Every coordinator follows the members: the leader to assign partitions, a standby to judge
  // the leader's lease on the server's clock (heartbeats carry the time the server stored them).
  let serverTimeSeen: (ms: number) => void = () => {};
  const memberWatch = await watchMembers(buckets.members, log, (member, beat, storedAtMs) => {
    if (beat) members.beat(member, beat.revision, storedAtMs);
    else members.left(member, storedAtMs);
    serverTimeSeen(storedAtMs);
  });

  /** Leader duties in force, with the epoch they run under; null while standing by. Stopping them aborts `signal`. */
  let duty: { epoch: number; signal: AbortSignal; stop(): void } | null = null;
  /** The signal a run started now waits under: already aborted while standing by. */
  const dutySignal = () => duty?.signal ?? AbortSignal.abort(new NotLeaderError(opts.coordinatorId, "it stands by"));
  const epochNow = () => (duty ? leadership.epoch() : null);
  const mustLead = () => {
    const e = epochNow();
    if (e === null) throw new NotLeaderError(opts.coordinatorId, leadership.observed()?.holder ? `coordinator ${leadership.observed()!.holder} leads` : "no coordinator leads yet");
    return e;
  };

  // A member that died without a goodbye leaves its key behind; drop it once it is long
  // expired. The delete names the revision seen, so a member that came back in between keeps its key.
  const dropLongGone = async () => {
    for (const { member, revision } of members.expired(opts.nodeTimeoutMs * MEMBER_DROP_AFTER_NODE_TIMEOUTS)) {
      try {
        await dropMember(buckets.members, member, revision);
        members.left(member, members.serverNowMs);
        log.info("dropped a long-expired member heartbeat", { member, silentForMs: opts.nodeTimeoutMs * MEMBER_DROP_AFTER_NODE_TIMEOUTS });
      } catch (err) {
        // Also when the member beat again in between (the revision moved): then it is no longer expired.
        log.warn("could not drop a long-expired member heartbeat; trying again at the next check", { member, err: ensureError(err) });
      }
    }
  };

  const rebalance = async () => {
    const epoch = epochNow();
    if (epoch === null) return;
    const next = assignPartitions(opts.partitions, members.alive("speed", opts.nodeTimeoutMs), current);
    for (const a of next) {
      const prev = current.get(a.partition);
      if (prev && prev.node === a.node && prev.generation === a.generation) continue;
      await writeAssignment(buckets.assignments, { ...a, epoch });
      log.info("partition assigned", { partition: a.partition, owner: a.node || "(none)", generation: a.generation, epoch });
      current.set(a.partition, { ...a, epoch });
    }
    await dropLongGone();
  };

  let ticking: Promise<void> = Promise.resolve();
  const tick = () => {
    ticking = ticking
      .then(() => (stopping ? undefined : rebalance()))
      .catch((err) => {
        if (err instanceof FencedError) void leadership.confirm().catch(() => undefined); // a newer leader wrote: step down
        log.error("membership check failed; retrying next tick", { err: ensureError(err) });
      });
    return ticking;
  };

  // Batch runs never overlap: each waits for the one before it. What runs now (a run with its
  // phase, or a rollback) is kept so that a request queued behind it can say what it waits for.
  let runs: Promise<unknown> = Promise.resolve();
  let busy: QueuedDetail | undefined;
  const busyListeners = new Set<(b: QueuedDetail) => void>();
  const setBusy = (b: QueuedDetail | undefined) => {
    busy = b;
    if (b) for (const l of busyListeners) l(b);
  };
  /** Runs `work` after everything queued before it, recording it as busy meanwhile. */
  const enqueue = <T>(first: QueuedDetail, work: () => Promise<T>, onStart?: () => void): Promise<T> => {
    const r = runs.then(() => {
      onStart?.();
      setBusy(first);
      return work().finally(() => setBusy(undefined));
    });
    runs = r.catch(() => undefined);
    return r;
  };
  const confirmLeader = async () => {
    mustLead();
    return leadership.confirm();
  };
  const runNow = (progress?: RunProgress, onStart?: () => void): Promise<Watermark> => {
    const tracked: RunProgress = (phase, detail) => {
      setBusy({ busyWith: Number(detail.run ?? busy?.busyWith ?? 0), busyPhase: phase });
      progress?.(phase, detail);
    };
    return enqueue(
      { busyWith: 0, busyPhase: "starting" },
      () =>
        timedRun(deps.observe?.metrics, () =>
          runBatch(
            { nc: deps.nc, catalog, names: deps.names, buckets, confirmLeader, signal: dutySignal(), log },
            {
              partitions: opts.partitions,
              coordinatorId: opts.coordinatorId,
              archiverTimeoutMs: opts.archiverTimeoutMs ?? ARCHIVER_TIMEOUT_MS,
              executorTimeoutMs: opts.executorTimeoutMs ?? EXECUTOR_TIMEOUT_MS,
              viewVersionsKept: opts.viewVersionsKept,
              retention,
            },
            tracked,
          ),
        ),
      onStart,
    );
  };

  const rollback = (run: number) => {
    const r = enqueue({ busyWith: run, busyPhase: "rollback" }, async () =>
      rollbackTo({ nc: deps.nc, names: deps.names, buckets, viewVersionsKept: opts.viewVersionsKept, epoch: await confirmLeader() }, run),
    );
    return r.then((done) => {
      log.warn("watermark rolled back by an operator", { run, from: done.from });
      return done;
    });
  };

  let nextRunAtMs: number | null = null;
  // A catalog that changed since the last run: adopt it now rather than at the next interval,
  // because until a run computes them, added metrics are refused and redefined ones answer as before.
  const adoptIfChanged = async (why: string) => {
    if (epochNow() === null) return;
    // A malformed watermark key must not stop a leader from leading (its rollback repairs it).
    const last = await readWatermarkState(buckets.watermark);
    if (last.kind !== "watermark" || !catalogDiffers(catalog, last.watermark)) return;
    log.info(`${why}; running a batch now to adopt it`);
    runNow().catch(() => undefined); // runBatch logged and recorded the failure
  };
  const unsubscribe = deps.catalogFeed?.subscribe(async (next, version) => {
    catalog = next;
    if (!stopping) await adoptIfChanged(`catalog version ${version} applied`);
  });

  /** Starts the leader's duties under `epoch`, after fencing off the leader before. */
  const lead = async (epoch: number) => {
    await takeOver(buckets, opts.partitions, opts.coordinatorId, epoch, log);
    current = await readAssignments(buckets.assignments, opts.partitions);
    const ticker = setInterval(() => void tick(), opts.heartbeatIntervalMs);
    nextRunAtMs = opts.batchIntervalMs > 0 ? Date.now() + opts.batchIntervalMs : null;
    // One scheduled run at a time: a run longer than the interval does not pile up runs behind it.
    let scheduled = false;
    const scheduler =
      opts.batchIntervalMs > 0
        ? setInterval(() => {
            nextRunAtMs = Date.now() + opts.batchIntervalMs;
            if (stopping || scheduled || epochNow() === null) return;
            scheduled = true;
            runNow()
              .catch(() => undefined) // runBatch logged and recorded the failure
              .finally(() => (scheduled = false));
          }, opts.batchIntervalMs)
        : undefined;
    const runNowSub = serveRunRequests(deps.nc, deps.names, ({ wantsProgress, reply }) => {
      const progress: RunProgress | undefined = wantsProgress
        ? (phase, detail) => reply({ kind: "progress", run: Number(detail.run ?? 0), phase, detail: JSON.stringify(detail) })
        : undefined;
      // Busy with another run: say so now and at each of its phase changes, until this one starts,
      // so a client waits knowingly instead of taking the silence for no coordinator.
      const queued = (b: QueuedDetail) => reply({ kind: "progress", run: 0, phase: QUEUED_PHASE, detail: JSON.stringify(b) });
      if (wantsProgress && busy) {
        queued(busy);
        busyListeners.add(queued);
      }
      runNow(progress, () => busyListeners.delete(queued)).then(
        (watermark) => reply({ kind: "published", watermark }),
        (e) => reply({ kind: "failed", error: ensureError(e).message }),
      );
    });
    const rollbackSub = serveRollbackRequests(deps.nc, deps.names, log, (run) =>
      rollback(run).then(
        ({ watermark, from }): RollbackReply => ({ kind: "rolled_back", watermark, from }),
        (e): RollbackReply => {
          if (e instanceof RollbackRefusedError) return { kind: "refused", reason: e.message };
          throw e;
        },
      ),
    );
    const abort = new AbortController();
    duty = {
      epoch,
      signal: abort.signal,
      stop() {
        // A run in flight stops waiting now; the next leader gives it an outcome (takeover.ts).
        abort.abort(new NotLeaderError(opts.coordinatorId, stopping ? "it is stopping" : "it stood down"));
        clearInterval(ticker);
        if (scheduler) clearInterval(scheduler);
        runNowSub.unsubscribe();
        rollbackSub.unsubscribe();
        nextRunAtMs = null;
      },
    };
    await tick();
    await adoptIfChanged("the catalog changed since the last batch run");
    log.info("coordinator leading", { epoch, partitions: opts.partitions, batchIntervalMs: opts.batchIntervalMs });
  };
  const standBy = () => {
    duty?.stop();
    duty = null;
  };

  const leadership = await startLeadership(buckets.coordinator, { id: opts.coordinatorId, leaseMs: opts.leaderLeaseMs, renewMs: opts.leaderRenewMs }, log, async (epoch) => {
    standBy();
    if (epoch !== null && !stopping) {
      await lead(epoch).catch((err) => {
        // Fenced while taking over (an even newer leader) or NATS failed (a JetStream election): give the
        // lease up, or it would be renewed by a coordinator that does not lead. The lease decides again.
        standBy();
        log.error("could not take over as leader; resigning the lead", { epoch, err: ensureError(err) });
        leadership.resign(`taking over failed: ${ensureError(err).message}`);
      });
    }
  });
  serverTimeSeen = (ms) => leadership.serverTimeSeen(ms);
  await leadership.join();
  const heartbeat = await startHeartbeat(buckets.members, "coordinator", opts.coordinatorId, opts.heartbeatIntervalMs, log, () => {
    const epoch = epochNow();
    return epoch !== null ? { state: "leader", epoch, nextRunAtMs } : { state: "standby", epoch: leadership.observed()?.epoch ?? 0 };
  });
  log.info("coordinator running", { leading: epochNow() !== null, leaseMs: opts.leaderLeaseMs });
  const unobserve = deps.observe ? coordinatorGauges(deps.observe.metrics, { leading: () => epochNow() !== null, nc: deps.nc, names: deps.names, partitions: opts.partitions }) : () => {};
  failHealthOnEnd(memberWatch.ended, deps.observe?.health, "members watch", "the members");

  const lifecycle = closeable(async () => {
    stopping = true;
    unobserve();
    unsubscribe?.();
    standBy();
    await ticking;
    await runs;
    await leadership.stop();
    memberWatch.stop();
    await heartbeat.stop();
    log.info("coordinator closed");
  });
  return {
    leaderEpoch: epochNow,
    runNow: async (progress) => {
      mustLead();
      return runNow(progress);
    },
    rollback: async (run) => {
      mustLead();
      return rollback(run);
    },
    assignments: () => [...current.values()].sort((a, b) => a.partition - b.partition),
    ...lifecycle,
  };
}
