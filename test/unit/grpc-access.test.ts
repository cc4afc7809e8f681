/** Who may call what on the serving node (serving/access.ts), bearer tokens, the listeners' warnings, and the config checks of gRPC TLS. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkToken, readTokenFile } from "../../src/core/bearer_token.js";
import { resolveConfig } from "../../src/core/config.js";
import { ConfigError } from "../../src/core/errors.js";
import { accessPolicy, decideAccess, methodNeed, type AccessPolicy, type Presented } from "../../src/serving/access.js";
import { isLoopback } from "../../src/serving/address.js";
import { exposureWarnings } from "../../src/serving/listeners.js";

const QUERY = "q".repeat(32);
const ADMIN = "a".repeat(32);
const as = (authorization?: string, certUnits: string[] = []): Presented => ({ authorization, certUnits });
const kind = (p: AccessPolicy, path: string, presented: Presented) => decideAccess(p, methodNeed(path), presented).kind;

test("methods: health is open, the admin API needs admin, everything else (queries, reflection, unknown) query", () => {
  assert.equal(methodNeed("/grpc.health.v1.Health/Check"), "open");
  assert.equal(methodNeed("/grpc.health.v1.Health/Watch"), "open");
  assert.equal(methodNeed("/lambda.v1.AdminService/Rollback"), "admin");
  assert.equal(methodNeed("/lambda.v1.AdminService/RunBatch"), "admin");
  assert.equal(methodNeed("/lambda.v1.LambdaService/Query"), "query");
  assert.equal(methodNeed("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"), "query");
  assert.equal(methodNeed("/some.Other/Thing"), "query");
});

test("tokens: none → UNAUTHENTICATED, query token → queries only, admin token → both; a wrong or malformed one is refused", () => {
  const p = accessPolicy(QUERY, ADMIN, false);
  const Q = "/lambda.v1.LambdaService/Query";
  const R = "/lambda.v1.AdminService/Rollback";
  assert.equal(kind(p, "/grpc.health.v1.Health/Check", as()), "allowed");
  assert.equal(kind(p, Q, as()), "unauthenticated");
  assert.equal(kind(p, Q, as(`Bearer ${QUERY}`)), "allowed");
  assert.equal(kind(p, Q, as(`bearer ${QUERY}`)), "allowed", "the scheme is case-insensitive");
  assert.equal(kind(p, Q, as(`Bearer ${ADMIN}`)), "allowed");
  assert.equal(kind(p, R, as(`Bearer ${QUERY}`)), "permission_denied");
  assert.equal(kind(p, R, as(`Bearer ${ADMIN}`)), "allowed");
  assert.equal(kind(p, Q, as(`Bearer ${QUERY}x`)), "unauthenticated");
  assert.equal(kind(p, Q, as(QUERY)), "unauthenticated", "no scheme");
  assert.equal(kind(p, Q, as(`Basic ${QUERY}`)), "unauthenticated");
  for (const token of [QUERY, ADMIN, `${QUERY}x`]) {
    for (const path of [Q, R]) {
      const d = decideAccess(p, methodNeed(path), as(`Bearer ${token}`));
      if (d.kind !== "allowed") assert.ok(!d.reason.includes(token), "a refusal never quotes the token");
    }
  }
  // Only an admin token: queries need it too (access control is on).
  const adminOnly = accessPolicy("", ADMIN, false);
  assert.equal(kind(adminOnly, Q, as()), "unauthenticated");
  assert.equal(kind(adminOnly, Q, as(`Bearer ${ADMIN}`)), "allowed");
  // Nothing configured: everything is allowed, as before.
  const open = accessPolicy("", "", false);
  assert.equal(kind(open, R, as()), "allowed");
  assert.throws(() => accessPolicy(QUERY, QUERY, false), (e: ConfigError) => e.key === "LAMBDA_GRPC_ADMIN_TOKEN_FILE" && !e.message.includes(QUERY));
});

test("client certificates: OU lambda-query / lambda-admin grant, others only pass TLS; a wrong token is refused even with a good certificate", () => {
  const p = accessPolicy("", "", true);
  const Q = "/lambda.v1.LambdaService/TopK";
  const S = "/lambda.v1.AdminService/GetStatus";
  assert.equal(kind(p, Q, as(undefined, ["lambda-query"])), "allowed");
  assert.equal(kind(p, S, as(undefined, ["lambda-query"])), "permission_denied");
  assert.equal(kind(p, S, as(undefined, ["ops", "lambda-admin"])), "allowed");
  assert.equal(kind(p, Q, as(undefined, ["ops"])), "unauthenticated");
  assert.equal(kind(p, Q, as(undefined, [])), "unauthenticated");
  const both = accessPolicy(QUERY, ADMIN, true);
  assert.equal(kind(both, S, as(`Bearer ${QUERY}`, ["lambda-admin"])), "allowed", "the higher grant counts");
  assert.equal(kind(both, S, as(`Bearer ${"x".repeat(32)}`, ["lambda-admin"])), "unauthenticated");
  // Without a client CA nothing verified the certificate: its OU grants nothing.
  assert.equal(kind(accessPolicy(QUERY, ADMIN, false), Q, as(undefined, ["lambda-admin"])), "unauthenticated");
});

test("token files: trimmed; unreadable, empty, short or not one token is a ConfigError naming the variable and path, never the token", () => {
  const dir = mkdtempSync(join(tmpdir(), "lambda-token-"));
  try {
    const file = (name: string, text: string) => {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    };
    assert.equal(readTokenFile("LAMBDA_GRPC_TOKEN_FILE", file("ok", `${QUERY}\n`)), QUERY);
    assert.equal(readTokenFile("LAMBDA_GRPC_TOKEN_FILE", ""), "", "no file: no token");
    const refused = (path: string, why: RegExp) =>
      assert.throws(() => readTokenFile("LAMBDA_GRPC_TOKEN_FILE", path), (e: ConfigError) => e.key === "LAMBDA_GRPC_TOKEN_FILE" && e.message.includes(path) && why.test(e.message));
    refused(join(dir, "missing"), /ENOENT/);
    refused(file("empty", "\n"), /one bearer token/);
    refused(file("short", "abc\n"), /at least 16/);
    const secret = "s3cret-with space-0123456789";
    refused(file("two", secret), /one bearer token/);
    assert.throws(() => readTokenFile("K", join(dir, "two")), (e: Error) => !e.message.includes(secret));
    assert.throws(() => checkToken("--token", "bad token value!", "(hidden)"), (e: Error) => !e.message.includes("bad token value"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("exposure: loopback is quiet; beyond it, plain text and no access control are each warned about with what to set", () => {
  for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) assert.ok(isLoopback(h), h);
  for (const h of ["0.0.0.0", "::", "10.0.0.5", "example.com"]) assert.ok(!isLoopback(h), h);
  assert.deepEqual(exposureWarnings("x", "127.0.0.1", false, false), []);
  const [plain, open] = exposureWarnings("the serving node", "0.0.0.0", false, false);
  assert.match(plain!, /plain text.*LAMBDA_GRPC_TLS_CERT_FILE/);
  assert.match(open!, /no access control.*LAMBDA_GRPC_TOKEN_FILE/);
  assert.deepEqual(exposureWarnings("x", "0.0.0.0", true, true), []);
});

test("config: gRPC listens on loopback by default; TLS files come as a pair, and a client CA needs them", () => {
  const d = resolveConfig({});
  assert.equal(d.grpcHost, "127.0.0.1");
  assert.equal(d.grpcAdminPort, null, "the admin API on the main port by default");
  assert.equal(resolveConfig({ LAMBDA_GRPC_ADMIN_PORT: "0" }).grpcAdminPort, 0);
  const missing = (env: Record<string, string>, key: string) => assert.throws(() => resolveConfig(env), (e: ConfigError) => e.key === key);
  missing({ LAMBDA_GRPC_TLS_CERT_FILE: "/c.pem" }, "LAMBDA_GRPC_TLS_KEY_FILE");
  missing({ LAMBDA_GRPC_TLS_KEY_FILE: "/k.pem" }, "LAMBDA_GRPC_TLS_CERT_FILE");
  missing({ LAMBDA_GRPC_TLS_CLIENT_CA_FILE: "/ca.pem" }, "LAMBDA_GRPC_TLS_CERT_FILE");
  assert.equal(resolveConfig({ LAMBDA_GRPC_TLS_CERT_FILE: "/c.pem", LAMBDA_GRPC_TLS_KEY_FILE: "/k.pem" }).grpcTlsCertFile, "/c.pem");
});
