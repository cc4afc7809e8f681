/**
 * The serving node's gRPC security on real serving nodes (one test cluster: nats-server, chDB,
 * coordinator, archiver; serving nodes started beside it with their own settings): TLS refuses
 * plain text; mutual TLS refuses a client without a certificate or with another CA's; tokens
 * give UNAUTHENTICATED / PERMISSION_DENIED as docs/security.md says; health needs nothing; a
 * client certificate's OU stands in for a token; the admin API on its own port; a certificate
 * replaced on disk is served without a restart; and no token reaches the node's log.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, status, type ChannelCredentials, type ServiceError } from "@grpc/grpc-js";
import { ConfigError } from "../../src/core/errors.js";
import { AdminServiceClient, type RunBatchResponse } from "../../src/gen/lambda/v1/admin.js";
import { LambdaServiceClient, type QueryRequest, type QueryResponse } from "../../src/gen/lambda/v1/serving.js";
import { createLocalCa, LOOPBACK_HOSTS } from "../../src/main/pki.js";
import type { ServingOptions } from "../../src/serving/index.js";
import { startTestCluster } from "../harness/cluster.js";
import { bearer, extraServingNode, healthCheck, healthClient, newToken, tlsCredentials, writeGrpcSecrets } from "../harness/grpc_tls.js";
import { keptLogger, type KeptLine } from "../harness/log.js";
import { waitFor } from "../harness/wait.js";
import { lambdactl } from "../harness/cli.js";

const T = Date.UTC(2026, 5, 8, 14, 23, 0);
const CALL_MS = 10_000;

const queryRequest = (): QueryRequest => ({ metric: "article_views", key: "a-1", keys: [], group: {}, aggregate: "", quantile: 0, series: false, from: new Date(T - 3_600_000), to: new Date(T + 3_600_000), strict: false });

function query(address: string, creds: ChannelCredentials, token?: string): Promise<QueryResponse> {
  const c = new LambdaServiceClient(address, creds);
  return new Promise<QueryResponse>((resolve, reject) => c.query(queryRequest(), bearer(token), { deadline: Date.now() + CALL_MS }, (err, res) => (err ? reject(err) : resolve(res)))).finally(() => c.close());
}

async function runBatch(address: string, creds: ChannelCredentials, token?: string): Promise<RunBatchResponse[]> {
  const c = new AdminServiceClient(address, creds);
  try {
    const steps: RunBatchResponse[] = [];
    for await (const step of c.runBatch({}, bearer(token), { deadline: Date.now() + 60_000 })) steps.push(step as RunBatchResponse);
    return steps;
  } finally {
    c.close();
  }
}

function rollback(address: string, creds: ChannelCredentials, run: number, token?: string): Promise<number> {
  const c = new AdminServiceClient(address, creds);
  return new Promise<number>((resolve, reject) => c.rollback({ run }, bearer(token), { deadline: Date.now() + 60_000 }, (err, res) => (err ? reject(err) : resolve(res.watermark!.run)))).finally(() => c.close());
}

function getStatus(address: string, creds: ChannelCredentials, token?: string): Promise<number> {
  const c = new AdminServiceClient(address, creds);
  return new Promise<number>((resolve, reject) => c.getStatus({}, bearer(token), { deadline: Date.now() + CALL_MS }, (err, res) => (err ? reject(err) : resolve(res.watermarkRun)))).finally(() => c.close());
}

async function health(address: string, creds: ChannelCredentials, timeoutMs = CALL_MS): Promise<string> {
  const c = healthClient(address, creds);
  try {
    return await healthCheck(c, timeoutMs);
  } finally {
    c.close();
  }
}

/** Asserts `call` fails with `code` (and details matching `details`, when given). */
async function refused(call: Promise<unknown>, code: status, details?: RegExp): Promise<void> {
  await assert.rejects(call, (err: ServiceError) => {
    assert.equal(status[err.code], status[code], `${err.code}: ${err.details}`);
    if (details) assert.match(err.details, details);
    return true;
  });
}

