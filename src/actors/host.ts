/**
 * The speed node: hosts the speed actors of the partitions the coordinator
 * assigns to it. It heartbeats into the members bucket, follows the assignments
 * bucket (starting and stopping actors as partitions come and go) and follows
 * the watermark (actors drop what it covers).
 *
 * States: starting → running → stopping → closed.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Catalog } from "../core/catalog.js";
import { activeDefinitions } from "../core/definitions.js";
import { ensureError } from "../core/errors.js";
import { closeable, type Closeable } from "../core/lifecycle.js";
import type { Logger } from "../core/logger.js";
import type { Assignment } from "../core/records.js";
import { createSerialSteps, type RunningStep } from "../core/serial_steps.js";
import type { Watermark } from "../core/watermark.js";
import { watchAssignments } from "../nats/assignments_store.js";
import { startHeartbeat } from "../nats/members.js";
import type { Names } from "../nats/names.js";
import { openBuckets } from "../nats/setup.js";
import { createBarrierCheck } from "../nats/barrier_check.js";
import { streamPositionReader, type PositionReader } from "../nats/stream_position.js";
import { followWatermark } from "../nats/watermark_store.js";
import { failHealthOnEnd } from "../nats/kv.js";
import { watermarkGauges, type Observability } from "../core/metrics.js";
import { checkWatermark } from "../nats/watermark_trust.js";
import type { CatalogFeed } from "../nats/catalog_store.js";
import { createSnapshotStore } from "./snapshot_store.js";
import { startActor, type RunningActor } from "./actor.js";
import { speedCatalog } from "./speed_state.js";

export interface SpeedNodeOptions {
  /** Member id; must be unique among speed nodes. */
  nodeId: string;
  /** Heartbeat period. @default HEARTBEAT_INTERVAL_MS */
  heartbeatIntervalMs: number;
  /** Snapshot period per actor while events arrive. */
  snapshotIntervalMs: number;
  /** Ids remembered per partition to skip late copies. */
  dedupeHorizonIds: number;
  /** Stream partitions: a rebuild from a cut relearns ids from about horizon × partitions positions before it. */
  partitions: number;
  /** Ignore snapshots and rebuild every actor from the stream. @default false */
  forceReplay?: boolean;
  /**
   * An assignment change (an actor's stop or start) running this long is logged and fails
   * readiness; one running STEP_RESTART_FACTOR times as long fails liveness. @default STEP_STUCK_AFTER_MS
   */
  stepStuckAfterMs?: number;
}

export interface SpeedNodeDeps {
  nc: NatsConnection;
  /** The catalog at start. */
  catalog: Catalog;
  /** Newer catalog versions (nats/catalog_store): actors start new definitions from the cut. */
  catalogFeed?: CatalogFeed;
  names: Names;
  log: Logger;
  /** Where the stream's leader holds a sequence (nats/stream_position.ts); tests replace it to make a drifted history. */
  positions?: PositionReader;
  /** The process's metrics and readiness: actor gauges per partition, and "speed partitions" ready once every partition here is restored. */
  observe?: Observability;
}

/**
 * How long an actor waits for the stream's leader to confirm a position before it leaves its
 * partition out of an answer: within serving's wait for the actor (SPEED_REQUEST_TIMEOUT_MS).
 */
export const POSITION_CHECK_TIMEOUT_MS = 1_000;

export type SpeedNodeState = "starting" | "running" | "stopping" | "closed";

export interface SpeedNode extends Closeable {
  readonly nodeId: string;
  state(): SpeedNodeState;
  /** Partitions whose actors run here. */
  partitions(): number[];
}

/** First restart delay of a failed actor; doubles per failure in a row. */
export const ACTOR_RESTART_BASE_MS = 250;
/** Longest restart delay of an actor whose consume loop keeps failing (a record it cannot get past). */
export const ACTOR_RESTART_MAX_MS = 30_000;
/**
 * Longest delay before another try at starting an actor that could not start: that is NATS not
 * answering (a restart, an election), each try waits out its own timeouts, and the partition
 * is unserved until one succeeds, so the wait stays short.
 */
export const ACTOR_START_RETRY_MAX_MS = 2_000;
/** An actor that ran this long since its last failure starts its backoff again. */
const ACTOR_FAILURE_RESET_MS = 60_000;
/**
 * An actor's stop or start takes a few seconds at most (a snapshot written, NATS requests each
 * within its own timeout); one running this long holds up every assignment change queued
 * behind it, and is reported (logged, and the "speed node changes" readiness check fails).
 */
