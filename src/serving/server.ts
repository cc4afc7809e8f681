/**
 * The serving node: the gRPC API (lambda.v1.LambdaService), the standard health
 * service and server reflection, so grpcurl and other stock tools work. It
 * follows the watermark bucket and answers every query at the newest watermark.
 *
 * States: starting → serving → stopping → closed.
 */
import { fileURLToPath } from "node:url";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";
import type { NatsConnection } from "@nats-io/transport-node";
import type { ClickHouseClient } from "@clickhouse/client";
import type { Catalog } from "../core/catalog.js";
import { ensureError } from "../core/errors.js";
import { closeable, type Closeable } from "../core/lifecycle.js";
import type { Logger } from "../core/logger.js";
import { parseWatermark, type Watermark } from "../core/watermark.js";
import { createSpeedClient } from "../actors/index.js";
import { readWatermark } from "../coordinator/index.js";
import { decode } from "../nats/codec.js";
import { WATERMARK_KEY, type Names } from "../nats/names.js";
import { openBuckets } from "../nats/setup.js";
import { LambdaServiceService } from "../gen/lambda/v1/serving.js";
import { readBatchStates } from "../ch/views.js";
import { cachedBatchReader, type CachedBatchReader } from "./batch_cache.js";
import { lambdaService } from "./handlers.js";
import type { WatermarkSource } from "./query.js";

export const SERVICE_NAME = "lambda.v1.LambdaService";
const PROTO_ROOT = fileURLToPath(new URL("../../../proto", import.meta.url));

export interface ServingOptions {
  host: string;
  /** 0 picks a free port; the chosen one is reported by `port`. */
  port: number;
  partitions: number;
  database: string;
}

export interface ServingDeps {
  nc: NatsConnection;
  ch: ClickHouseClient;
  catalog: Catalog;
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

  let latest: Watermark | null = (await readWatermark(buckets.watermark))?.watermark ?? null;
  const watermarks: WatermarkSource = {
    current: () => latest,
    refresh: async () => {
      const r = await readWatermark(buckets.watermark);
      if (r && (!latest || r.watermark.run > latest.run)) latest = r.watermark;
      return latest;
    },
  };
  const watch = await buckets.watermark.watch({ key: WATERMARK_KEY });
  void (async () => {
    for await (const e of watch) {
      if (e.operation !== "PUT") continue;
      try {
        const w = parseWatermark(decode(e.value));
        if (!latest || w.run > latest.run) latest = w;
      } catch (err) {
        log.error("ignoring a malformed watermark", { err: ensureError(err) });
      }
    }
  })();

  const batchCache = cachedBatchReader((metric, run, keys, fromMs, toMs) => readBatchStates(deps.ch, opts.database, metric, run, keys, fromMs, toMs));
  const impl = lambdaService({ catalog: deps.catalog, partitions: opts.partitions, speed, watermarks, readBatch: batchCache.read, log });

  const server = new Server();
  server.addService(LambdaServiceService, impl);
  const health = new HealthImplementation({ "": "SERVING", [SERVICE_NAME]: "SERVING" });
  health.addToServer(server);
  const pkg = protoLoader.loadSync([`${PROTO_ROOT}/lambda/v1/serving.proto`, healthProtoPath], { includeDirs: [PROTO_ROOT] });
  new ReflectionService(pkg).addToServer(server);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${opts.host}:${opts.port}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const address = `${opts.host === "0.0.0.0" ? "127.0.0.1" : opts.host}:${port}`;
  log.info("serving node listening", { address });

  const lifecycle = closeable(async () => {
      health.setStatus("", "NOT_SERVING");
      health.setStatus(SERVICE_NAME, "NOT_SERVING");
      watch.stop();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 5_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      log.info("serving node closed");
  });
  return { port, address, batchCache, ...lifecycle };
}
