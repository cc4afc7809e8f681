/**
 * The serving node: the gRPC API (lambda.v1.LambdaService), the operator API
 * (lambda.v1.AdminService, on the same port or its own), the standard health
 * service and server reflection, so grpcurl and other stock tools work. It
 * follows the watermark bucket and answers every query at the newest watermark.
 * TLS, tokens and client certificates: listeners.ts and docs/security.md.
 *
 * States: starting → serving → stopping → closed.
 */
import { HealthImplementation } from "grpc-health-check";
import type { NatsConnection } from "@nats-io/transport-node";
import type { ClickHouseClient } from "@clickhouse/client";
import type { Catalog } from "../core/catalog.js";
import { closeable, type Closeable } from "../core/lifecycle.js";
import type { Logger } from "../core/logger.js";
import { createSpeedClient } from "../actors/index.js";
import type { Names } from "../nats/names.js";
import { openBuckets } from "../nats/setup.js";
import { fixedCatalog, type CatalogFeed } from "../nats/catalog_store.js";
import { LambdaServiceService } from "../gen/lambda/v1/serving.js";
import { AdminServiceService } from "../gen/lambda/v1/admin.js";
import { adminService } from "./admin.js";
import { readBatchKeys, readBatchStates } from "../ch/views.js";
import { cachedBatchReader, type CachedBatchReader } from "./batch_cache.js";
import { keyFilteredBatchReader, type KeyFilteredBatchReader } from "./batch_keys.js";
import { lambdaService } from "./handlers.js";
import { startHeartbeat } from "../nats/members.js";
import { followWatermark } from "../nats/watermark_store.js";
import { watchAssignments } from "../nats/assignments_store.js";
import { partitionRecordsAfter } from "../nats/partition_records.js";
import type { Assignment } from "../core/records.js";
import { checkServedWatermark } from "./view_check.js";
import { guardService } from "./request_guard.js";
import { counterFollower, watermarkGauges, type Observability } from "../core/metrics.js";
import type { Watermark } from "../core/watermark.js";
import { failHealthOnEnd } from "../nats/kv.js";
import { ensureError } from "../core/errors.js";
import { startListeners, type ListenAt, type Listeners, type ServingSecurityOptions } from "./listeners.js";

export const SERVICE_NAME = "lambda.v1.LambdaService";
export const ADMIN_SERVICE_NAME = "lambda.v1.AdminService";

export interface ServingOptions {
  host: string;
  /** 0 picks a free port; the chosen one is reported by `port`. */
  port: number;
  partitions: number;
  database: string;
  /** Member id for the heartbeat. */
  nodeId: string;
  heartbeatIntervalMs: number;
  /** `status` shows members whose heartbeat is older than this as gone (LAMBDA_NODE_TIMEOUT_MS). */
  nodeTimeoutMs: number;
  /** Batch view versions the coordinator keeps (LAMBDA_VIEW_VERSIONS_KEPT). */
  viewVersionsKept: number;
  /** Window states the batch-view cache holds at most; 0: no cache (LAMBDA_BATCH_CACHE_STATES). @default BATCH_CACHE_STATES */
  batchCacheStates?: number;
  /** The admin API's own listener (LAMBDA_GRPC_ADMIN_HOST/PORT). @default null: on `host`:`port` beside the queries */
  admin?: ListenAt | null;
  /** TLS and tokens. @default none: plain text, every call allowed */
  security?: ServingSecurityOptions;
}

export interface ServingDeps {
  nc: NatsConnection;
  ch: ClickHouseClient;
  /** The catalog at start. */
  catalog: Catalog;
  /** Newer catalog versions (nats/catalog_store); without it the node keeps `catalog`. */
  catalogFeed?: CatalogFeed;
  names: Names;
  log: Logger;
  /**
   * The process's metrics (call latency by method and code, batch cache, the watermark) and
   * readiness; with it the gRPC health service follows the process's readiness (/readyz).
   */
  observe?: Observability;
}

/** How often the gRPC health status is brought in line with the process's readiness. */
export const HEALTH_SYNC_MS = 1_000;

export interface ServingNode extends Closeable {
  /** The port the server listens on (the real one when 0 was asked). */
  readonly port: number;
  /** host:port for clients. */
  readonly address: string;
  /** host:port of the admin API: `address` unless it listens apart. */
  readonly adminAddress: string;
  /** Hits and misses of the batch-view cache. */
  readonly batchCache: CachedBatchReader;
}

