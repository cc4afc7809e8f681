/** The one place errors become gRPC statuses. */
import { status, type ServiceError, Metadata } from "@grpc/grpc-js";
import { ensureError, InvalidQueryError, PreconditionError, UnavailableError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";

export function toServiceError(err: unknown, log: Logger): Partial<ServiceError> {
  const e = ensureError(err);
  if (e instanceof InvalidQueryError) return { code: status.INVALID_ARGUMENT, details: e.message, metadata: new Metadata() };
  if (e instanceof PreconditionError) return { code: status.FAILED_PRECONDITION, details: e.message, metadata: new Metadata() };
  if (e instanceof UnavailableError) return { code: status.UNAVAILABLE, details: e.message, metadata: new Metadata() };
  log.error("query failed", { err: e });
  return { code: status.INTERNAL, details: `internal error: ${e.message}`, metadata: new Metadata() };
}