export const STEP_STUCK_AFTER_MS = 30_000;
/**
 * A change still running after this many times STEP_STUCK_AFTER_MS (5 minutes) will not end by
 * itself: /livez fails, so Kubernetes restarts the node, and its partitions move once its
 * heartbeat lapses.
 */
export const STEP_RESTART_FACTOR = 10;

export async function createSpeedNode(deps: SpeedNodeDeps, opts: SpeedNodeOptions): Promise<SpeedNode> {
  const log = deps.log.child({ component: "speed-node", node: opts.nodeId });
  let state: SpeedNodeState = "starting";
  const buckets = await openBuckets(deps.nc, deps.names);
  const snapshots = createSnapshotStore(buckets.snapshots, () => deps.nc.info?.max_payload ?? Number.POSITIVE_INFINITY);
  // The definitions actors compute: the catalog's and the current watermark's (core/definitions).
  let nodeCatalog = deps.catalog;
  // The watermark at start; actors are told each newer one once the node runs (below).
  let watermark: Watermark | null = null;
  let following = false;
  // Only a watermark a batch run published is applied: a forged one would drop segments (nats/watermark_trust.ts).
  const watermarks = await followWatermark(
    buckets.watermark,
    log,
    (w) => {
      watermark = w;
      if (following) reconcile(w);
    },
    { check: (w) => checkWatermark(buckets, w) },
  );
  // One check for every actor of the node, so a run's record is read once for all of them.
  const barriers = createBarrierCheck(buckets, log);
  const positions = deps.positions ?? streamPositionReader(deps.nc, deps.names.eventStream, POSITION_CHECK_TIMEOUT_MS);
  let catalog = speedCatalog(activeDefinitions(nodeCatalog, watermark));

  const actors = new Map<number, RunningActor>();
  // Assignment changes, actor restarts and rebuilds are applied one at a time, in order.
  const steps = createSerialSteps({ log, owner: "speed node", stuckAfterMs: opts.stepStuckAfterMs ?? STEP_STUCK_AFTER_MS });

  const heartbeat = await startHeartbeat(buckets.members, "speed", opts.nodeId, opts.heartbeatIntervalMs, log);

  const feed = deps.catalogFeed;
  const refreshCatalog = feed
    ? async () => {
        nodeCatalog = await feed.refresh();
      }
    : undefined;

  // Failed consume loops in a row per partition, for the restart backoff; reset once an actor has run a while.
  const failures = new Map<number, { count: number; lastAtMs: number }>();
  const restartTimers = new Set<NodeJS.Timeout>();
  /**
   * Starts the actor of `partition` again after a backoff that doubles with its failures in a
   * row, if the partition is still ours at `generation` then. @returns the failures in a row and the delay
   */
  const startLater = (partition: number, generation: number, forceReplay: boolean, maxDelayMs: number): { failures: number; delayMs: number } => {
    const now = Date.now();
    const prev = failures.get(partition);
    const count = prev && now - prev.lastAtMs < ACTOR_FAILURE_RESET_MS ? prev.count + 1 : 1;
    failures.set(partition, { count, lastAtMs: now });
    const delayMs = Math.min(maxDelayMs, ACTOR_RESTART_BASE_MS * 2 ** (count - 1));
    const timer = setTimeout(() => {
      restartTimers.delete(timer);
      void steps.queue(`restart the actor of partition ${partition}`, async () => {
        if (state !== "running" || actors.has(partition)) return;
        const owner = assigned.get(partition);
        if (owner?.node !== opts.nodeId || owner.generation !== generation) return; // moved away meanwhile
        await start(partition, generation, forceReplay);
      });
    }, delayMs);
    restartTimers.add(timer);
    return { failures: count, delayMs };
  };

  /**
   * The consume loop of `actor` died, or its consumer delivered a history the stream does not
   * hold; it already stopped answering. Restart it from its snapshot (or, for a wrong history,
   * from the cut) after a backoff, while the partition is still ours. A loop that keeps dying
   * keeps the partition unanswered (serving then fails the query) rather than answering stale state.
   */
  const onActorFailure = (actor: RunningActor, err: Error, rebuildFromCut: boolean) => {
    void steps.queue(`stop the failed actor of partition ${actor.partition}`, async () => {
      if (actors.get(actor.partition) === actor) actors.delete(actor.partition);
      await actor.stop(false);
    });
    const retry = startLater(actor.partition, actor.generation, rebuildFromCut || (opts.forceReplay ?? false), ACTOR_RESTART_MAX_MS);
    log.error(`speed actor failed; restarting it from its ${rebuildFromCut ? "cut" : "snapshot"} after a backoff`, { partition: actor.partition, generation: actor.generation, ...retry, err });
  };

  const start = async (partition: number, generation: number, forceReplay: boolean) => {
    try {
      let started: RunningActor | undefined;
      const actor = await startActor(
        {
          nc: deps.nc,
          names: deps.names,
          watermark: () => watermarks.refresh(),
          barriers,
          snapshots,
          catalog,
          sourceCatalog: () => nodeCatalog,
          refreshCatalog,
          // The loop can only fail after startActor returned: `started` is set by then.
          positions,
          onFailure: (err, rebuildFromCut) => onActorFailure(started!, err, rebuildFromCut),
          log,
        },
        { nodeId: opts.nodeId, partition, generation, dedupeHorizonIds: opts.dedupeHorizonIds, partitions: opts.partitions, warmUpPositions: opts.dedupeHorizonIds * opts.partitions, snapshotIntervalMs: opts.snapshotIntervalMs, forceReplay },
      );
      started = actor;
      actors.set(partition, actor);
    } catch (err) {
      // E.g. NATS was electing leaders and a read timed out (the fault matrix's F8): without a
      // retry the partition stayed unserved for good, since its node is alive and keeps it.
      const retry = startLater(partition, generation, forceReplay, ACTOR_START_RETRY_MAX_MS);
      log.error("could not start speed actor; trying again after a backoff", { partition, generation, ...retry, err: ensureError(err) });
    }
  };

  // The latest assignment of each partition, whoever it names.
  const assigned = new Map<number, Assignment>();
  const onAssignment = (a: Assignment) => {
    assigned.set(a.partition, a);
    // Fence now, not when the queued stop below runs: a node resumed after a pause may have
    // queries waiting that a newer owner answers.
    const running = actors.get(a.partition);
    if (running && (a.node !== opts.nodeId || running.generation !== a.generation)) running.fence();
    void steps.queue(`apply the assignment of partition ${a.partition} (${a.node === "" ? "none" : a.node}, generation ${a.generation})`, async () => {
      if (state !== "running" && state !== "starting") return;
      const current = actors.get(a.partition);
      const mine = a.node === opts.nodeId;
      if (current && (!mine || current.generation !== a.generation)) {
        actors.delete(a.partition);
        // Lost the partition: the new owner's generation fences our snapshot writes.
        await current.stop(mine);
      }
      if (mine && !actors.has(a.partition)) await start(a.partition, a.generation, opts.forceReplay ?? false);
    });
  };

  /**
   * Keeps every actor computing what the watermark and the catalog need. A watermark below an
   * actor's own is a rollback: the actor rebuilds from the stream at its cut. A definition an
   * actor lacks (a new catalog version, a rollback across a catalog change, or a coordinator with
   * a newer catalog than this node's) also makes it rebuild from the cut, computing it too;
   * definitions neither the watermark nor the catalog use any more are dropped.
   */
  const reconcile = (w: Watermark | null) => {
    catalog = speedCatalog(activeDefinitions(nodeCatalog, w));
    const rebuild: { actor: RunningActor; why: string }[] = [];
    for (const a of actors.values()) {
      const lacks = a.lacks(catalog);
      if (w && a.isBehind(w)) rebuild.push({ actor: a, why: "watermark rolled back below this actor" });
      else if (lacks.length > 0) rebuild.push({ actor: a, why: `${w ? `run ${w.run} or ` : ""}the catalog uses definitions this actor does not compute (${lacks.join(", ")})` });
      else {
        a.narrowTo(catalog);
        if (w) a.onWatermark(w);
      }
    }
    if (rebuild.length === 0) return;
    void steps.queue(`rebuild the actors of partitions ${rebuild.map((r) => r.actor.partition).join(", ")} from the cut`, async () => {
      for (const { actor: a, why } of rebuild) {
        if (actors.get(a.partition) !== a) continue;
        log.warn(`${why}: rebuilding from the cut`, { partition: a.partition, run: w?.run ?? 0 });
        actors.delete(a.partition);
        await a.stop(false);
        await start(a.partition, a.generation, true);
      }
    });
  };
  const unsubscribe = deps.catalogFeed?.subscribe((next) => {
    nodeCatalog = next;
    reconcile(watermark);
  });

  // A watch that ends while the node runs leaves it deaf to assignments or watermarks: nats/kv
  // logs that as an error; the node goes on with what it has.
  const assignmentWatch = await watchAssignments(buckets.assignments, log, onAssignment);
  following = true;
  // A watermark that arrived while the assignments were read is applied now.
  reconcile(watermark);

  const unobserve = deps.observe ? observeSpeedNode(deps.observe, { actors: () => [...actors.values()], mine: () => [...assigned.values()].filter((a) => a.node === opts.nodeId).map((a) => a.partition), watermark: () => watermarks.current(), steps, restartAfterMs: STEP_RESTART_FACTOR * (opts.stepStuckAfterMs ?? STEP_STUCK_AFTER_MS) }) : () => {};
  failHealthOnEnd(watermarks.ended, deps.observe?.health, "watermark watch", "the watermark");
  failHealthOnEnd(assignmentWatch.ended, deps.observe?.health, "assignment watch", "assignments");

  state = "running";
  log.info("speed node running");

  const lifecycle = closeable(async () => {
      state = "stopping";
      unobserve();
      for (const t of restartTimers) clearTimeout(t);
      restartTimers.clear();
      unsubscribe?.();
      assignmentWatch.stop();
      watermarks.stop();
      await steps.drained();
      await Promise.all([...actors.values()].map((a) => a.stop(true)));
      actors.clear();
      // Last: the coordinator moves the partitions once the heartbeat key is gone.
      await heartbeat.stop();
      state = "closed";
      log.info("speed node closed");
  });
  return {
    nodeId: opts.nodeId,
    state: () => state,
    partitions: () => [...actors.keys()].sort((a, b) => a - b),
    ...lifecycle,
  };
}

