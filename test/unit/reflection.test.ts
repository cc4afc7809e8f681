/**
 * The reflection service's pure parts (src/serving/reflection.ts) without a server: its hand
 * codec against @bufbuild/protobuf's generic one (driven by the reflection.proto descriptors in
 * the generated set), the answers to each request kind, the index's refusals, and the serving
 * node's bind and client addresses (src/serving/address.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { create, createFileRegistry, fromBinary, toBinary, toJson, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { FILE_DESCRIPTOR_SET_BASE64 } from "../../src/gen/descriptors.js";
import {
  answerReflection,
  decodeReflectionRequest,
  DescriptorSetError,
  encodeReflectionResponse,
  generatedDescriptors,
  indexDescriptorSet,
  type ReflectionRequest,
} from "../../src/serving/reflection.js";
import { clientAddress, hostPort } from "../../src/serving/address.js";

const set = Buffer.from(FILE_DESCRIPTOR_SET_BASE64, "base64");
const files = fromBinary(FileDescriptorSetSchema, set).file;
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, set));
const message = (name: string): DescMessage => {
  const m = registry.getMessage(name);
  assert.ok(m, name);
  return m;
};

for (const version of ["v1", "v1alpha"]) {
  test(`requests encoded by @bufbuild/protobuf (${version}) decode to the kind they hold`, () => {
    const Req = message(`grpc.reflection.${version}.ServerReflectionRequest`);
    const encode = (messageRequest: object, host = "") => toBinary(Req, create(Req, { host, messageRequest }));
    const cases: [object, ReflectionRequest][] = [
      [{ case: "fileByFilename", value: "lambda/v1/serving.proto" }, { kind: "file_by_filename", filename: "lambda/v1/serving.proto" }],
      [{ case: "fileContainingSymbol", value: "lambda.v1.KeyAnswer" }, { kind: "file_containing_symbol", symbol: "lambda.v1.KeyAnswer" }],
      [
        { case: "fileContainingExtension", value: { containingType: "lambda.v1.QueryRequest", extensionNumber: 1234 } },
        { kind: "file_containing_extension", containingType: "lambda.v1.QueryRequest", extensionNumber: 1234 },
      ],
      [{ case: "allExtensionNumbersOfType", value: "lambda.v1.QueryRequest" }, { kind: "all_extension_numbers_of_type", type: "lambda.v1.QueryRequest" }],
      [{ case: "listServices", value: "*" }, { kind: "list_services" }],
      [{ case: undefined }, { kind: "none" }],
    ];
    for (const [oneof, want] of cases) assert.deepEqual(decodeReflectionRequest(encode(oneof, "h:1")), { host: "h:1", request: want });
    // Two requests back to back are one message whose oneof holds the last member.
    const both = Buffer.concat([encode({ case: "listServices", value: "" }), encode({ case: "fileByFilename", value: "x.proto" })]);
    assert.deepEqual(decodeReflectionRequest(both).request, { kind: "file_by_filename", filename: "x.proto" });
    assert.throws(() => decodeReflectionRequest(Uint8Array.of(0x1a, 0x05, 0x61)), "a length past the end is refused");
  });

  test(`responses decode with @bufbuild/protobuf (${version}) as what was answered`, () => {
    const Res = message(`grpc.reflection.${version}.ServerReflectionResponse`);
    const request = Uint8Array.of(0x3a, 0x00); // list_services: ""
    const decode = (bytes: Uint8Array) => toJson(Res, fromBinary(Res, bytes)) as { [k: string]: JsonValue };
    const index = generatedDescriptors();

    const listed = decode(encodeReflectionResponse(request, "h:1", answerReflection(index, ["b.S", "a.S"], { kind: "list_services" })));
    assert.deepEqual(listed, { validHost: "h:1", originalRequest: { listServices: "" }, listServicesResponse: { service: [{ name: "b.S" }, { name: "a.S" }] } });

    const answer = answerReflection(index, [], { kind: "file_containing_symbol", symbol: "lambda.v1.AdminService.Rollback" });
    assert.equal(answer.kind, "files");
    const sent = decode(encodeReflectionResponse(request, "", answer)).fileDescriptorResponse as { fileDescriptorProto: string[] };
    // admin.proto first, then its imports, each once, and each byte for byte as buf wrote it.
    const names = sent.fileDescriptorProto.map((b64) => fromBinary(FileDescriptorProtoSchema, Buffer.from(b64, "base64")).name);
    assert.deepEqual(names, ["lambda/v1/admin.proto", "google/protobuf/timestamp.proto", "lambda/v1/serving.proto"]);
    for (const [i, b64] of sent.fileDescriptorProto.entries()) assert.deepEqual(Buffer.from(b64, "base64"), Buffer.from(index.raw.get(names[i]!)!));

    const none = decode(encodeReflectionResponse(request, "", answerReflection(index, [], { kind: "all_extension_numbers_of_type", type: "lambda.v1.QueryRequest" })));
    assert.deepEqual(none.allExtensionNumbersResponse, { baseTypeName: "lambda.v1.QueryRequest" });
    const err = decode(encodeReflectionResponse(request, "", answerReflection(index, [], { kind: "file_by_filename", filename: "lambda_v1.proto" })));
    assert.deepEqual(err.errorResponse, { errorCode: status.NOT_FOUND, errorMessage: 'file "lambda_v1.proto" not found' });
  });
}

test("answers: symbols of every kind, with or without a leading dot; NOT_FOUND and INVALID_ARGUMENT as errors", () => {
  const index = generatedDescriptors();
  const fileOf = (symbol: string) => {
    const a = answerReflection(index, [], { kind: "file_containing_symbol", symbol });
    return a.kind === "files" ? fromBinary(FileDescriptorProtoSchema, a.files[0]!).name : a;
  };
  assert.equal(fileOf("lambda.v1.LambdaService"), "lambda/v1/serving.proto");
  assert.equal(fileOf(".lambda.v1.KeyAnswer.GroupEntry"), "lambda/v1/serving.proto");
  assert.equal(fileOf("lambda.v1.QueryResponse.answers"), "lambda/v1/serving.proto");
  assert.equal(fileOf("lambda.v1.KeyAnswer._total"), "lambda/v1/serving.proto", "a proto3 optional's synthetic oneof");
  assert.equal(fileOf("lambda.v1.AdminService.RunBatch"), "lambda/v1/admin.proto");
  assert.equal(fileOf("google.protobuf.Timestamp"), "google/protobuf/timestamp.proto");
  assert.equal(fileOf("grpc.health.v1.HealthCheckResponse.ServingStatus"), "grpc/health/v1/health.proto");
  assert.equal(fileOf("grpc.health.v1.HealthCheckResponse.NOT_SERVING"), "grpc/health/v1/health.proto");
  assert.deepEqual(fileOf("KeyAnswer"), { kind: "error", code: status.NOT_FOUND, message: 'symbol "KeyAnswer" not found' }, "names are full names");
  assert.equal(answerReflection(index, [], { kind: "file_containing_extension", containingType: "lambda.v1.QueryRequest", extensionNumber: 1 }).kind, "error");
  assert.deepEqual(answerReflection(index, [], { kind: "all_extension_numbers_of_type", type: "lambda.v1.Nope" }), {
    kind: "error",
    code: status.NOT_FOUND,
    message: 'message type "lambda.v1.Nope" not found',
  });
  assert.equal((answerReflection(index, [], { kind: "none" }) as { code: number }).code, status.INVALID_ARGUMENT);
  assert.deepEqual(index.services.slice().sort(), [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "lambda.v1.AdminService",
    "lambda.v1.LambdaService",
  ]);
});

test("a set with a duplicate file or a missing import is refused", () => {
  const setOf = (names: string[]) => toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: names.map((n) => files.find((f) => f.name === n)!) }));
  assert.throws(() => indexDescriptorSet(setOf(["google/protobuf/timestamp.proto", "google/protobuf/timestamp.proto"])), DescriptorSetError);
  assert.throws(() => indexDescriptorSet(setOf(["lambda/v1/serving.proto"])), (e: unknown) => e instanceof DescriptorSetError && /imports google\/protobuf\/timestamp.proto/.test(e.message));
  // Unknown fields of the set are skipped; each file keeps its own bytes.
  const extra = new BinaryWriter().tag(99, WireType.Varint).uint32(7).finish();
  const index = indexDescriptorSet(Buffer.concat([setOf(["google/protobuf/timestamp.proto"]), extra]));
  assert.deepEqual([...index.raw.keys()], ["google/protobuf/timestamp.proto"]);
});

test("the serving node logs the address it binds and the one a client on the machine dials", () => {
  assert.equal(hostPort("0.0.0.0", 50051), "0.0.0.0:50051");
  assert.equal(hostPort("::", 50051), "[::]:50051");
  assert.equal(hostPort("[::1]", 7), "[::1]:7");
  assert.equal(clientAddress("0.0.0.0", 41234), "127.0.0.1:41234");
  assert.equal(clientAddress("::", 41234), "[::1]:41234");
  assert.equal(clientAddress("10.1.2.3", 50051), "10.1.2.3:50051");
  assert.equal(clientAddress("serving.lambda.svc", 50051), "serving.lambda.svc:50051");
});
