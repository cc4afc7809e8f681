/**
 * The coordinator (single instance for now): tracks speed-node membership,
 * keeps partitions assigned (balanced, sticky, generation-fenced), and runs
 * batch runs one at a time, on an interval and on demand (in process through
 * `runNow`, or over NATS on the run-now subject).
 *
 * States: running → stopping → closed.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { ClickHouseClient } from "@clickhouse/client";
import type { Catalog } from "../core/catalog.js";
import { catalogDiffers } from "../core/definitions.js";
import type { CatalogFeed } from "../nats/catalog_store.js";
import { ensureError } from "../core/errors.js";
import { closeable, type Closeable } from "../core/lifecycle.js";
import type { Logger } from "../core/logger.js";
import type { Assignment } from "../core/records.js";
import type { Watermark } from "../core/watermark.js";
import { ensureSchema } from "../ch/schema.js";
import { readAssignments, writeAssignment } from "../nats/assignments_store.js";
import { QUEUED_PHASE, serveRollbackRequests, serveRunRequests, type QueuedDetail, type RollbackReply } from "../nats/coordinator_control.js";
import { dropMember, startHeartbeat, watchMembers } from "../nats/members.js";
import type { Names } from "../nats/names.js";
import { openBuckets } from "../nats/setup.js";
import { readWatermark } from "../nats/watermark_store.js";
import { assignPartitions } from "./assignment.js";
import { runBatch, type RunProgress } from "./batch_run.js";
import { MEMBER_DROP_AFTER_NODE_TIMEOUTS, MembershipTracker } from "./membership.js";
import { RollbackRefusedError, rollbackTo } from "./rollback.js";

/** How long a batch run waits for the archiver by default. */
export const ARCHIVER_TIMEOUT_MS = 120_000;

export interface CoordinatorOptions {
  coordinatorId: string;
  partitions: number;
  database: string;
  /** 0 disables scheduled runs (on demand only). */
  batchIntervalMs: number;
  /** How often membership and assignments are checked. */
  heartbeatIntervalMs: number;
  nodeTimeoutMs: number;
  viewVersionsKept: number;
  /** @default ARCHIVER_TIMEOUT_MS */
  archiverTimeoutMs?: number;
}

export interface CoordinatorDeps {
  nc: NatsConnection;
  ch: ClickHouseClient;
  /** The catalog at start. */
  catalog: Catalog;
  /** Newer catalog versions (nats/catalog_store): each is adopted by a run at once. */
  catalogFeed?: CatalogFeed;
  names: Names;
  log: Logger;
}

export interface Coordinator extends Closeable {
  /** Runs a batch run now (after any run in progress) and returns its watermark. */
  runNow(progress?: RunProgress): Promise<Watermark>;
  /** Rolls the watermark back to `run` (after any run in progress). @throws RollbackRefusedError */
  rollback(run: number): Promise<{ watermark: Watermark; from: number }>;
  /** The current assignment of every partition. */
  assignments(): Assignment[];
}