test("gRPC security: TLS, mutual TLS, tokens, the admin API apart, certificate reload, no secret in the log", async (t) => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 0 });
  const dir = mkdtempSync(join(tmpdir(), "lambda-grpc-tls-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const events = Array.from({ length: 4 }, (_, i) => ({ id: `e${i}`, article_id: "a-1", user_id: `u${i}`, ts: T + i }));
  assert.equal((await cluster.ingest.publishBatch("pageviews", events)).accepted, events.length);

  await t.test("TLS and tokens, the admin API on its own port; lambdactl with flags", async (t) => {
    const s = writeGrpcSecrets(dir, "tokens");
    const lines: KeptLine[] = [];
    const node = await extraServingNode(cluster, "secure-a", keptLogger(lines), {
      admin: { host: "127.0.0.1", port: 0 },
      security: { tlsCertFile: s.certFile, tlsKeyFile: s.keyFile, tokenFile: s.tokenFile, adminTokenFile: s.adminTokenFile },
    });
    try {
      assert.notEqual(node.adminAddress, node.address, "the admin API listens apart");
      const tls = tlsCredentials(s.ca.ca.cert);

      // Plain text is refused; a client that trusts another CA refuses the server.
      await refused(query(node.address, credentials.createInsecure(), s.queryToken), status.UNAVAILABLE);
      await refused(query(node.address, tlsCredentials(createLocalCa("stranger").ca.cert), s.queryToken), status.UNAVAILABLE);

      // Health needs no token, on both listeners.
      assert.equal(await health(node.address, tls), "SERVING");
      assert.equal(await health(node.adminAddress, tls), "SERVING");

      // No token, a wrong one, a malformed header: UNAUTHENTICATED.
      await refused(query(node.address, tls), status.UNAUTHENTICATED, /needs a bearer token/);
      await refused(query(node.address, tls, newToken()), status.UNAUTHENTICATED, /not valid/);
      await refused(runBatch(node.adminAddress, tls), status.UNAUTHENTICATED);
      await refused(runBatch(node.adminAddress, tls, newToken()), status.UNAUTHENTICATED);

      // The query token queries, and may not run batches or roll back.
      assert.equal((await query(node.address, tls, s.queryToken)).metric, "article_views");
      await refused(runBatch(node.adminAddress, tls, s.queryToken), status.PERMISSION_DENIED, /admin token/);
      await refused(rollback(node.adminAddress, tls, 1, s.queryToken), status.PERMISSION_DENIED, /admin token/);
      await refused(getStatus(node.adminAddress, tls, s.queryToken), status.PERMISSION_DENIED);

      // The admin token does both, and queries too.
      const first = await runBatch(node.adminAddress, tls, s.adminToken);
      assert.equal(first.at(-1)?.phase, "done", JSON.stringify(first));
      const second = await runBatch(node.adminAddress, tls, s.adminToken);
      assert.equal(second.at(-1)?.phase, "done", JSON.stringify(second));
      const run = second.at(-1)!.watermark!.run;
      assert.equal(await rollback(node.adminAddress, tls, run - 1, s.adminToken), run - 1, "rolled back");
      assert.equal(await getStatus(node.adminAddress, tls, s.adminToken), run - 1);
      const answer = await query(node.address, tls, s.adminToken);
      assert.deepEqual([answer.watermarkRun, answer.answers[0]!.total], [run - 1, events.length], "the admin token queries: run 1 covers every event");

      // The admin API is not on the query port.
      await refused(getStatus(node.address, tls, s.adminToken), status.UNIMPLEMENTED);

      // lambdactl with flags, as an operator runs it (a child process, no local cluster file).
      const cwd = mkdtempSync(join(tmpdir(), "lambda-cli-tls-"));
      t.after(() => rmSync(cwd, { recursive: true, force: true }));
      const tlsFlags = ["--grpc", node.address, "--tls-ca", s.caFile];
      const metrics = await lambdactl(["metrics", ...tlsFlags, "--token-file", s.tokenFile, "--json"], { cwd });
      assert.equal(metrics.code, 0, metrics.stderr);
      assert.ok(JSON.parse(metrics.stdout).metrics.some((m: { name: string }) => m.name === "article_views"));
      const noToken = await lambdactl(["metrics", ...tlsFlags], { cwd });
      assert.equal(noToken.code, 1);
      assert.match(noToken.stderr, /UNAUTHENTICATED: .*\(no token sent/);
      const plain = await lambdactl(["metrics", "--grpc", node.address, "--token-file", s.tokenFile], { cwd });
      assert.match(plain.stderr, /UNAVAILABLE/, "plain text to a TLS node fails");
      const denied = await lambdactl(["status", ...tlsFlags, "--admin-grpc", node.adminAddress, "--token", s.queryToken], { cwd });
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /PERMISSION_DENIED: .*\(token from --token\)/);
      const cliStatus = await lambdactl(["status", ...tlsFlags, "--admin-grpc", node.adminAddress, "--token-file", s.adminTokenFile, "--json"], { cwd });
      assert.equal(cliStatus.code, 0, cliStatus.stderr);
      assert.equal(JSON.parse(cliStatus.stdout).watermarkRun, run - 1);
      const viaEnv = await lambdactl(["status", "--json"], { cwd, env: { LAMBDA_GRPC_ADDR: node.address, LAMBDA_GRPC_ADMIN_ADDR: node.adminAddress, LAMBDA_GRPC_TLS_CA_FILE: s.caFile, LAMBDA_GRPC_ADMIN_TOKEN: s.adminToken } });
      assert.equal(viaEnv.code, 0, viaEnv.stderr);
      for (const r of [metrics, noToken, plain, denied, cliStatus, viaEnv]) {
        for (const token of [s.queryToken, s.adminToken]) assert.ok(!(r.stdout + r.stderr).includes(token), "lambdactl echoed a token");
      }

      // No token, in any form, reached the log (refusals included: they are logged at debug).
      assert.ok(lines.some((l) => l.message === "call refused"), "refusals were logged");
      const logged = JSON.stringify(lines);
      for (const token of [s.queryToken, s.adminToken]) assert.ok(!logged.includes(token), "a token reached the serving node's log");
    } finally {
      await node.close();
    }
  });

  await t.test("mutual TLS: no certificate or another CA's is refused; the certificate's OU grants query or admin; lambdactl with --cert/--key", async (t) => {
    const s = writeGrpcSecrets(dir, "mtls");
    const node = await extraServingNode(cluster, "secure-b", keptLogger([]), { security: { tlsCertFile: s.certFile, tlsKeyFile: s.keyFile, tlsClientCaFile: s.caFile } });
    try {
      const as = (unit?: string, ca = s.ca) => tlsCredentials(s.ca.ca.cert, ca.issue({ commonName: `client-${unit ?? "none"}`, usage: "client", ...(unit ? { unit } : {}) }));
      await refused(health(node.address, tlsCredentials(s.ca.ca.cert)), status.UNAVAILABLE);
      await refused(health(node.address, as("lambda-admin", createLocalCa("stranger"))), status.UNAVAILABLE);
      assert.equal(await health(node.address, as()), "SERVING", "any certificate of the client CA passes the handshake");
      await refused(query(node.address, as()), status.UNAUTHENTICATED, /OU lambda-query/);
      assert.equal((await query(node.address, as("lambda-query"))).metric, "article_views");
      await refused(getStatus(node.address, as("lambda-query")), status.PERMISSION_DENIED);
      assert.ok((await getStatus(node.address, as("lambda-admin"))) >= 1);
      assert.equal((await query(node.address, as("lambda-admin"))).metric, "article_views");

      // lambdactl with a client certificate (--cert/--key) and no token.
      const cwd = mkdtempSync(join(tmpdir(), "lambda-cli-mtls-"));
      t.after(() => rmSync(cwd, { recursive: true, force: true }));
      const admin = s.ca.issue({ commonName: "operator", usage: "client", unit: "lambda-admin" });
      writeFileSync(join(cwd, "cert.pem"), admin.cert);
      writeFileSync(join(cwd, "key.pem"), admin.key, { mode: 0o600 });
      const mtls = ["--grpc", node.address, "--tls-ca", s.caFile, "--cert", join(cwd, "cert.pem"), "--key", join(cwd, "key.pem")];
      const cliStatus = await lambdactl(["status", ...mtls, "--json"], { cwd });
      assert.equal(cliStatus.code, 0, cliStatus.stderr);
      const noCert = await lambdactl(["status", "--grpc", node.address, "--tls-ca", s.caFile], { cwd });
      assert.match(noCert.stderr, /UNAVAILABLE/);
    } finally {
      await node.close();
    }
  });

  await t.test("a certificate replaced on disk is served without a restart", async () => {
    const s = writeGrpcSecrets(dir, "reload");
    const lines: KeptLine[] = [];
    const node = await extraServingNode(cluster, "secure-c", keptLogger(lines), { security: { tlsCertFile: s.certFile, tlsKeyFile: s.keyFile, tlsReloadMs: 100 } });
    try {
      assert.equal(await health(node.address, tlsCredentials(s.ca.ca.cert)), "SERVING");
      const next = createLocalCa("renewed CA");
      const renewed = next.issue({ commonName: "serving", hosts: [...LOOPBACK_HOSTS], usage: "server" });
      // As Kubernetes updates a secret volume: new files, then renamed over the old ones.
      writeFileSync(`${s.keyFile}.new`, renewed.key, { mode: 0o600 });
      writeFileSync(`${s.certFile}.new`, renewed.cert, { mode: 0o600 });
      renameSync(`${s.keyFile}.new`, s.keyFile);
      renameSync(`${s.certFile}.new`, s.certFile);
      await waitFor("a client trusting only the new CA to connect", () => health(node.address, tlsCredentials(next.ca.cert), 1_000), { timeoutMs: 20_000 });
      await refused(health(node.address, tlsCredentials(s.ca.ca.cert)), status.UNAVAILABLE);
      assert.ok(lines.some((l) => l.message === "gRPC TLS certificate reloaded"), "the reload was logged");
    } finally {
      await node.close();
    }
  });

  await t.test("bad TLS or token files stop the start with the variable and the path", async () => {
    const s = writeGrpcSecrets(dir, "bad");
    const other = writeGrpcSecrets(dir, "other");
    const start = (security: ServingOptions["security"]) => extraServingNode(cluster, "secure-bad", keptLogger([]), { security });
    const configError = (key: string, path: string) => (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.key, key);
      assert.match(err.message, new RegExp(path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
      return true;
    };
    const missing = join(dir, "missing.pem");
    await assert.rejects(start({ tlsCertFile: missing, tlsKeyFile: s.keyFile }), configError("LAMBDA_GRPC_TLS_CERT_FILE", missing));
    await assert.rejects(start({ tlsCertFile: s.certFile, tlsKeyFile: other.keyFile }), configError("LAMBDA_GRPC_TLS_KEY_FILE", other.keyFile));
    await assert.rejects(start({ tlsCertFile: s.certFile, tlsKeyFile: s.keyFile, tlsClientCaFile: s.tokenFile }), configError("LAMBDA_GRPC_TLS_CLIENT_CA_FILE", s.tokenFile));
    await assert.rejects(start({ tokenFile: missing }), configError("LAMBDA_GRPC_TOKEN_FILE", missing));
    await assert.rejects(start({ tokenFile: s.tokenFile, adminTokenFile: s.tokenFile }), configError("LAMBDA_GRPC_ADMIN_TOKEN_FILE", "the same token"));
  });
});
