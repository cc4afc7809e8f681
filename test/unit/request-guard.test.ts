/** The raw request checks (serving/request_guard.ts): its field table matches proto/, and its rules. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import * as protoLoader from "@grpc/proto-loader";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { InvalidQueryError } from "../../src/core/errors.js";
import { checkRawRequest, MAX_REQUEST_BYTES, RAW_FIELDS, type RawField } from "../../src/serving/request_guard.js";

const PROTO_ROOT = join(process.cwd(), "proto");
const SIXTY_FOUR_BIT = new Set(["TYPE_INT64", "TYPE_UINT64", "TYPE_SINT64", "TYPE_FIXED64", "TYPE_SFIXED64"]);

interface FieldProto {
  name: string;
  number: number;
  type: string;
  typeName: string;
}

test("the raw checks cover every Timestamp and 64-bit field of every request in proto/, and no other", () => {
  const pkg = protoLoader.loadSync([join(PROTO_ROOT, "lambda/v1/serving.proto"), join(PROTO_ROOT, "lambda/v1/admin.proto")], { includeDirs: [PROTO_ROOT], keepCase: true });
  const paths = new Set<string>();
  for (const service of ["lambda.v1.LambdaService", "lambda.v1.AdminService"]) {
    const methods = pkg[service] as unknown as Record<string, { path: string; requestType: { type: { field: FieldProto[] } } }>;
    for (const m of Object.values(methods)) {
      paths.add(m.path);
      const want: RawField[] = [];
      for (const f of m.requestType.type.field) {
        if (f.type === "TYPE_MESSAGE" && f.typeName === "google.protobuf.Timestamp") want.push({ no: f.number, name: f.name, kind: "timestamp" });
        else if (f.type === "TYPE_UINT64") want.push({ no: f.number, name: f.name, kind: "uint64" });
        else assert.ok(!SIXTY_FOUR_BIT.has(f.type), `${m.path} ${f.name}: a ${f.type} field needs a raw check of its own`);
      }
      assert.deepEqual(RAW_FIELDS[m.path] ?? [], want, m.path);
    }
  }
  for (const path of Object.keys(RAW_FIELDS)) assert.ok(paths.has(path), `${path} is a method of proto/`);
});

const refusal = (path: string, bytes: Uint8Array): InvalidQueryError | undefined => {
  try {
    checkRawRequest(path, bytes);
    return undefined;
  } catch (err) {
    assert.ok(err instanceof InvalidQueryError);
    return err;
  }
};

test("raw checks: timestamp range and nanos, unknown fields skipped, size", () => {
  const ts = (seconds: bigint, nanos: number) => new BinaryWriter().tag(1, WireType.Varint).int64(seconds).tag(2, WireType.Varint).int32(nanos).finish();
  const query = (from: Uint8Array) =>
    new BinaryWriter().tag(1, WireType.LengthDelimited).string("m").tag(3, WireType.LengthDelimited).bytes(from).tag(99, WireType.LengthDelimited).string("unknown").tag(98, WireType.Bit64).fixed64(1n).finish();
  const Q = "/lambda.v1.LambdaService/Query";
  assert.equal(refusal(Q, query(ts(1_700_000_000n, 999_999_999))), undefined);
  assert.equal(refusal(Q, query(ts(1_700_000_000n, 1_000_000_000)))?.field, "from");
  assert.equal(refusal(Q, query(ts(1_700_000_000n, -1)))?.field, "from");
  assert.equal(refusal(Q, query(ts(253_402_300_799n, 0))), undefined);
  assert.equal(refusal(Q, query(ts(253_402_300_800n, 0)))?.field, "from");
  assert.equal(refusal(Q, query(ts(-62_135_596_800n, 0))), undefined);
  assert.equal(refusal(Q, query(ts(-62_135_596_801n, 0)))?.field, "from");
  // A field number the table does not name is skipped whatever its wire type.
  assert.equal(refusal(Q, new BinaryWriter().tag(3, WireType.Varint).uint64(5n).finish()), undefined);
  const big = refusal("/any/Method", new Uint8Array(MAX_REQUEST_BYTES + 1));
  assert.equal(big?.field, "request");
  assert.match(big!.reason, new RegExp(`at most ${MAX_REQUEST_BYTES}`));
  const run = (v: bigint) => new BinaryWriter().tag(1, WireType.Varint).uint64(v).finish();
  assert.equal(refusal("/lambda.v1.AdminService/Verify", run(BigInt(Number.MAX_SAFE_INTEGER))), undefined);
  assert.equal(refusal("/lambda.v1.AdminService/Verify", run(BigInt(Number.MAX_SAFE_INTEGER) + 1n))?.field, "run");
});
