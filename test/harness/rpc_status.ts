/**
 * Decodes the google.rpc.Status a gRPC error carries in its grpc-status-details-bin trailer,
 * with a strict reflective decoder (@bufbuild/protobuf) independent of the server's encoder.
 */
import assert from "node:assert/strict";
import type { ServiceError } from "@grpc/grpc-js";
import { create, createFileRegistry, fromBinary, toJson, type DescFile, type JsonValue } from "@bufbuild/protobuf";
import { FieldDescriptorProto_Label as FL, FieldDescriptorProto_Type as FT, FileDescriptorProtoSchema, file_google_protobuf_any, file_google_protobuf_duration } from "@bufbuild/protobuf/wkt";

/** google/rpc/status.proto and error_details.proto (the parts used), for a strict decoder independent of the server's encoder. */
const RPC_FILE = create(FileDescriptorProtoSchema, {
  name: "google/rpc/status_for_test.proto",
  package: "google.rpc",
  syntax: "proto3",
  dependency: ["google/protobuf/any.proto", "google/protobuf/duration.proto"],
  messageType: [
    {
      name: "Status",
      field: [
        { name: "code", number: 1, type: FT.INT32, label: FL.OPTIONAL, jsonName: "code" },
        { name: "message", number: 2, type: FT.STRING, label: FL.OPTIONAL, jsonName: "message" },
        { name: "details", number: 3, type: FT.MESSAGE, typeName: ".google.protobuf.Any", label: FL.REPEATED, jsonName: "details" },
      ],
    },
    {
      name: "BadRequest",
      field: [{ name: "field_violations", number: 1, type: FT.MESSAGE, typeName: ".google.rpc.BadRequest.FieldViolation", label: FL.REPEATED, jsonName: "fieldViolations" }],
      nestedType: [
        {
          name: "FieldViolation",
          field: [
            { name: "field", number: 1, type: FT.STRING, label: FL.OPTIONAL, jsonName: "field" },
            { name: "description", number: 2, type: FT.STRING, label: FL.OPTIONAL, jsonName: "description" },
          ],
        },
      ],
    },
    {
      name: "PreconditionFailure",
      field: [{ name: "violations", number: 1, type: FT.MESSAGE, typeName: ".google.rpc.PreconditionFailure.Violation", label: FL.REPEATED, jsonName: "violations" }],
      nestedType: [
        {
          name: "Violation",
          field: [
            { name: "type", number: 1, type: FT.STRING, label: FL.OPTIONAL, jsonName: "type" },
            { name: "subject", number: 2, type: FT.STRING, label: FL.OPTIONAL, jsonName: "subject" },
            { name: "description", number: 3, type: FT.STRING, label: FL.OPTIONAL, jsonName: "description" },
          ],
        },
      ],
    },
    { name: "RetryInfo", field: [{ name: "retry_delay", number: 1, type: FT.MESSAGE, typeName: ".google.protobuf.Duration", label: FL.OPTIONAL, jsonName: "retryDelay" }] },
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

