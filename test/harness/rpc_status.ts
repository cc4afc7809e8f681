/**
 * Decodes the google.rpc.Status a gRPC error carries in its grpc-status-details-bin trailer,
 * with a strict reflective decoder (@bufbuild/protobuf) independent of the server's encoder.
 */
import assert from "node:assert/strict";
import type { ServiceError } from "@grpc/grpc-js";
import { create, createFileRegistry, fromBinary, toJson, type DescFile, type JsonValue } from "@bufbuild/protobuf";
import { FieldDescriptorProto_Label as FL, FieldDescriptorProto_Type as FT, FileDescriptorProtoSchema, file_google_protobuf_any, file_google_protobuf_duration } from "@bufbuild/protobuf/wkt";

const camel = (name: string) => name.replace(/_(\w)/g, (_, c: string) => c.toUpperCase());
/** A proto3 field: a string, or a message of `typeName`, repeated or not. */
const field = (name: string, number: number, type: FT, typeName = "", repeated = false) => ({ name, number, type, typeName, label: repeated ? FL.REPEATED : FL.OPTIONAL, jsonName: camel(name) });
const strings = (...names: string[]) => names.map((n, i) => field(n, i + 1, FT.STRING));
/** A message holding a list of one nested message of string fields (BadRequest, PreconditionFailure). */
const listOf = (name: string, list: string, item: string, fields: string[]) => ({
  name,
  field: [field(list, 1, FT.MESSAGE, `.google.rpc.${name}.${item}`, true)],
  nestedType: [{ name: item, field: strings(...fields) }],
});

/** google/rpc/status.proto and error_details.proto (the parts used), for a strict decoder independent of the server's encoder. */
const RPC_FILE = create(FileDescriptorProtoSchema, {
  name: "google/rpc/status_for_test.proto",
  package: "google.rpc",
  syntax: "proto3",
  dependency: ["google/protobuf/any.proto", "google/protobuf/duration.proto"],
  messageType: [
    { name: "Status", field: [field("code", 1, FT.INT32), field("message", 2, FT.STRING), field("details", 3, FT.MESSAGE, ".google.protobuf.Any", true)] },
    listOf("BadRequest", "field_violations", "FieldViolation", ["field", "description"]),
    listOf("PreconditionFailure", "violations", "Violation", ["type", "subject", "description"]),
    { name: "RetryInfo", field: [field("retry_delay", 1, FT.MESSAGE, ".google.protobuf.Duration")] },
  ],
});
const WKT: Record<string, DescFile> = { "google/protobuf/any.proto": file_google_protobuf_any, "google/protobuf/duration.proto": file_google_protobuf_duration };
const RPC = createFileRegistry(RPC_FILE, (name) => WKT[name]);

/** The google.rpc.Status in the error's grpc-status-details-bin trailer, as proto3 JSON. */
export function statusDetails(err: ServiceError): JsonValue {
  const [bin] = err.metadata.get("grpc-status-details-bin");
  assert.ok(Buffer.isBuffer(bin), `a grpc-status-details-bin trailer on ${err.code} ${err.details}`);
  const desc = RPC.getMessage("google.rpc.Status")!;
  return toJson(desc, fromBinary(desc, bin), { registry: RPC });
}

