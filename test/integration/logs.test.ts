/**
 * What a role process writes on stderr is JSON lines only: from start to a clean
 * stop (including what @clickhouse/client logs), and a failed start.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { fork, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openClickHouse } from "../../src/ch/client.js";
import { createLogger, type LogRecord } from "../../src/core/logger.js";
import { startTestNats } from "../harness/nats.js";
import { waitFor } from "../harness/wait.js";

const NODE_ENTRY = fileURLToPath(new URL("../../src/main/node.js", import.meta.url));
const CATALOG = join(process.cwd(), "catalog/catalog.json");

/** Every line of `stderr` as a log record; fails naming the first line that is not one. */
function records(stderr: string): LogRecord[] {
  return stderr
    .split("\n")
    .filter((l) => l !== "")
    .map((line) => {
      let r: LogRecord;
      try {
        r = JSON.parse(line) as LogRecord;
      } catch {
        assert.fail(`a line that is not JSON: ${line}`);
      }
      assert.equal(typeof r.t, "string", line);
      assert.match(r.level, /^(debug|info|warn|error)$/, line);
      assert.equal(typeof r.msg, "string", line);
      return r;
    });
}

/** Runs lambda-node with `env`, stderr a pipe (not a terminal, so JSON). */
function startNode(env: Record<string, string>) {
  const child = fork(NODE_ENTRY, [], { env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", LAMBDA_METRICS_PORT: "0", ...env }, stdio: ["ignore", "pipe", "pipe", "ipc"] });
  let stderr = "";
  let stdout = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  let ready = false;
  child.on("message", (m: unknown) => {
    if ((m as { kind?: string }).kind === "ready") ready = true;
  });
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, exited, output: () => ({ stderr, stdout }), isReady: () => ready };
}

test("a node running every role writes only JSON lines, from start to a clean stop", async () => {
  const nats = await startTestNats();
  const dir = mkdtempSync(join(tmpdir(), "lambda-logs-"));
  try {
    const node = startNode({
      LAMBDA_NATS_URL: nats.url,
      LAMBDA_PREFIX: "logs",
      LAMBDA_PARTITIONS: "2",
      LAMBDA_CATALOG: CATALOG,
      LAMBDA_ROLES: "archiver,coordinator,executor,serving,speed",
      LAMBDA_CHDB_PATH: join(dir, "chdb"),
      LAMBDA_GRPC_PORT: "0",
      LAMBDA_NODE_ID: "logs-1",
      LAMBDA_LOG_LEVEL: "debug",
    });
    await waitFor("the node to report it started", async () => node.isReady() || node.child.exitCode !== null, { timeoutMs: 60_000, intervalMs: 50 });
    assert.ok(node.isReady(), `the node exited before it was ready: ${node.output().stderr}`);
    node.child.kill("SIGTERM");
    const [code] = await node.exited;
    const { stderr, stdout } = node.output();
    assert.equal(code, 0, stderr);
    assert.equal(stdout, "");
    const logged = records(stderr);
    assert.ok(logged.some((r) => r.msg === "node started"), "the start is logged");
    // Every line names the process's node; a node a line is about has a field of its own ("owner").
    assert.ok(logged.every((r) => r.node === "logs-1"), "every line names this node");
  } finally {
    await nats.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a failed start is one JSON error line with the error's name, message and context, not a stack", async () => {
  const cases: [Record<string, string>, string, RegExp][] = [
    [{ LAMBDA_PARTITIONS: "many" }, "ConfigError", /LAMBDA_PARTITIONS/],
    [{ LAMBDA_NATS_URL: "nats://127.0.0.1:1", LAMBDA_ROLES: "speed", LAMBDA_CATALOG: CATALOG }, "ConnectionError", /refused/],
  ];
  for (const [env, name, message] of cases) {
    const node = startNode(env);
    const [code] = await node.exited;
    const { stderr } = node.output();
    assert.equal(code, 2, stderr);
    const logged = records(stderr);
    assert.equal(logged.length, 1, stderr);
    const r = logged[0]! as LogRecord & { err: { name: string; message: string } };
    assert.equal(r.level, "error");
    assert.equal(r.msg, "start failed");
    assert.equal(r.err.name, name);
    assert.match(r.err.message, message);
  }
});

test("an unhandled rejection or uncaught exception in a role process is one JSON error line, exit 1", async () => {
  const processJs = fileURLToPath(new URL("../../src/main/process.js", import.meta.url));
  const loggerJs = fileURLToPath(new URL("../../src/core/logger.js", import.meta.url));
  for (const [crash, msg] of [
    ["void Promise.reject(new RangeError('no such bucket'))", "unhandled rejection; exiting"],
    ["setTimeout(() => { throw new RangeError('no such bucket'); }, 0)", "uncaught exception; exiting"],
  ] as const) {
    const script = `import { logFatalErrors } from ${JSON.stringify(processJs)};
import { createProcessLogger } from ${JSON.stringify(loggerJs)};
logFatalErrors(createProcessLogger({ base: { node: "n" } }));
${crash};`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const [code] = (await once(child, "exit")) as [number | null];
    assert.equal(code, 1, stderr);
    const logged = records(stderr);
    assert.equal(logged.length, 1, stderr);
    const r = logged[0]! as LogRecord & { err: { name: string; message: string } };
    assert.equal(r.msg, msg);
    assert.equal(r.err.name, "RangeError");
    assert.equal(r.err.message, "no such bucket");
  }
});

test("@clickhouse/client's own log lines go through our logger, as JSON with component clickhouse", async () => {
  const lines: string[] = [];
  const log = createLogger({ sink: { write: (l: string) => lines.push(l) } });
  // Nothing listens on port 1: the client logs the failed request before the query rejects.
  const ch = await openClickHouse({ url: "http://127.0.0.1:1", username: "default", password: "", chdbPath: "" }, { log });
  try {
    await assert.rejects(ch.client.query({ query: "SELECT 1" }));
  } finally {
    await ch.close();
  }
  const logged = records(lines.join(""));
  assert.ok(logged.length >= 1, "the client logged the failure");
  const r = logged.find((x) => x.component === "clickhouse") as (LogRecord & { module: string; err: { code: string } }) | undefined;
  assert.ok(r, lines.join(""));
  assert.equal(r.level, "error");
  assert.equal(r.module, "Connection");
  assert.equal(r.err.code, "ECONNREFUSED");
});
