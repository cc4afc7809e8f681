/**
 * The one place errors become gRPC statuses. Besides the code and the `details` text
 * ("field: reason" for INVALID_ARGUMENT), a status carries google.rpc error details in the
 * `grpc-status-details-bin` trailer (a serialized google.rpc.Status), as richer clients read
 * them: BadRequest with the field violation for INVALID_ARGUMENT, RetryInfo for UNAVAILABLE,
 * PreconditionFailure for a batch view version this node cannot read.
 * An INTERNAL status never carries the internal message: it is logged with an error id, and the
 * client gets the id.
 */
import { randomBytes } from "node:crypto";
import { status, type ServiceError, Metadata } from "@grpc/grpc-js";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { BatchViewMissingError, ensureError, InvalidQueryError, PreconditionError, UnavailableError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";

/** The trailer grpc-js clients (and others) read google.rpc.Status from. */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";
/** PreconditionFailure violation type of a batch view version this node cannot read; its subject is "<table> run <N>". */
export const BATCH_VIEW_MISSING = "BATCH_VIEW_MISSING";
/** How long RetryInfo tells a client to wait before it retries an UNAVAILABLE call. */
export const UNAVAILABLE_RETRY_DELAY_MS = 500;

const TYPE_URL_PREFIX = "type.googleapis.com/";

/** google.protobuf.Any{type_url, value} */
function packAny(typeName: string, value: Uint8Array): Uint8Array {
  return new BinaryWriter().tag(1, WireType.LengthDelimited).string(TYPE_URL_PREFIX + typeName).tag(2, WireType.LengthDelimited).bytes(value).finish();
}

/** google.rpc.BadRequest{field_violations: [{field, description}]} */
function badRequest(field: string, description: string): Uint8Array {
  const violation = new BinaryWriter().tag(1, WireType.LengthDelimited).string(field).tag(2, WireType.LengthDelimited).string(description).finish();
  return packAny("google.rpc.BadRequest", new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(violation).finish());
}

/** google.rpc.PreconditionFailure{violations: [{type, subject, description}]} */
function preconditionFailure(type: string, subject: string, description: string): Uint8Array {
  const violation = new BinaryWriter()
    .tag(1, WireType.LengthDelimited)
    .string(type)
    .tag(2, WireType.LengthDelimited)
    .string(subject)
    .tag(3, WireType.LengthDelimited)
    .string(description)
    .finish();
  return packAny("google.rpc.PreconditionFailure", new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(violation).finish());
}

/** google.rpc.RetryInfo{retry_delay: google.protobuf.Duration} */
function retryInfo(delayMs: number): Uint8Array {
  const duration = new BinaryWriter()
    .tag(1, WireType.Varint)
    .int64(Math.floor(delayMs / 1000))
    .tag(2, WireType.Varint)
    .int32((delayMs % 1000) * 1_000_000)
    .finish();
  return packAny("google.rpc.RetryInfo", new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(duration).finish());
}

/** A status with google.rpc.Status{code, message, details} in its trailer. */
function withDetails(code: status, message: string, details: readonly Uint8Array[]): Partial<ServiceError> {
  const w = new BinaryWriter().tag(1, WireType.Varint).int32(code).tag(2, WireType.LengthDelimited).string(message);
  for (const d of details) w.tag(3, WireType.LengthDelimited).bytes(d);
  const metadata = new Metadata();
  metadata.set(STATUS_DETAILS_KEY, Buffer.from(w.finish()));
  return { code, details: message, metadata };
}

export function toServiceError(err: unknown, log: Logger): Partial<ServiceError> {
  const e = ensureError(err);
  if (e instanceof InvalidQueryError) return withDetails(status.INVALID_ARGUMENT, e.message, [badRequest(e.field, e.reason)]);
  if (e instanceof BatchViewMissingError) {
    const subject = `${e.table} run ${e.run}`;
    return withDetails(status.FAILED_PRECONDITION, e.message, [preconditionFailure(BATCH_VIEW_MISSING, subject, e.message)]);
  }
  if (e instanceof PreconditionError) return withDetails(status.FAILED_PRECONDITION, e.message, []);
  if (e instanceof UnavailableError) return withDetails(status.UNAVAILABLE, e.message, [retryInfo(UNAVAILABLE_RETRY_DELAY_MS)]);
  const errorId = randomBytes(8).toString("hex");
  log.error("request failed with an internal error", { errorId, err: e });
  return withDetails(status.INTERNAL, `internal error; see the serving log, error id ${errorId}`, []);
}
