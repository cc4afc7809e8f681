/**
 * Wiring: the only place that builds roles from configuration. A process runs
 * any mix of roles; the ClickHouse-touching ones (archiver, batch executor,
 * serving) share one ClickHouse client, which is how the embedded chDB engine
 * (one process per data directory) works.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { CatalogFile } from "../core/catalog.js";
import type { ResolvedConfig } from "../core/config.js";
import type { Closeable } from "../core/lifecycle.js";
import { closeable } from "../core/lifecycle.js";
import type { Logger } from "../core/logger.js";
import { createSpeedNode, type SpeedNode } from "../actors/index.js";
import { createArchiver, startBatchExecutor, type Archiver } from "../batch/index.js";
import { withDiskGuard } from "../ch/disk_guard.js";
import { withFaultSeams } from "../ch/insert_fault.js";
import { openClickHouse, type ChHandle } from "../ch/client.js";
import { chOptionsOf, type ChOptions } from "../ch/connection_options.js";
import { layoutOf, writerSettings } from "../ch/layout.js";
import { readOnlyClient } from "../ch/read_only.js";
import { awaitServingSchema, ensureSchema } from "../ch/schema.js";
import { createCoordinator, type Coordinator } from "../coordinator/index.js";
import { namesFor } from "../nats/names.js";
import { watchNatsConnection } from "../nats/connection_watch.js";
import { checkClickHouseReachable, countClickHouseErrors } from "../ch/observe.js";
import type { Observability } from "../core/metrics.js";
import { followCatalog, seedCatalog, type CatalogFeed } from "../nats/catalog_store.js";
import { agreeOnSettings } from "../nats/cluster_settings.js";
import { ensureStreams, openBuckets, streamReplicas } from "../nats/setup.js";
import { createServingNode, type ServingNode, type ServingSecurityOptions } from "../serving/index.js";

export interface RunningRoles extends Closeable {
  /** The cluster's catalog as this process follows it (nats/catalog_store). */
  readonly catalogFeed: CatalogFeed;
  readonly ch?: ChHandle;
  readonly archiver?: Archiver;
  readonly coordinator?: Coordinator;
  readonly executor?: Closeable;
  readonly serving?: ServingNode;
  readonly speed?: SpeedNode;
}

/** The serving node's TLS and token settings in `cfg`. */
export function servingSecurity(cfg: ResolvedConfig): ServingSecurityOptions {
  return {
    tlsCertFile: cfg.grpcTlsCertFile,
    tlsKeyFile: cfg.grpcTlsKeyFile,
    tlsClientCaFile: cfg.grpcTlsClientCaFile,
    tlsReloadMs: cfg.grpcTlsReloadMs,
    tokenFile: cfg.grpcTokenFile,
    adminTokenFile: cfg.grpcAdminTokenFile,
  };
}

/**
 * How this process reaches ClickHouse: in a cluster, a process that writes (archiver, batch
 * executor) sends the cluster's consistency settings with every request (ch/layout.ts
 * writerSettings); a process that only serves sends none of them, so it works with a read-only
 * user whose profile holds what it reads with (ch/read_only.ts).
 */
function clickHouseOptions(cfg: ResolvedConfig, writes: boolean): ChOptions {
  const opts = chOptionsOf(cfg);
  return writes ? { ...opts, settings: writerSettings(layoutOf(cfg)) } : opts;
}

/**
 * Starts the roles `cfg.roles` names on `nc`, with the cluster's catalog: a
 * coordinator applies `file` to the catalog bucket first when the bucket is
 * empty or the file changed (nats/catalog_store seedCatalog), and every role
 * follows the bucket from there. Closing stops them in the order that loses
 * nothing: stop taking queries, stop scheduling runs, flush the archiver,
 * snapshot the speed actors, then close ClickHouse.
 * @throws ClusterSettingsError when the cluster was started with another partition count
 * @throws CatalogRefusedError when a coordinator's file changed in a way the running catalog cannot take
 */
