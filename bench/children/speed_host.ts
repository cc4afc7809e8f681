/**
 * Bench helper process: a speed node (createSpeedNode, the product's speed
 * layer) alone in a process started with --expose-gc, so its heap can be
 * measured after a full collection without anything else in the process.
 *
 * Calls: start {…} → the node runs; heap → process.memoryUsage() after gc().
 */
import { loadCatalog } from "../../src/core/catalog.js";
import { createJsonLogger } from "../../src/core/logger.js";
import { createSpeedNode, type SpeedNode } from "../../src/actors/index.js";
import { connectNats } from "../../src/nats/connect.js";
import { namesFor } from "../../src/nats/names.js";
import type { NatsConnection } from "@nats-io/transport-node";
import { serveParent } from "./ipc.js";

/** The speed node's settings, as the cluster's config has them. */
export interface SpeedHostStart {
  natsUrl: string;
  prefix: string;
  catalogPath: string;
  nodeId: string;
  heartbeatIntervalMs: number;
  snapshotIntervalMs: number;
  dedupeHorizonIds: number;
  partitions: number;
}

let nc: NatsConnection | undefined;
let node: SpeedNode | undefined;

const gc = (globalThis as { gc?: () => void }).gc;

serveParent(
  {
    async start(b: SpeedHostStart) {
      nc = await connectNats(b.natsUrl, `bench speed host ${b.nodeId}`);
      node = await createSpeedNode(
        { nc, catalog: loadCatalog(b.catalogPath), names: namesFor(b.prefix), log: createJsonLogger("error", { node: b.nodeId }) },
        { nodeId: b.nodeId, heartbeatIntervalMs: b.heartbeatIntervalMs, snapshotIntervalMs: b.snapshotIntervalMs, dedupeHorizonIds: b.dedupeHorizonIds, partitions: b.partitions },
      );
      return { pid: process.pid };
    },
    heap() {
      if (!gc) throw new Error("the speed host needs --expose-gc");
      gc();
      gc();
      return process.memoryUsage();
    },
  },
  async () => {
    await node?.close();
    await nc?.close();
  },
);