/**
 * The node's actors in its metrics (per partition: applied and confirmed sequence, held events,
 * segments; actors per phase; how long the running assignment change has run), from the status
 * each actor answers lambdactl with, and its readiness: every partition assigned here has an
 * actor that has caught up, and no assignment change has run for STEP_STUCK_AFTER_MS. Its
 * liveness fails once one change has run STEP_RESTART_FACTOR times as long.
 */
function observeSpeedNode(
  o: Observability,
  node: { actors(): RunningActor[]; mine(): number[]; watermark(): Watermark | null; steps: { running(): RunningStep | null; stuck(): RunningStep | null }; restartAfterMs: number },
): () => void {
  const m = o.metrics;
  const stopScrape = m.onScrape(() => {
    m.speedChangeRunningSeconds.set((node.steps.running()?.runningMs ?? 0) / 1000);
    for (const g of [m.speedAppliedSequence, m.speedConfirmedSequence, m.speedHeldEvents, m.speedSegments, m.speedActors]) g.reset();
    for (const a of node.actors()) {
      const s = a.status();
      const partition = String(s.partition);
      m.speedAppliedSequence.set({ partition }, s.appliedSeq);
      m.speedConfirmedSequence.set({ partition }, s.confirmedSeq);
      m.speedHeldEvents.set({ partition }, s.heldEvents);
      m.speedSegments.set({ partition }, s.segments.length);
      m.speedActors.inc({ phase: s.stalled ? "stalled" : s.phase });
    }
  });
  const stopWatermark = watermarkGauges(m, node.watermark);
  const stopCheck = o.health.addCheck("speed partitions", () => {
    const running = new Map(node.actors().map((a) => [a.partition, a.status()]));
    const behind = node.mine().filter((p) => running.get(p)?.phase !== "live");
    return behind.length === 0 ? null : `partitions not restored yet: ${behind.sort((a, b) => a - b).map((p) => `${p} (${running.get(p)?.phase ?? "starting"})`).join(", ")}`;
  });
  const describe = (s: RunningStep) => `"${s.what}" has run for ${Math.round(s.runningMs / 1000)} s; ${s.waiting} later change(s) wait behind it`;
  const stopStuckCheck = o.health.addCheck("speed node changes", () => {
    const s = node.steps.stuck();
    return s === null ? null : describe(s);
  });
  const stopLiveCheck = o.health.addLivenessCheck("speed node changes", () => {
    const s = node.steps.running();
    return s === null || s.runningMs < node.restartAfterMs ? null : `${describe(s)}; a restart moves this node's partitions`;
  });
  return () => {
    stopScrape();
    stopWatermark();
    stopCheck();
    stopStuckCheck();
    stopLiveCheck();
  };
}
