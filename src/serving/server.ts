/**
 * The serving node: the gRPC API (lambda.v1.LambdaService), the standard health
 * service and server reflection, so grpcurl and other stock tools work. It
 * follows the watermark bucket and answers every query at the newest watermark.
 *
 * States: starting → serving → stopping → closed.
 */
import { Server, ServerCredentials } from "@grpc/grpc-js";
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
import { readBatchStates } from "../ch/views.js";
import { cachedBatchReader, type CachedBatchReader } from "./batch_cache.js";
import { lambdaService } from "./handlers.js";
import { startHeartbeat } from "../nats/members.js";
import { followWatermark } from "../nats/watermark_store.js";
import { watchAssignments } from "../nats/assignments_store.js";
import { partitionRecordsAfter } from "../nats/partition_records.js";
import type { Assignment } from "../core/records.js";
import { checkServedWatermark } from "./view_check.js";
import { guardService } from "./request_guard.js";
import { addReflection } from "./reflection.js";
import { clientAddress, hostPort } from "./address.js";

export const SERVICE_NAME = "lambda.v1.LambdaService";
export const ADMIN_SERVICE_NAME = "lambda.v1.AdminService";
const HEALTH_SERVICE_NAME = "grpc.health.v1.Health";

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
}

export interface ServingNode extends Closeable {
  /** The port the server listens on (the real one when 0 was asked). */
  readonly port: number;
  /** host:port for clients. */
  readonly address: string;
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
  const watermarks = await followWatermark(buckets.watermark, log, undefined, { check: (w) => checkServedWatermark(deps.ch, opts.database, buckets, feed.current(), w, log) });
  // Queries carry the generation of each partition's owner: a former owner answers not_owner.
  const assignments = new Map<number, Assignment>();
  const assignmentWatch = await watchAssignments(buckets.assignments, log, (a) => assignments.set(a.partition, a));
  const heartbeat = await startHeartbeat(buckets.members, "serving", opts.nodeId, opts.heartbeatIntervalMs, log);

  const batchCache = cachedBatchReader((metric, run, keys, fromMs, toMs) => readBatchStates(deps.ch, opts.database, metric, run, keys, fromMs, toMs));
  // Handlers read the catalog on every call: through these getters they see the newest version.
  const impl = lambdaService({
    get catalog() {
      return feed.current();
    },
    partitions: opts.partitions,
    speed,
    watermarks,
    readBatch: batchCache.read,
    // NATS's own default when the server sent no info yet (it does on every connect).
    maxPayloadBytes: () => deps.nc.info?.max_payload ?? 1_048_576,
    assignmentOf: (p) => assignments.get(p),
    recordsAfter: partitionRecordsAfter(deps.nc, deps.names),
    log,
  });

  const server = new Server();
  server.addService(guardService(LambdaServiceService), impl);
  server.addService(
    guardService(AdminServiceService),
    adminService({
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
    }),
  );
  const health = new HealthImplementation({ "": "SERVING", [SERVICE_NAME]: "SERVING", [ADMIN_SERVICE_NAME]: "SERVING" });
  health.addToServer(server);
  // Reflection serves buf's descriptors as compiled (src/gen/descriptors.ts), not proto-loader's.
  addReflection(server, [SERVICE_NAME, ADMIN_SERVICE_NAME, HEALTH_SERVICE_NAME]);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(hostPort(opts.host, opts.port), ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const bind = hostPort(opts.host, port);
  const address = clientAddress(opts.host, port);
  // bind is what the socket listens on; address is where a client on this machine connects.
  log.info("serving node listening", { bind, address });

  const lifecycle = closeable(async () => {
      health.setStatus("", "NOT_SERVING");
      health.setStatus(SERVICE_NAME, "NOT_SERVING");
      health.setStatus(ADMIN_SERVICE_NAME, "NOT_SERVING");
      watermarks.stop();
      assignmentWatch.stop();
      await heartbeat.stop();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 5_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      speed.close();
      log.info("serving node closed");
  });
  return { port, address, batchCache, ...lifecycle };
}