export async function startRoles(cfg: ResolvedConfig, nc: NatsConnection, file: CatalogFile, log: Logger, observe?: Observability): Promise<RunningRoles> {
  const names = namesFor(cfg.prefix);
  const unwatchNats = watchNatsConnection(nc, observe ?? {}, log);
  // Every process creates what is missing with the same replica count (one decision: nats/setup.ts).
  const replicas = streamReplicas(nc, cfg.natsReplicas);
  // A role whose user may not create them waits for a coordinator (pods start in any order).
  const wait = { timeoutMs: cfg.natsSetupWaitMs, log };
  await ensureStreams(nc, names, { duplicateWindowMs: cfg.duplicateWindowMs, replicas, log, wait });
  const wants = (r: string) => cfg.roles.includes(r as never);
  const buckets = await openBuckets(nc, names, replicas, log, wait);
  await agreeOnSettings(buckets.coordinator, cfg.partitions, cfg.nodeId, wait);
  if (wants("coordinator")) await seedCatalog(buckets.catalog, file, cfg.nodeId, log);
  const catalogFeed = await followCatalog(buckets.catalog, file.catalog, log);
  const catalog = catalogFeed.current();
  // Only the archiver and the batch executor write ClickHouse; serving alone works with a read-only user.
  const writesCh = wants("archiver") || wants("executor");
  const needsCh = writesCh || wants("serving");
  const opened = needsCh
    ? withFaultSeams(withDiskGuard(await openClickHouse(clickHouseOptions(cfg, writesCh), { log }), cfg.chdbPath, cfg.chdbMinFreeMb), cfg.faultDir)
    : undefined;
  const ch = opened && observe ? countClickHouseErrors(opened, observe.metrics) : opened;
  const unwatchCh = ch && observe ? checkClickHouseReachable(ch.client, observe.health) : () => {};
  const started: { archiver?: Archiver; coordinator?: Coordinator; executor?: Closeable; serving?: ServingNode; speed?: SpeedNode } = {};
  const shutdown = async () => {
    await started.serving?.close();
    await started.coordinator?.close();
    await started.executor?.close();
    await started.archiver?.close();
    await started.speed?.close();
    await ch?.close();
    catalogFeed.stop();
    unwatchCh();
    unwatchNats();
  };
  try {
    if (ch && writesCh) await ensureSchema(ch.client, cfg.database, catalog, ch.layout);
    else if (ch) await awaitServingSchema(ch.client, cfg.database, catalog, { timeoutMs: cfg.clickhouseSchemaWaitMs, log });
    if (ch && wants("archiver")) {
      started.archiver = await createArchiver(
        { nc, ch, catalog, catalogFeed, names, log, observe },
        {
          nodeId: cfg.nodeId,
          heartbeatIntervalMs: cfg.heartbeatIntervalMs,
          partitions: cfg.partitions,
          database: cfg.database,
          flushIntervalMs: cfg.archiverFlushIntervalMs,
          flushRows: cfg.archiverFlushRows,
          leaseMs: cfg.archiverLeaseMs,
          renewMs: cfg.archiverRenewMs,
        },
      );
    }
    if (ch && wants("executor")) {
      started.executor = await startBatchExecutor(
        { nc, ch: ch.client, catalogFeed, names, coordinatorKv: buckets.coordinator, membersKv: buckets.members, log },
        { database: cfg.database, nodeId: cfg.nodeId, heartbeatIntervalMs: cfg.heartbeatIntervalMs, layout: ch.layout },
      );
    }
    if (wants("coordinator")) {
      started.coordinator = await createCoordinator(
        { nc, catalog, catalogFeed, names, log, observe },
        {
          coordinatorId: cfg.nodeId,
          partitions: cfg.partitions,
          batchIntervalMs: cfg.batchIntervalMs,
          heartbeatIntervalMs: cfg.heartbeatIntervalMs,
          nodeTimeoutMs: cfg.nodeTimeoutMs,
          leaderLeaseMs: cfg.leaderLeaseMs,
          leaderRenewMs: cfg.leaderRenewMs,
          viewVersionsKept: cfg.viewVersionsKept,
          streamRetention: cfg.streamRetention,
          streamRetentionExtraRuns: cfg.streamRetentionExtraRuns,
          dedupeHorizonIds: cfg.dedupeHorizonIds,
        },
      );
    }
    if (wants("speed")) {
      started.speed = await createSpeedNode(
        { nc, catalog, catalogFeed, names, log, observe },
        { nodeId: cfg.nodeId, heartbeatIntervalMs: cfg.heartbeatIntervalMs, snapshotIntervalMs: cfg.snapshotIntervalMs, dedupeHorizonIds: cfg.dedupeHorizonIds, partitions: cfg.partitions },
      );
    }
    if (ch && wants("serving")) {
      started.serving = await createServingNode(
        { nc, ch: await readOnlyClient(ch.client, { engine: ch.engine, layout: ch.layout, log }), catalog, catalogFeed, names, log, observe },
        {
          host: cfg.grpcHost,
          port: cfg.grpcPort,
          partitions: cfg.partitions,
          database: cfg.database,
          nodeId: cfg.nodeId,
          heartbeatIntervalMs: cfg.heartbeatIntervalMs,
          nodeTimeoutMs: cfg.nodeTimeoutMs,
          viewVersionsKept: cfg.viewVersionsKept,
          batchCacheStates: cfg.batchCacheStates,
          admin: cfg.grpcAdminPort === null ? null : { host: cfg.grpcAdminHost, port: cfg.grpcAdminPort },
          security: servingSecurity(cfg),
        },
      );
    }
  } catch (err) {
    await shutdown().catch(() => undefined); // best effort: report the start failure, not the cleanup
    throw err;
  }
  return { catalogFeed, ch, ...started, ...closeable(shutdown) };
}
