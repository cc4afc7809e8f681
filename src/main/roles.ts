/**
 * Wiring: the only place that builds roles from configuration. A process runs
 * any mix of roles; the ClickHouse-touching ones (archiver, coordinator,
 * serving) share one ClickHouse client, which is how the embedded chDB engine
 * (one process per data directory) works.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Catalog } from "../core/catalog.js";
import type { ResolvedConfig } from "../core/config.js";
import type { Closeable } from "../core/lifecycle.js";
import { closeable } from "../core/lifecycle.js";
import type { Logger } from "../core/logger.js";
import { createSpeedNode, type SpeedNode } from "../actors/index.js";
import { createArchiver, type Archiver } from "../batch/index.js";
import { openClickHouse, type ChHandle } from "../ch/client.js";
import { ensureSchema } from "../ch/schema.js";
import { createCoordinator, type Coordinator } from "../coordinator/index.js";
import { namesFor } from "../nats/names.js";
import { ensureStreams } from "../nats/setup.js";
import { createServingNode, type ServingNode } from "../serving/index.js";

export interface RunningRoles extends Closeable {
  readonly ch?: ChHandle;
  readonly archiver?: Archiver;
  readonly coordinator?: Coordinator;
  readonly serving?: ServingNode;
  readonly speed?: SpeedNode;
}

/**
 * Starts the roles `cfg.roles` names on `nc`. Closing stops them in the order
 * that loses nothing: stop taking queries, stop scheduling runs, flush the
 * archiver, snapshot the speed actors, then close ClickHouse.
 */
export async function startRoles(cfg: ResolvedConfig, nc: NatsConnection, catalog: Catalog, log: Logger): Promise<RunningRoles> {
  const names = namesFor(cfg.prefix);
  await ensureStreams(nc, names, { duplicateWindowMs: cfg.duplicateWindowMs });
  const wants = (r: string) => cfg.roles.includes(r as never);
  const needsCh = wants("archiver") || wants("coordinator") || wants("serving");
  const ch = needsCh ? await openClickHouse({ url: cfg.clickhouseUrl, username: cfg.clickhouseUser, password: cfg.clickhousePassword, chdbPath: cfg.chdbPath }) : undefined;
  const started: { archiver?: Archiver; coordinator?: Coordinator; serving?: ServingNode; speed?: SpeedNode } = {};
  const shutdown = async () => {
    await started.serving?.close();
    await started.coordinator?.close();
    await started.archiver?.close();
    await started.speed?.close();
    await ch?.close();
  };
  try {
    if (ch) await ensureSchema(ch.client, cfg.database, catalog);
    if (ch && wants("archiver")) {
      started.archiver = await createArchiver(
        { nc, ch, catalog, names, log },
        {
          nodeId: cfg.nodeId,
          heartbeatIntervalMs: cfg.heartbeatIntervalMs,
          partitions: cfg.partitions,
          database: cfg.database,
          flushIntervalMs: cfg.archiverFlushIntervalMs,
          flushRows: cfg.archiverFlushRows,
        },
      );
    }
    if (ch && wants("coordinator")) {
      started.coordinator = await createCoordinator(
        { nc, ch: ch.client, catalog, names, log },
        {
          coordinatorId: cfg.nodeId,
          partitions: cfg.partitions,
          database: cfg.database,
          batchIntervalMs: cfg.batchIntervalMs,
          heartbeatIntervalMs: cfg.heartbeatIntervalMs,
          nodeTimeoutMs: cfg.nodeTimeoutMs,
          viewVersionsKept: cfg.viewVersionsKept,
        },
      );
    }
    if (wants("speed")) {
      started.speed = await createSpeedNode(
        { nc, catalog, names, log },
        { nodeId: cfg.nodeId, heartbeatIntervalMs: cfg.heartbeatIntervalMs, snapshotIntervalMs: cfg.snapshotIntervalMs, dedupeHorizonIds: cfg.dedupeHorizonIds, partitions: cfg.partitions },
      );
    }
    if (ch && wants("serving")) {
      started.serving = await createServingNode(
        { nc, ch: ch.client, catalog, names, log },
        { host: cfg.grpcHost, port: cfg.grpcPort, partitions: cfg.partitions, database: cfg.database, nodeId: cfg.nodeId, heartbeatIntervalMs: cfg.heartbeatIntervalMs, viewVersionsKept: cfg.viewVersionsKept },
      );
    }
  } catch (err) {
    await shutdown().catch(() => undefined); // best effort: report the start failure, not the cleanup
    throw err;
  }
  return { ch, ...started, ...closeable(shutdown) };
}