export async function createServingNode(deps: ServingDeps, opts: ServingOptions): Promise<ServingNode> {
  const log = deps.log.child({ component: "serving" });
  const buckets = await openBuckets(deps.nc, deps.names);
  const speed = createSpeedClient(deps.nc, deps.names);

  const feed = deps.catalogFeed ?? fixedCatalog(deps.catalog);
  // Answers only at a watermark a batch run published and whose views this node can read; a node
  // refusing the newest keeps answering at the last good one, and still comes up.
  const watermarks = await followWatermark(buckets.watermark, log, undefined, { check: (w, stopped) => checkServedWatermark(deps.ch, opts.database, buckets, feed.current(), w, log, stopped) });
  // Queries carry the generation of each partition's owner: a former owner answers not_owner.
  const assignments = new Map<number, Assignment>();
  const assignmentWatch = await watchAssignments(buckets.assignments, log, (a) => assignments.set(a.partition, a));
  const heartbeat = await startHeartbeat(buckets.members, "serving", opts.nodeId, opts.heartbeatIntervalMs, log);

  const batchCache = cachedBatchReader((metric, run, keys, fromMs, toMs) => readBatchStates(deps.ch, opts.database, metric, run, keys, fromMs, toMs), opts.batchCacheStates);
  // A key the view version lacks (a new one) is answered without a read: see batch_keys.ts.
  const batchKeys = keyFilteredBatchReader(batchCache.read, (metric, run, limit) => readBatchKeys(deps.ch, opts.database, metric, run, limit), {
    onError: (err, metric, run) => log.warn("could not read the keys of a batch view version; its reads go through meanwhile", { metric, run, err: ensureError(err) }),
  });
  // Handlers read the catalog on every call: through these getters they see the newest version.
  const impl = lambdaService({
    get catalog() {
      return feed.current();
    },
    partitions: opts.partitions,
    speed,
    watermarks,
    readBatch: batchKeys.read,
    // NATS's own default when the server sent no info yet (it does on every connect).
    maxPayloadBytes: () => deps.nc.info?.max_payload ?? 1_048_576,
    assignmentOf: (p) => assignments.get(p),
    recordsAfter: partitionRecordsAfter(deps.nc, deps.names),
    log,
  });

  const health = new HealthImplementation({ "": "SERVING", [SERVICE_NAME]: "SERVING", [ADMIN_SERVICE_NAME]: "SERVING" });
  const admin = adminService({
    nc: deps.nc,
    ch: deps.ch,
    get catalog() {
      return feed.current();
    },
    names: deps.names,
    buckets,
    speed,
    partitions: opts.partitions,
    database: opts.database,
    viewVersionsKept: opts.viewVersionsKept,
    nodeTimeoutMs: opts.nodeTimeoutMs,
    watermarks,
    log,
  });
  let listeners: Listeners;
  try {
    listeners = await startListeners(
      {
        lambda: { name: SERVICE_NAME, definition: guardService(LambdaServiceService), implementation: impl },
        admin: { name: ADMIN_SERVICE_NAME, definition: guardService(AdminServiceService), implementation: admin },
        health,
      },
      { main: { host: opts.host, port: opts.port }, admin: opts.admin ?? null },
      opts.security ?? {},
      log,
      deps.observe?.metrics,
    );
  } catch (err) {
    // Nothing listens: undo what started before the listeners.
    watermarks.stop();
    assignmentWatch.stop();
    await heartbeat.stop();
    speed.close();
    throw err;
  }
  const { main } = listeners;
  const unobserve = deps.observe ? observeServing(deps.observe, health, batchCache, batchKeys, () => watermarks.current(), log) : () => {};
  failHealthOnEnd(watermarks.ended, deps.observe?.health, "watermark watch", "the watermark");
  failHealthOnEnd(assignmentWatch.ended, deps.observe?.health, "assignment watch", "assignments");

  const lifecycle = closeable(async () => {
      unobserve();
      health.setStatus("", "NOT_SERVING");
      health.setStatus(SERVICE_NAME, "NOT_SERVING");
      health.setStatus(ADMIN_SERVICE_NAME, "NOT_SERVING");
      watermarks.stop();
      assignmentWatch.stop();
      await heartbeat.stop();
      await listeners.shutdown();
      speed.close();
      log.info("serving node closed");
  });
  return { port: main.port, address: main.address, adminAddress: listeners.admin.address, batchCache, ...lifecycle };
}

/**
 * The serving node in its process's metrics (batch cache hits and misses, reads its key sets
 * spared, the watermark it answers at), and its gRPC health following the process's readiness: NOT_SERVING while NATS
 * or ClickHouse does not answer, or a watch this node needs has ended.
 */
function observeServing(o: Observability, health: HealthImplementation, cache: CachedBatchReader, keySets: KeyFilteredBatchReader, watermark: () => Watermark | null, log: Logger): () => void {
  const follow = counterFollower(o.metrics.batchCacheRequests);
  const followKeys = counterFollower(o.metrics.batchKeyFilterReads);
  const stopScrape = o.metrics.onScrape(() => {
    const { hits, misses } = cache.stats();
    follow({ result: "hit" }, hits);
    follow({ result: "miss" }, misses);
    const k = keySets.stats();
    followKeys({ result: "skipped" }, k.skipped);
    followKeys({ result: "narrowed" }, k.narrowed);
    o.metrics.batchKeySets.set(k.sets);
    o.metrics.batchKeysHeld.set(k.keys);
  });
  const stopWatermark = watermarkGauges(o.metrics, watermark);
  let serving = true;
  let syncing = false;
  let stopped = false;
  const sync = async () => {
    if (syncing) return;
    syncing = true;
    try {
      const r = await o.health.readiness();
      // Stopping sets NOT_SERVING for good: a check that ends after it must not undo that.
      if (stopped || r.ready === serving) return;
      serving = r.ready;
      const next = serving ? "SERVING" : "NOT_SERVING";
      for (const service of ["", SERVICE_NAME, ADMIN_SERVICE_NAME]) health.setStatus(service, next);
      if (serving) log.info("gRPC health: SERVING again (the process is ready)");
      else log.warn("gRPC health: NOT_SERVING (the process is not ready)", { failing: r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`) });
    } catch (err) {
      log.error("could not check readiness for gRPC health", { err: ensureError(err) });
    } finally {
      syncing = false;
    }
  };
  const timer = setInterval(() => void sync(), HEALTH_SYNC_MS);
  timer.unref();
  void sync();
  return () => {
    stopped = true;
    clearInterval(timer);
    stopScrape();
    stopWatermark();
  };
}
