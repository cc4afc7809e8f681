/**
 * The serving node as lambdactl sees it: promise-returning calls over the
 * generated gRPC client, each with a deadline, and gRPC failures parsed once
 * into {@link GrpcCallError} (the status code's name and the server's details).
 */
import { status, type ServiceError } from "@grpc/grpc-js";
import {
  LambdaServiceClient,
  type DescribeMetricResponse,
  type GetWatermarkResponse,
  type ListMetricsResponse,
  type QueryRequest,
  type QueryResponse,
  type TopKRequest,
  type TopKResponse,
} from "../gen/lambda/v1/serving.js";
import type { Sourced } from "./connection.js";
import { grpcChannel } from "./grpc_channel.js";
import type { GrpcTarget } from "./grpc_target.js";

/** A gRPC call failed; `codeName` is the status name, e.g. "INVALID_ARGUMENT". */
export class GrpcCallError extends Error {
  override readonly name = "GrpcCallError";
  constructor(
    readonly code: status,
    readonly codeName: string,
    /** The server's message (for INVALID_ARGUMENT it names the field). */
    readonly details: string,
    /** The address called and where it came from. */
    readonly target: Sourced<string>,
    /** Where the bearer token sent came from (never the token); null when none was sent. */
    readonly tokenFrom: string | null = null,
    options?: { cause?: unknown },
  ) {
    super(`${codeName}: ${details}`, options);
  }

  /** True for failures to reach the server at all, where the address is worth showing. */
  get unreachable(): boolean {
    return this.code === status.UNAVAILABLE || this.code === status.DEADLINE_EXCEEDED;
  }
}

/** True for an error grpc-js reports a call's status with. */
export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number" && typeof (err as Partial<ServiceError>).details === "string";
}

/** A grpc-js call failure to `target` as a {@link GrpcCallError}; anything else unchanged. Parses foreign errors in one place. */
export function toGrpcCallError(err: unknown, target: GrpcTarget): unknown {
  if (!isServiceError(err)) return err;
  return new GrpcCallError(err.code, status[err.code] ?? `code ${err.code}`, err.details, target.address, target.token?.from ?? null, { cause: err });
}

/** The serving node's API, promise-shaped. */
export interface ServingClient extends Disposable {
  /** @throws GrpcCallError */
  query(request: QueryRequest): Promise<QueryResponse>;
  /** @throws GrpcCallError */
  topK(request: TopKRequest): Promise<TopKResponse>;
  /** @throws GrpcCallError */
  getWatermark(): Promise<GetWatermarkResponse>;
  /** @throws GrpcCallError */
  listMetrics(): Promise<ListMetricsResponse>;
  /** @throws GrpcCallError (INVALID_ARGUMENT for an unknown metric) */
  describeMetric(metric: string): Promise<DescribeMetricResponse>;
  /** Closes the channel; idempotent. */
  close(): void;
}

export interface ServingClientOptions {
  /** Deadline of each call, ms from its start. */
  readonly timeoutMs: number;
}

/**
 * Opens a channel to the serving node `target` describes (address, TLS, token).
 * @throws ConfigError when a TLS file cannot be read
 */
export function createServingClient(target: GrpcTarget, opts: ServingClientOptions): ServingClient {
  const channel = grpcChannel(target);
  const client = new LambdaServiceClient(target.address.value, channel.credentials, channel.options);
  const call = <T>(invoke: (cb: (err: ServiceError | null, res: T) => void) => void): Promise<T> =>
    new Promise((resolve, reject) =>
      invoke((err, res) => (err ? reject(toGrpcCallError(err, target)) : resolve(res))),
    );
  const options = () => ({ deadline: Date.now() + opts.timeoutMs });
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    client.close();
  };
  return {
    query: (request) => call<QueryResponse>((cb) => client.query(request, channel.metadata(), options(), cb)),
    topK: (request) => call<TopKResponse>((cb) => client.topK(request, channel.metadata(), options(), cb)),
    getWatermark: () => call<GetWatermarkResponse>((cb) => client.getWatermark({}, channel.metadata(), options(), cb)),
    listMetrics: () => call<ListMetricsResponse>((cb) => client.listMetrics({}, channel.metadata(), options(), cb)),
    describeMetric: (metric) => call<DescribeMetricResponse>((cb) => client.describeMetric({ metric }, channel.metadata(), options(), cb)),
    close,
    [Symbol.dispose]: close,
  };
}
