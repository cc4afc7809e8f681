/**
 * The operator API (`lambda.v1.AdminService`, served on the serving node's
 * address or on its own, with the admin token) as lambdactl sees it: promise-returning unary calls, each with a
 * deadline, and the two server streams (a batch run's progress, the watermark's
 * changes) as async iterables.
 *
 * Cancellation: a stream ends quietly when the caller's signal aborts. Only the
 * client's side of the call is cancelled; a batch run started by `runBatch`
 * goes on on the coordinator (that is what "detach" means). Failures are
 * {@link GrpcCallError}s, parsed once in ./grpc.ts; a refusal of a run named
 * on the command line becomes a {@link RunRefusedError} through
 * {@link namingRuns}, which lambdactl reports with exit 2.
 */
import { status, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import {
  AdminServiceClient,
  type DiffRunsResponse,
  type GetStatusResponse,
  type ListRunsResponse,
  type RollbackResponse,
  type RunBatchResponse,
  type VerifyResponse,
  type WatchWatermarkResponse,
} from "../gen/lambda/v1/admin.js";
import type { RunNumber } from "../core/ids.js";
import { GrpcCallError, isServiceError, toGrpcCallError } from "./grpc.js";
import { grpcChannel } from "./grpc_channel.js";
import type { GrpcTarget } from "./grpc_target.js";

/** The admin API, promise- and iterator-shaped. */
export interface AdminClient extends Disposable {
  /** Batch runs, newest first; at most `limit` of them. @throws GrpcCallError */
  listRuns(limit: number): Promise<ListRunsResponse>;
  /** What lies between the cuts of two runs. @throws GrpcCallError (NOT_FOUND, INVALID_ARGUMENT for runs it does not know or take) */
  diffRuns(fromRun: RunNumber, toRun: RunNumber): Promise<DiffRunsResponse>;
  /** The seam check of `run`, or of the current watermark's run when undefined. @throws GrpcCallError */
  verify(run: RunNumber | undefined): Promise<VerifyResponse>;
  /** Moves the watermark back to `run`. @throws GrpcCallError (FAILED_PRECONDITION when refused) */
  rollback(run: RunNumber): Promise<RollbackResponse>;
  /** @throws GrpcCallError */
  getStatus(): Promise<GetStatusResponse>;
  /**
   * Starts a batch run and yields its progress until "done" or "failed". When
   * `signal` aborts, the iteration ends without an error and the run continues
   * on the coordinator.
   * @throws GrpcCallError (while iterating)
   */
  runBatch(signal: AbortSignal): AsyncIterable<RunBatchResponse>;
  /**
   * The watermark now, then at every change, until `signal` aborts (then the
   * iteration ends without an error) or the server ends the stream.
   * @throws GrpcCallError (while iterating)
   */
  watchWatermark(signal: AbortSignal): AsyncIterable<WatchWatermarkResponse>;
  /** Closes the channel; idempotent. */
  close(): void;
}

export interface AdminClientOptions {
  /**
   * Deadline of each unary call, ms from its start. A stream has no deadline
   * (a watch runs until stopped), but waits at most this long for a connection.
   */
  readonly timeoutMs: number;
}

/** The server refused a run named on the command line: an unknown run, one past the current, a rollback it cannot do. */
export class RunRefusedError extends Error {
  override readonly name = "RunRefusedError";
  constructor(
    /** The command whose argument was refused, e.g. "watermark diff". */
    readonly command: string,
    /** The server's answer; its details say what was wrong. */
    readonly call: GrpcCallError,
  ) {
    super(`${call.codeName}: ${call.details}`, { cause: call });
  }
}

/** Status codes by which the server refuses a run argument (rather than failing). */
export const RUN_REFUSAL_CODES: readonly status[] = [status.INVALID_ARGUMENT, status.FAILED_PRECONDITION, status.NOT_FOUND];

/**
 * Awaits a call whose request names runs taken from the command line, and
 * turns the server's refusal of them into a {@link RunRefusedError}.
 * @throws RunRefusedError for {@link RUN_REFUSAL_CODES}; anything else as thrown.
 */
export async function namingRuns<T>(command: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (err instanceof GrpcCallError && RUN_REFUSAL_CODES.includes(err.code)) throw new RunRefusedError(command, err);
    throw err;
  }
}

/** Resolves when `signal` aborts (never rejects). */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })));
}

/**
 * Opens a channel to the admin API `target` describes (address, TLS, admin token).
 * @throws ConfigError when a TLS file cannot be read
 */
export function createAdminClient(target: GrpcTarget, opts: AdminClientOptions): AdminClient {
  const channel = grpcChannel(target);
  const client = new AdminServiceClient(target.address.value, channel.credentials, channel.options);
  const call = <T>(invoke: (cb: (err: ServiceError | null, res: T) => void) => void): Promise<T> =>
    new Promise((resolve, reject) => invoke((err, res) => (err ? reject(toGrpcCallError(err, target)) : resolve(res))));
  const options = () => ({ deadline: Date.now() + opts.timeoutMs });

  /** Waits for a connection, at most `opts.timeoutMs`; false when `signal` aborted first. */
  const connected = async (signal: AbortSignal): Promise<boolean> => {
    const ready = new Promise<true>((resolve, reject) =>
      client.waitForReady(Date.now() + opts.timeoutMs, (err) => {
        if (!err) return resolve(true);
        reject(new GrpcCallError(status.UNAVAILABLE, "UNAVAILABLE", `no connection within ${opts.timeoutMs} ms`, target.address, target.token?.from ?? null, { cause: err }));
      }),
    );
    ready.catch(() => undefined); // awaited below unless the signal wins the race; then its failure no longer matters
    return Promise.race([ready, aborted(signal).then(() => false)]);
  };

  async function* serverStream<T>(signal: AbortSignal, open: () => ClientReadableStream<T>): AsyncGenerator<T, void, undefined> {
    if (signal.aborted || !(await connected(signal))) return;
    const stream = open();
    const cancel = () => stream.cancel();
    signal.addEventListener("abort", cancel, { once: true });
    try {
      for await (const message of stream) yield message as T;
    } catch (err) {
      if (signal.aborted && isServiceError(err) && err.code === status.CANCELLED) return;
      throw toGrpcCallError(err, target);
    } finally {
      signal.removeEventListener("abort", cancel);
      // Ends the server's side when the caller stopped iterating early; a no-op once the call has ended.
      stream.cancel();
    }
  }

  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    client.close();
  };
  return {
    listRuns: (limit) => call<ListRunsResponse>((cb) => client.listRuns({ limit }, channel.metadata(), options(), cb)),
    diffRuns: (fromRun, toRun) => call<DiffRunsResponse>((cb) => client.diffRuns({ fromRun, toRun }, channel.metadata(), options(), cb)),
    verify: (run) => call<VerifyResponse>((cb) => client.verify({ run: run ?? 0 }, channel.metadata(), options(), cb)),
    rollback: (run) => call<RollbackResponse>((cb) => client.rollback({ run }, channel.metadata(), options(), cb)),
    getStatus: () => call<GetStatusResponse>((cb) => client.getStatus({}, channel.metadata(), options(), cb)),
    runBatch: (signal) => serverStream(signal, () => client.runBatch({}, channel.metadata())),
    watchWatermark: (signal) => serverStream(signal, () => client.watchWatermark({}, channel.metadata())),
    close,
    [Symbol.dispose]: close,
  };
}
