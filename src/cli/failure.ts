/**
 * What went wrong, as lambdactl reports it: one description per failure (a
 * stable code, the message, the exit code and the context a script may want)
 * that the entry prints either as a text line on stderr or, with `--json`, as
 * one JSON object on stdout:
 *
 *     {"error": {"code": "UNAVAILABLE", "message": "...", "target": "127.0.0.1:50051", ...}}
 *
 * JSON goes to stdout because that is where a script reading `--json` output
 * already looks (`lambdactl query ... --json | jq`); the exit code is the same
 * as without `--json`. A command whose failure is itself an outcome with a
 * JSON shape (refused ingest lines, a seam that is not exact, an invalid
 * catalog) prints that shape with the same `error` object added, so
 * `.error != null` tells every failure apart from success.
 */
import { status } from "@grpc/grpc-js";
import { ConfigError, ensureError } from "../core/errors.js";
import { RunRefusedError } from "./admin_grpc.js";
import { UsageError } from "./args.js";
import { ExitCodes, type ExitCode } from "./command.js";
import { LOCAL_CLUSTER_FILE, LocalClusterFileError, NotConfiguredError } from "./connection.js";
import { GrpcCallError } from "./grpc.js";
import { CatalogBucketMissingError, EventStreamMissingError, NatsUnreachableError } from "./nats.js";

/**
 * The `error.code` values lambdactl prints besides the gRPC status names
 * (`UNAVAILABLE`, `NOT_FOUND`, `INVALID_ARGUMENT`, ... for a failed gRPC call).
 */
export const FailureCodes = {
  /** Bad command line (exit 2). */
  usage: "USAGE",
  /** Connection settings missing or unreadable (exit 2). */
  config: "CONFIG",
  /** The serving node refused a run number (exit 2); `grpcCode` holds its status name. */
  runRefused: "RUN_REFUSED",
  /** NATS could not be reached. */
  natsUnreachable: "NATS_UNREACHABLE",
  /** No cluster with this prefix on that NATS server (no stream or bucket). */
  noCluster: "NO_CLUSTER",
  /** Ingest refused input lines (the output lists them). */
  refused: "REFUSED",
  /** `watermark verify`: batch and speed do not meet exactly. */
  notExact: "NOT_EXACT",
  /** A catalog file that is not valid, or that the running catalog cannot take. */
  invalidCatalog: "INVALID_CATALOG",
  /** `catalog show`: the cluster has stored no catalog yet. */
  noCatalog: "NO_CATALOG",
  /** `run`: the batch run failed (the message gives the coordinator's reason). */
  runFailed: "RUN_FAILED",
  /** The serving node ended a stream (`watermark --watch`, `run`) before it was done. */
  streamEnded: "STREAM_ENDED",
  /** The command ran and failed for a reason its message gives. */
  failed: "FAILED",
} as const;

/** One failure as lambdactl reports it. */
export interface Failure {
  /** A {@link FailureCodes} value or a gRPC status name. */
  readonly code: string;
  /** One line, without the `lambdactl:` prefix. */
  readonly message: string;
  readonly exitCode: ExitCode;
  /** Context for `--json` (the address called, the setting missing, ...). */
  readonly fields: Readonly<Record<string, unknown>>;
  /** The command the text line names (`lambdactl watermark diff: ...`); none for a plain `lambdactl: ...`. */
  readonly command?: string;
  /** True for a bad command line: the text output prints the command's usage (the overview without a command) after the line. */
  readonly showUsage?: boolean;
}

/** The JSON shape of a failure under `--json`. */
export interface FailureJson {
  readonly error: { readonly code: string; readonly message: string; readonly [field: string]: unknown };
}

/**
 * A command failed in a way it has already described: lambdactl prints the
 * message (or, with `--json`, the error object) and exits 1.
 */
export class CommandFailedError extends Error {
  override readonly name = "CommandFailedError";
  constructor(
    /** A {@link FailureCodes} value. */
    readonly code: string,
    message: string,
    readonly fields: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
  }
}

function grpcFailure(err: GrpcCallError): Failure {
  const where = err.unreachable
    ? ` (serving node ${err.target.value}, from ${err.target.from}${err.target.from === LOCAL_CLUSTER_FILE ? "; is `npm start` still running?" : ""})`
    : err.code === status.UNIMPLEMENTED
      ? ` (the serving node at ${err.target.value} does not offer this call; is it an older version than lambdactl, or does the admin API listen apart (--admin-grpc)?)`
      : err.code === status.UNAUTHENTICATED || err.code === status.PERMISSION_DENIED
        ? err.tokenFrom
          ? ` (token from ${err.tokenFrom})`
          : " (no token sent: pass --token-file, or set LAMBDA_GRPC_TOKEN_FILE / LAMBDA_GRPC_ADMIN_TOKEN_FILE)"
        : "";
  return {
    code: err.codeName,
    message: `${err.codeName}: ${err.details}${where}`,
    exitCode: ExitCodes.failure,
    fields: { details: err.details, target: err.target.value, targetFrom: err.target.from, unreachable: err.unreachable, ...(err.tokenFrom ? { tokenFrom: err.tokenFrom } : {}) },
  };
}

/** What `err` means for the operator: its code, message, exit code and context. */
export function describeFailure(err: unknown): Failure {
  if (err instanceof UsageError) {
    return { code: FailureCodes.usage, message: err.message, exitCode: ExitCodes.usage, fields: { command: err.command ?? null }, command: err.command, showUsage: true };
  }
  if (err instanceof NotConfiguredError) {
    return { code: FailureCodes.config, message: err.message, exitCode: ExitCodes.usage, fields: { setting: err.setting, flag: err.flag, envVar: err.envVar } };
  }
  if (err instanceof ConfigError) {
    return { code: FailureCodes.config, message: err.message, exitCode: ExitCodes.usage, fields: { setting: err.key, expected: err.expected } };
  }
  if (err instanceof LocalClusterFileError) {
    return { code: FailureCodes.config, message: err.message, exitCode: ExitCodes.usage, fields: { file: err.file } };
  }
  if (err instanceof RunRefusedError) {
    return {
      code: FailureCodes.runRefused,
      message: err.message,
      exitCode: ExitCodes.usage,
      command: err.command,
      fields: { command: err.command, grpcCode: err.call.codeName, details: err.call.details },
    };
  }
  if (err instanceof GrpcCallError) return grpcFailure(err);
  if (err instanceof NatsUnreachableError) {
    return { code: FailureCodes.natsUnreachable, message: err.message, exitCode: ExitCodes.failure, fields: { url: err.url, urlFrom: err.from } };
  }
  if (err instanceof EventStreamMissingError || err instanceof CatalogBucketMissingError) {
    return { code: FailureCodes.noCluster, message: err.message, exitCode: ExitCodes.failure, fields: { url: err.url } };
  }
  if (err instanceof CommandFailedError) return { code: err.code, message: err.message, exitCode: ExitCodes.failure, fields: err.fields };
  const e = ensureError(err);
  return { code: FailureCodes.failed, message: e.message, exitCode: ExitCodes.failure, fields: { name: e.name } };
}

/** A failure as `--json` prints it. */
export function failureJson(f: Pick<Failure, "code" | "message" | "fields">): FailureJson {
  return { error: { code: f.code, message: f.message, ...f.fields } };
}
