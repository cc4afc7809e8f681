/**
 * The speed node: hosts the speed actors of the partitions the coordinator
 * assigns to it. It heartbeats into the members bucket, follows the assignments
 * bucket (starting and stopping actors as partitions come and go) and follows
 * the watermark (actors drop what it covers).
 *
 * States: starting → running → stopping → closed.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { catalogFingerprint, type Catalog } from "../core/catalog.js";
import { ensureError } from "../core/errors.js";
import { closeable, type Closeable } from "../core/lifecycle.js";
import type { Logger } from "../core/logger.js";
import type { Assignment, Heartbeat } from "../core/records.js";
import { parseWatermark } from "../core/watermark.js";
import { decode } from "../nats/codec.js";
import { putValue } from "../nats/kv.js";
import { speedMemberKey, WATERMARK_KEY, type Names } from "../nats/names.js";
import { openBuckets } from "../nats/setup.js";
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
  /** Ignore snapshots and rebuild every actor from the stream. @default false */
  forceReplay?: boolean;
}

export interface SpeedNodeDeps {
  nc: NatsConnection;
  catalog: Catalog;
  names: Names;
  log: Logger;
}

export type SpeedNodeState = "starting" | "running" | "stopping" | "closed";

export interface SpeedNode extends Closeable {
  readonly nodeId: string;
  state(): SpeedNodeState;
  /** Partitions whose actors run here. */
  partitions(): number[];
}

export async function createSpeedNode(deps: SpeedNodeDeps, opts: SpeedNodeOptions): Promise<SpeedNode> {
  const log = deps.log.child({ component: "speed-node", node: opts.nodeId });
  let state: SpeedNodeState = "starting";
  const buckets = await openBuckets(deps.nc, deps.names);
  const snapshots = createSnapshotStore(buckets.snapshots);
  const catalog = speedCatalog(deps.catalog);
  const fingerprint = catalogFingerprint(deps.catalog);

  const actors = new Map<number, RunningActor>();
  // Assignment changes are applied one at a time, in order.
  let reconciling: Promise<void> = Promise.resolve();

  const beat = () => {
    const hb: Heartbeat = { node: opts.nodeId, pid: process.pid, atMs: Date.now() };
    return putValue(buckets.members, speedMemberKey(opts.nodeId), hb).catch((err) => log.warn("heartbeat failed; will retry", { err: ensureError(err) }));
  };
  await beat();
  const heartbeat = setInterval(() => void beat(), opts.heartbeatIntervalMs);

  const onAssignment = (a: Assignment) => {
    reconciling = reconciling.then(async () => {
      if (state !== "running" && state !== "starting") return;
      const current = actors.get(a.partition);
      const mine = a.node === opts.nodeId;
      if (current && (!mine || current.generation !== a.generation)) {
        actors.delete(a.partition);
        // Lost the partition: the new owner's generation fences our snapshot writes.
        await current.stop(mine);
      }
      if (mine && !actors.has(a.partition)) {
        try {
          const actor = await startActor(
            { nc: deps.nc, names: deps.names, watermarks: buckets.watermark, snapshots, catalog, catalogFingerprint: fingerprint, log },
            {
              nodeId: opts.nodeId,
              partition: a.partition,
              generation: a.generation,
              dedupeHorizonIds: opts.dedupeHorizonIds,
              snapshotIntervalMs: opts.snapshotIntervalMs,
              forceReplay: opts.forceReplay ?? false,
            },
          );
          actors.set(a.partition, actor);
        } catch (err) {
          log.error("could not start speed actor; the partition stays unserved until reassigned", { partition: a.partition, err: ensureError(err) });
        }
      }
    });
  };

  const assignmentWatch = await buckets.assignments.watch({ key: "p.*" });
  void (async () => {
    for await (const e of assignmentWatch) {
      if (e.operation !== "PUT") continue;
      onAssignment(decode<Assignment>(e.value));
    }
  })();

  const watermarkWatch = await buckets.watermark.watch({ key: WATERMARK_KEY });
  void (async () => {
    for await (const e of watermarkWatch) {
      if (e.operation !== "PUT") continue;
      try {
        const w = parseWatermark(decode(e.value));
        for (const a of actors.values()) a.onWatermark(w);
      } catch (err) {
        log.error("ignoring a malformed watermark", { err: ensureError(err) });
      }
    }
  })();

  state = "running";
  log.info("speed node running");

  const lifecycle = closeable(async () => {
      state = "stopping";
      clearInterval(heartbeat);
      assignmentWatch.stop();
      watermarkWatch.stop();
      await reconciling;
      await Promise.all([...actors.values()].map((a) => a.stop(true)));
      actors.clear();
      // Tell the coordinator at once rather than after the heartbeat timeout.
      await buckets.members.delete(speedMemberKey(opts.nodeId)).catch(() => undefined); // best effort
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
