/** Where lambdactl finds the gRPC address, TLS files and token (src/cli/grpc_target.ts): flag > variable > local cluster file. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/core/errors.js";
import { writeLocalClusterFile, LOCAL_CLUSTER_FILE } from "../../src/cli/connection.js";
import { resolveGrpcTarget, type GrpcSecurityFlagValues } from "../../src/cli/grpc_target.js";
import { describeFailure } from "../../src/cli/failure.js";
import { GrpcCallError } from "../../src/cli/grpc.js";
import { status } from "@grpc/grpc-js";

const QUERY = "q".repeat(32);
const ADMIN = "a".repeat(32);
const OTHER = "o".repeat(32);

function fixture() {
  const cwd = mkdtempSync(join(tmpdir(), "lambda-target-"));
  const file = (name: string, text: string) => {
    const p = join(cwd, name);
    writeFileSync(p, text);
    return p;
  };
  const tokenFile = file("query.token", `${QUERY}\n`);
  const adminTokenFile = file("admin.token", `${ADMIN}\n`);
  const otherFile = file("other.token", OTHER);
  // pid: this process, so the file is not stale.
  writeLocalClusterFile(cwd, {
    grpc: "127.0.0.1:50051",
    natsUrl: "nats://127.0.0.1:4222",
    prefix: "lambda",
    partitions: 8,
    catalog: "/c.json",
    pid: process.pid,
    grpcAdmin: "127.0.0.1:50052",
    grpcTlsCa: "/ca.pem",
    grpcTokenFile: tokenFile,
    grpcAdminTokenFile: adminTokenFile,
  });
  return { cwd, otherFile, close: () => rmSync(cwd, { recursive: true, force: true }) };
}

const src = (cwd: string, security: GrpcSecurityFlagValues = {}, env: Record<string, string> = {}, grpc?: string) => ({ flags: grpc ? { grpc } : {}, security, env, cwd });

test("the local cluster file gives the address, the admin address, the CA and the token of each API", () => {
  const f = fixture();
  try {
    const q = resolveGrpcTarget(src(f.cwd), "query");
    assert.deepEqual(q.address, { value: "127.0.0.1:50051", from: LOCAL_CLUSTER_FILE });
    assert.deepEqual(q.tls, { ca: { value: "/ca.pem", from: LOCAL_CLUSTER_FILE }, cert: null, key: null, serverName: null });
    assert.equal(q.token?.value, QUERY);
    const a = resolveGrpcTarget(src(f.cwd), "admin");
    assert.equal(a.address.value, "127.0.0.1:50052");
    assert.equal(a.token?.value, ADMIN);
  } finally {
    f.close();
  }
});

test("flags beat variables; the file's TLS and tokens are never used for an address given elsewhere", () => {
  const f = fixture();
  try {
    const elsewhere = resolveGrpcTarget(src(f.cwd, {}, {}, "10.0.0.1:443"), "admin");
    assert.deepEqual([elsewhere.address.value, elsewhere.tls, elsewhere.token], ["10.0.0.1:443", null, null]);
    const env = { LAMBDA_GRPC_ADDR: "h:1", LAMBDA_GRPC_TLS_CA_FILE: "/env-ca.pem", LAMBDA_GRPC_TOKEN: OTHER, LAMBDA_GRPC_ADMIN_TOKEN_FILE: f.otherFile };
    const q = resolveGrpcTarget(src(f.cwd, {}, env), "query");
    assert.deepEqual([q.address.value, q.tls?.ca?.from, q.token?.value, q.token?.from], ["h:1", "LAMBDA_GRPC_TLS_CA_FILE", OTHER, "LAMBDA_GRPC_TOKEN"]);
    const a = resolveGrpcTarget(src(f.cwd, {}, env), "admin");
    assert.deepEqual([a.address.value, a.token?.value], ["h:1", OTHER], "admin address falls back to the query one; the admin token file");
    assert.equal(a.token?.from, `LAMBDA_GRPC_ADMIN_TOKEN_FILE ${f.otherFile}`);
    const flagged = resolveGrpcTarget(src(f.cwd, { token: ADMIN, tlsCa: "/flag-ca.pem", adminGrpc: "h:2", cert: "/c.pem", key: "/k.pem", tlsServerName: "serving.lambda" }, env), "admin");
    assert.deepEqual([flagged.address, flagged.token], [{ value: "h:2", from: "--admin-grpc" }, { value: ADMIN, from: "--token" }]);
    assert.deepEqual(flagged.tls, { ca: { value: "/flag-ca.pem", from: "--tls-ca" }, cert: { value: "/c.pem", from: "--cert" }, key: { value: "/k.pem", from: "--key" }, serverName: "serving.lambda" });
    // A client certificate alone means TLS with the system's roots.
    const certOnly = resolveGrpcTarget(src(f.cwd, { cert: "/c.pem", key: "/k.pem" }, {}, "h:3"), "query");
    assert.equal(certOnly.tls?.ca, null);
  } finally {
    f.close();
  }
});

test("bad settings: a certificate without its key, both --token and --token-file, a bad token; no error shows the token", () => {
  const f = fixture();
  try {
    const refused = (security: GrpcSecurityFlagValues, key: string, env: Record<string, string> = {}) =>
      assert.throws(
        () => resolveGrpcTarget(src(f.cwd, security, env, "h:1"), "query"),
        (e: ConfigError) => {
          assert.equal(e.key, key);
          for (const secret of ["not a token!!", QUERY]) assert.ok(!e.message.includes(secret), e.message);
          return true;
        },
      );
    refused({ cert: "/c.pem" }, "--key");
    refused({ key: "/k.pem" }, "--cert");
    refused({}, "LAMBDA_GRPC_TLS_CLIENT_KEY_FILE", { LAMBDA_GRPC_TLS_CLIENT_CERT_FILE: "/c.pem" });
    refused({ token: QUERY, tokenFile: f.otherFile }, "--token");
    refused({ token: "not a token!!" }, "--token");
    refused({}, "LAMBDA_GRPC_TOKEN", { LAMBDA_GRPC_TOKEN: "not a token!!" });
    refused({ tokenFile: join(f.cwd, "missing") }, "--token-file");
    refused({ tlsServerName: "x" }, "--tls-server-name");
  } finally {
    f.close();
  }
});

test("UNAUTHENTICATED and PERMISSION_DENIED say where the token came from, or that none was sent", () => {
  const target = { value: "h:1", from: "--grpc" };
  const withToken = describeFailure(new GrpcCallError(status.PERMISSION_DENIED, "PERMISSION_DENIED", "a query credential may not call the admin API", target, "--token-file /t"));
  assert.match(withToken.message, /\(token from --token-file \/t\)$/);
  assert.equal(withToken.fields.tokenFrom, "--token-file /t");
  const none = describeFailure(new GrpcCallError(status.UNAUTHENTICATED, "UNAUTHENTICATED", "needs a bearer token", target));
  assert.match(none.message, /no token sent: pass --token-file/);
});