export async function createCoordinator(deps: CoordinatorDeps, opts: CoordinatorOptions): Promise<Coordinator> {
  const log = deps.log.child({ component: "coordinator", coordinator: opts.coordinatorId });
  let catalog = deps.catalog;
  await ensureSchema(deps.ch, opts.database, catalog);
  const buckets = await openBuckets(deps.nc, deps.names);
  const membership = new MembershipTracker(opts.nodeTimeoutMs);
  const longGone = new MembershipTracker(opts.nodeTimeoutMs * MEMBER_DROP_AFTER_NODE_TIMEOUTS);
  const current = await readAssignments(buckets.assignments, opts.partitions);
  let stopping = false;

  // Heartbeat revisions per member key (`<role>.<id>`), kept current by a watch (a delete is a clean goodbye).
  const heartbeats = new Map<string, number>();
  const memberWatch = await watchMembers(buckets.members, log, (member, revision) => {
    if (revision === null) heartbeats.delete(member);
    else heartbeats.set(member, revision);
  });

  // A member that died without a goodbye leaves its key behind; drop it once it is long
  // expired. The delete names the revision seen, so a member that came back in between keeps its key.
  const dropLongGone = async (now: number) => {
    longGone.observe(heartbeats, now);
    for (const { member, revision } of longGone.expired(now)) {
      try {
        await dropMember(buckets.members, member, revision);
        log.info("dropped a long-expired member heartbeat", { member, silentForMs: opts.nodeTimeoutMs * MEMBER_DROP_AFTER_NODE_TIMEOUTS });
      } catch (err) {
        // Also when the member beat again in between (the revision moved): then it is no longer expired.
        log.warn("could not drop a long-expired member heartbeat; trying again at the next check", { member, err: ensureError(err) });
      }
    }
  };

  const rebalance = async () => {
    const now = Date.now();
    const speedNodes = new Map([...heartbeats].filter(([k]) => k.startsWith("speed.")).map(([k, rev]) => [k.slice("speed.".length), rev]));
    membership.observe(speedNodes, now);
    const next = assignPartitions(opts.partitions, membership.alive(now), current);
    for (const a of next) {
      const prev = current.get(a.partition);
      if (prev && prev.node === a.node && prev.generation === a.generation) continue;
      await writeAssignment(buckets.assignments, a);
      log.info("partition assigned", { partition: a.partition, owner: a.node || "(none)", generation: a.generation });
      current.set(a.partition, a);
    }
    await dropLongGone(now);
  };

  let ticking: Promise<void> = Promise.resolve();
  const tick = () => {
    ticking = ticking.then(() => (stopping ? undefined : rebalance())).catch((err) => log.error("membership check failed; retrying next tick", { err: ensureError(err) }));
    return ticking;
  };
  await tick();
  const ticker = setInterval(() => void tick(), opts.heartbeatIntervalMs);

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
  const runNow = (progress?: RunProgress, onStart?: () => void): Promise<Watermark> => {
    const tracked: RunProgress = (phase, detail) => {
      setBusy({ busyWith: Number(detail.run ?? busy?.busyWith ?? 0), busyPhase: phase });
      progress?.(phase, detail);
    };
    return enqueue(
      { busyWith: 0, busyPhase: "starting" },
      () =>
        runBatch(
          { nc: deps.nc, ch: deps.ch, catalog, names: deps.names, buckets, log },
          {
            partitions: opts.partitions,
            database: opts.database,
            coordinatorId: opts.coordinatorId,
            archiverTimeoutMs: opts.archiverTimeoutMs ?? ARCHIVER_TIMEOUT_MS,
            viewVersionsKept: opts.viewVersionsKept,
          },
          tracked,
        ),
      onStart,
    );
  };

  const rollback = (run: number) => {
    const r = enqueue({ busyWith: run, busyPhase: "rollback" }, () => rollbackTo({ nc: deps.nc, names: deps.names, buckets, viewVersionsKept: opts.viewVersionsKept }, run));
    return r.then((done) => {
      log.warn("watermark rolled back by an operator", { run, from: done.from });
      return done;
    });
  };

  let nextRunAtMs: number | null = opts.batchIntervalMs > 0 ? Date.now() + opts.batchIntervalMs : null;
  const scheduler =
    opts.batchIntervalMs > 0
      ? setInterval(() => {
          nextRunAtMs = Date.now() + opts.batchIntervalMs;
          if (!stopping) runNow().catch(() => undefined); // runBatch logged and recorded the failure
        }, opts.batchIntervalMs)
      : undefined;
  // A catalog that changed since the last run: adopt it now rather than at the next interval,
  // because until a run computes them, added metrics are refused and redefined ones answer as before.
  const adoptIfChanged = async (why: string) => {
    const last = await readWatermark(buckets.watermark);
    if (!last || !catalogDiffers(catalog, last.watermark)) return;
    log.info(`${why}; running a batch now to adopt it`);
    runNow().catch(() => undefined); // runBatch logged and recorded the failure
  };
  await adoptIfChanged("the catalog changed since the last batch run");
  const unsubscribe = deps.catalogFeed?.subscribe(async (next, version) => {
    await ensureSchema(deps.ch, opts.database, next);
    catalog = next;
    if (!stopping) await adoptIfChanged(`catalog version ${version} applied`);
  });
  const heartbeat = await startHeartbeat(buckets.members, "coordinator", opts.coordinatorId, opts.heartbeatIntervalMs, log, () => ({ state: "leader", nextRunAtMs }));

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
  log.info("coordinator running", { partitions: opts.partitions, batchIntervalMs: opts.batchIntervalMs });

  const lifecycle = closeable(async () => {
      stopping = true;
      unsubscribe?.();
      clearInterval(ticker);
      memberWatch.stop();
      if (scheduler) clearInterval(scheduler);
      runNowSub.unsubscribe();
      rollbackSub.unsubscribe();
      await ticking;
      await runs;
      await heartbeat.stop();
      log.info("coordinator closed");
  });
  return {
    runNow,
    rollback,
    assignments: () => [...current.values()].sort((a, b) => a.partition - b.partition),
    ...lifecycle,
  };
}
