/**
 * The serving node: the gRPC API (lambda.v1.LambdaService), the standard health
 * service and server reflection, so grpcurl and other stock tools work. It
 * follows the watermark bucket and answers every query at the newest watermark.
 *
 * States: starting → serving → stopping → closed.
 */
import { fileURLToPath } from "node:url";
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";
import type { NatsConnection } from "@nats-io/transport-node";
import type { ClickHouseClient } from "@clickhouse/client";
import type { Catalog } from "../core/catalog.js";
import { ensureError, InvalidQueryError } from "../core/errors.js";
import { closeable, type Closeable } from "../core/lifecycle.js";
import type { Logger } from "../core/logger.js";
import { parseWatermark, type Watermark } from "../core/watermark.js";
import { createSpeedClient } from "../actors/index.js";
import { readWatermark } from "../coordinator/index.js";
import { decode } from "../nats/codec.js";
import { WATERMARK_KEY, type Names } from "../nats/names.js";
import { openBuckets } from "../nats/setup.js";
import {
  LambdaServiceService,
  type GetWatermarkRequest,
  type GetWatermarkResponse,
  type LambdaServiceServer,
  type QueryRequest,
  type QueryResponse,
  type Watermark as WatermarkMsg,
} from "../gen/lambda/v1/serving.js";
import { answerQuery, type WatermarkSource } from "./query.js";
import { toServiceError } from "./status_codes.js";

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
}

export function watermarkToProto(w: Watermark): WatermarkMsg {
  return {
    run: w.run,
    cuts: w.cuts.map((seq, partition) => ({ partition, seq })),
    viewVersion: w.viewVersion,
    coveredFrom: w.coveredFromMs === null ? undefined : new Date(w.coveredFromMs),
    coveredTo: w.coveredToMs === null ? undefined : new Date(w.coveredToMs),
    eventsCovered: w.eventsCovered,
    publishedAt: new Date(w.publishedAtMs),
    coordinator: w.coordinator,
    timings: { barrierMs: w.timings.barrierMs, archiverFlushMs: w.timings.archiverFlushMs, recomputeMs: w.timings.recomputeMs },
  };
}

function timeField(d: Date | undefined, field: string): number {
  if (d === undefined) throw new InvalidQueryError(field, "is required (google.protobuf.Timestamp)");
  const ms = d.getTime();
  if (!Number.isFinite(ms)) throw new InvalidQueryError(field, "is not a valid timestamp");
  return ms;
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

  const impl: LambdaServiceServer = {
    query(call: ServerUnaryCall<QueryRequest, QueryResponse>, callback: sendUnaryData<QueryResponse>) {
      const req = call.request;
      (async () => {
        const q = { metric: req.metric, key: req.key, fromMs: timeField(req.from, "from"), toMs: timeField(req.to, "to") };
        const a = await answerQuery({ ch: deps.ch, database: opts.database, catalog: deps.catalog, partitions: opts.partitions, speed, watermarks }, q);
        return {
          metric: q.metric,
          key: q.key,
          from: new Date(q.fromMs),
          to: new Date(q.toMs),
          total: a.total,
          batchPart: a.batchPart,
          speedPart: a.speedPart,
          watermarkRun: a.run,
          partitions: a.partitions.map((p) => ({
            partition: p.partition,
            cutSeq: p.cutSeq,
            appliedSeq: p.appliedSeq,
            speedEventsHeld: p.heldEvents,
            generation: p.generation,
          })),
        } satisfies QueryResponse;
      })().then(
        (res) => callback(null, res),
        (err) => callback(toServiceError(err, log)),
      );
    },
    getWatermark(_call: ServerUnaryCall<GetWatermarkRequest, GetWatermarkResponse>, callback: sendUnaryData<GetWatermarkResponse>) {
      watermarks.refresh().then(
        (w) => callback(null, { present: w !== null, watermark: w ? watermarkToProto(w) : undefined }),
        (err) => callback(toServiceError(err, log)),
      );
    },
  };

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
  return { port, address, ...lifecycle };
}
