/**
 * The ClickHouse password reaches the server and nothing else: opened from a password file
 * (in the process, and in a serving-only role process started with LAMBDA_* variables),
 * @clickhouse/client sends it (the listener here records what it got, and refuses the login as a
 * ClickHouse server does: HTTP 516, AUTHENTICATION_FAILED), while every log line of the open
 * path (the client's own, debug included, and the refusals logged with their errors, as a role
 * logs them) is free of it, plain or base64 as in a Basic auth header.
 *
 * The listener stands in for a ClickHouse server only because no server binary is available
 * here; what it checks is the client side (ours), not the server.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { fork } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openClickHouse } from "../../src/ch/client.js";
import { createLogger } from "../../src/core/logger.js";
import { startTestNats } from "../harness/nats.js";

const SECRET = "hunter2-Ω-secret";

/** A listener that answers every request as a ClickHouse server refusing the login, keeping the headers it got. */
async function refusingServer() {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    req.resume().on("end", () => {
      res.writeHead(516, { "Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": "516" });
      res.end("Code: 516. DB::Exception: writer: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED) (version 24.8.1.1)\n");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    [Symbol.asyncDispose]: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Every way the password could show up in a log line. */
const leaks = (text: string) => [SECRET, encodeURIComponent(SECRET), Buffer.from(`writer:${SECRET}`).toString("base64")].filter((s) => text.includes(s));

test("the password from LAMBDA_CLICKHOUSE_PASSWORD_FILE reaches the server and never a log line", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lambda-ch-cred-"));
  try {
    const passwordFile = join(dir, "password");
    writeFileSync(passwordFile, `${SECRET}\n`);
    await using server = await refusingServer();
    const lines: string[] = [];
    const log = createLogger({ level: "debug", sink: { write: (l: string) => lines.push(l) } });
    const ch = await openClickHouse({ url: server.url, username: "writer", password: "", chdbPath: "", passwordFile }, { log });
    try {
      // What a role does on its way in (ensureSchema, the schema check) and what it logs when refused.
      for (const call of [() => ch.client.command({ query: "CREATE DATABASE IF NOT EXISTS lambda" }), () => ch.client.query({ query: "SELECT 1", format: "JSONEachRow" })]) {
        const err = await call().then(
          () => assert.fail("the login was refused: the call must fail"),
          (e: unknown) => e,
        );
        assert.match(String(err), /Authentication failed/);
        log.error("could not start the roles", { err });
      }
      const ping = await ch.client.ping();
      assert.equal(ping.success, false);
      if (!ping.success) log.warn("ClickHouse ping failed", { err: ping.error });
    } finally {
      await ch.close();
    }
    assert.ok(server.seen.length >= 2, `the server was asked: ${server.seen.length}`);
    for (const h of server.seen) {
      const basic = Buffer.from((h.authorization ?? "").replace(/^Basic /, ""), "base64").toString("utf8");
      assert.equal(basic, `writer:${SECRET}`, "the file's password, its newline trimmed, is what the server got");
    }
    const text = lines.join("");
    assert.ok(lines.some((l) => l.includes("Authentication failed")), `the refusals were logged: ${text}`);
    assert.deepEqual(leaks(text), [], `a log line holds the password:\n${text}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a serving-only role process logs in with the file's password, fails its start, and logs no trace of it", { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "lambda-ch-cred-"));
  const nats = await startTestNats();
  try {
    const passwordFile = join(dir, "password");
    writeFileSync(passwordFile, `${SECRET}\n`);
    await using server = await refusingServer();
    const child = fork(new URL("../../src/main/node.js", import.meta.url), [], {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        LAMBDA_METRICS_PORT: "0",
        LAMBDA_NATS_URL: nats.url,
        LAMBDA_PREFIX: `cred${process.pid}`,
        LAMBDA_DATABASE: `cred${process.pid}`,
        LAMBDA_CATALOG: join(process.cwd(), "catalog/catalog.json"),
        LAMBDA_ROLES: "serving",
        LAMBDA_CLICKHOUSE_URL: server.url,
        LAMBDA_CLICKHOUSE_USER: "writer",
        LAMBDA_CLICKHOUSE_PASSWORD_FILE: passwordFile,
        LAMBDA_CLICKHOUSE_SCHEMA_WAIT_MS: "600",
        LAMBDA_GRPC_HOST: "127.0.0.1",
        LAMBDA_GRPC_PORT: "0",
        LAMBDA_LOG_LEVEL: "debug",
      },
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    const [code] = (await once(child, "exit")) as [number | null];
    assert.equal(code, 2, `a failed start: ${out}`);
    // Its start waited for the schema, asking the server with the file's password, and gave up naming why.
    assert.ok(server.seen.length >= 1, out);
    for (const h of server.seen) assert.equal(Buffer.from((h.authorization ?? "").replace(/^Basic /, ""), "base64").toString("utf8"), `writer:${SECRET}`);
    assert.match(out, /"name":"SchemaMissingError"/);
    assert.match(out, /Authentication failed/, "the cause says the login was refused");
    assert.deepEqual(leaks(out), [], `a log line holds the password:\n${out}`);
  } finally {
    await nats.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
