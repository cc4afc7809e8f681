/**
 * Checks on a request's bytes before the generated decoder reads them, for what the decoded
 * request can no longer show or what makes the decoder throw:
 *   - google.protobuf.Timestamp fields out of protobuf's range (seconds from 0001-01-01 to
 *     9999-12-31, nanos in [0, 999 999 999]): ts-proto turns them into a Date, where nanos=-1
 *     is a millisecond earlier and nanos=1e9 a second later;
 *   - 64-bit integers past 2^53, which the generated code (forceLong=number) cannot hold and
 *     throws on, and which grpc-js would answer INTERNAL "Error deserializing request";
 *   - a request larger than MAX_REQUEST_BYTES.
 * A refused request is still handed to its handler, as the method's default request with the
 * refusal kept beside it (`refusalOf`), so the handler answers INVALID_ARGUMENT naming the field.
 */
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { ensureError, InvalidQueryError } from "../core/errors.js";

/**
 * Largest request a method accepts, in bytes (2.5 MiB). A legal query needs about 1 MiB at most
 * (MAX_QUERY_KEYS keys of MAX_KEY_BYTES); the headroom lets a request with keys that are too
 * long reach the check that names them. grpc-js refuses requests past 4 MiB itself (RESOURCE_EXHAUSTED).
 */
export const MAX_REQUEST_BYTES = 2_621_440;
/** Timestamp seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, protobuf's Timestamp range. */
export const MIN_TIMESTAMP_SECONDS = -62_135_596_800n;
export const MAX_TIMESTAMP_SECONDS = 253_402_300_799n;
const MAX_NANOS = 999_999_999;

/** A field of a request that the raw check reads: a google.protobuf.Timestamp or a 64-bit unsigned integer. */
export interface RawField {
  readonly no: number;
  /** The field's name in the .proto, as errors name it. */
  readonly name: string;
  readonly kind: "timestamp" | "uint64";
}

/** Per method path, the request fields the raw check reads (test/unit/request-guard.test.ts checks them against proto/). */
export const RAW_FIELDS: Readonly<Record<string, readonly RawField[]>> = {
  "/lambda.v1.LambdaService/Query": [
    { no: 3, name: "from", kind: "timestamp" },
    { no: 4, name: "to", kind: "timestamp" },
  ],
  "/lambda.v1.LambdaService/TopK": [
    { no: 2, name: "from", kind: "timestamp" },
    { no: 3, name: "to", kind: "timestamp" },
  ],
  "/lambda.v1.AdminService/DiffRuns": [
    { no: 1, name: "from_run", kind: "uint64" },
    { no: 2, name: "to_run", kind: "uint64" },
  ],
  "/lambda.v1.AdminService/Verify": [{ no: 1, name: "run", kind: "uint64" }],
  "/lambda.v1.AdminService/Rollback": [{ no: 1, name: "run", kind: "uint64" }],
};

function checkTimestamp(bytes: Uint8Array, name: string): void {
  const r = new BinaryReader(bytes);
  let seconds = 0n;
  let nanos = 0;
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no === 1 && wt === WireType.Varint) seconds = BigInt(r.int64());
    else if (no === 2 && wt === WireType.Varint) nanos = r.int32();
    else r.skip(wt, no);
  }
  if (nanos < 0 || nanos > MAX_NANOS) throw new InvalidQueryError(name, `nanos must be in [0, ${MAX_NANOS}] (google.protobuf.Timestamp), got ${nanos}`);
  if (seconds < MIN_TIMESTAMP_SECONDS || seconds > MAX_TIMESTAMP_SECONDS) {
    throw new InvalidQueryError(name, `must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z (google.protobuf.Timestamp), got seconds=${seconds}`);
  }
}

/**
 * Checks the raw request of method `path`. @throws InvalidQueryError naming the field
 */
export function checkRawRequest(path: string, bytes: Uint8Array): void {
  if (bytes.length > MAX_REQUEST_BYTES) throw new InvalidQueryError("request", `is ${bytes.length} bytes; at most ${MAX_REQUEST_BYTES}`);
  const fields = RAW_FIELDS[path];
  if (!fields) return;
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    const f = fields.find((x) => x.no === no);
    if (f?.kind === "timestamp" && wt === WireType.LengthDelimited) checkTimestamp(r.bytes(), f.name);
    else if (f?.kind === "uint64" && wt === WireType.Varint) {
      const v = BigInt(r.uint64());
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidQueryError(f.name, `must be at most ${Number.MAX_SAFE_INTEGER}, got ${v}`);
    } else r.skip(wt, no);
  }
}

const refusals = new WeakMap<object, InvalidQueryError>();

/** Why the request was refused before its handler ran, or undefined. */
export function refusalOf(request: unknown): InvalidQueryError | undefined {
  return typeof request === "object" && request !== null ? refusals.get(request) : undefined;
}

function guardMethod<Req, Res>(m: MethodDefinition<Req, Res>): MethodDefinition<Req, Res> {
  const requestDeserialize = (bytes: Buffer): Req => {
    let refusal: InvalidQueryError;
    try {
      checkRawRequest(m.path, bytes);
      return m.requestDeserialize(bytes);
    } catch (err) {
      const e = ensureError(err);
      refusal = e instanceof InvalidQueryError ? e : new InvalidQueryError("request", `is not a valid request of ${m.path}: ${e.message}`);
    }
    const placeholder = m.requestDeserialize(Buffer.alloc(0));
    if (typeof placeholder === "object" && placeholder !== null) refusals.set(placeholder, refusal);
    return placeholder;
  };
  return { ...m, requestDeserialize };
}

/** `def` with every method's request checked by checkRawRequest before it is decoded. */
export function guardService(def: ServiceDefinition): ServiceDefinition {
  return Object.fromEntries(Object.entries(def).map(([name, m]) => [name, guardMethod(m)]));
}
