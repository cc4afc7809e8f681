/**
 * The local cluster (`npm start`) after a crash of its main process: the speed
 * nodes and nats-server it started exit by themselves; lambdactl says the
 * address in the stale local-cluster file is dead; a second start reports the
 * stale file and replaces it; and the restart command the banner printed
 * brings back every event acknowledged before the crash (compared with a
 * recount of what was ingested).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { credentials, Metadata, status as grpcStatus, type ServiceError } from "@grpc/grpc-js";
import { processAlive } from "../../src/core/pid.js";
import { localClusterFilePath, readLocalClusterFile, type LocalClusterFile } from "../../src/cli/index.js";
import type { IngestJson } from "../../src/cli/commands/ingest.js";
import { LambdaServiceClient } from "../../src/gen/lambda/v1/serving.js";
import { lambdactl, parseJson } from "../harness/cli.js";
import { query } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";

const ENTRY = fileURLToPath(new URL("../../src/main/local-cluster.js", import.meta.url));
const ARTICLES = 5;

interface Started {
  readonly child: ChildProcess;
  readonly file: LocalClusterFile;
  readonly banner: string;
  stderr(): string;
  readonly exited: Promise<void>;
}

/** Starts `npm start`'s entry in `cwd` and waits for its banner and file. */
async function startLocalCluster(cwd: string, env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, ["--enable-source-maps", ENTRY], { cwd, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const banner = await waitFor(
    "the local cluster's banner",
    () => {
      if (gone) throw new Error(`the local cluster exited before it was up; stderr:\n${stderr}`);
      return /restart on it:\n\s+(.+npm start)\n/.test(stdout) ? stdout : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  const file = readLocalClusterFile(cwd);
  assert.ok(file, "the local cluster wrote its file");
  return { child, file, banner, stderr: () => stderr, exited };
}

/** The variables of the banner's restart command (`A=1 B=2 npm start`). */
function restartEnv(banner: string): Record<string, string> {
  const cmd = /restart on it:\n\s+(.+) npm start\n/.exec(banner)![1]!;
  return Object.fromEntries(cmd.split(" ").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
}

test("a SIGKILLed local cluster leaves no process behind, and its printed restart command recovers every acknowledged event", { timeout: 240_000 }, async () => {
  const cwd = mkdtempSync(join(tmpdir(), "lambda-local-crash-"));
  const base = {
    LAMBDA_CATALOG: join(process.cwd(), "catalog/catalog.json"),
    LAMBDA_SYNTHETIC_RATE: "0",
    LAMBDA_BATCH_INTERVAL_MS: "0",
    LAMBDA_GRPC_PORT: "0",
    LAMBDA_PARTITIONS: "2",
    LAMBDA_HEARTBEAT_INTERVAL_MS: "200",
    LAMBDA_NODE_TIMEOUT_MS: "1500",
    LAMBDA_SNAPSHOT_INTERVAL_MS: "200",
    LAMBDA_LOG_LEVEL: "warn",
  };
  const running: Started[] = [];
  const kept: string[] = [];
  try {
    const first = await startLocalCluster(cwd, base);
    running.push(first);
    kept.push(first.file.natsStoreDir!, first.file.chdbPath!);
    // Its gRPC secrets stay too when it is killed (a clean stop removes them).
    kept.push(dirname(first.file.grpcTokenFile!));
    assert.match(first.banner, /\bbatch\s+on demand only \(lambdactl run\)/, "interval 0 means on demand");
    const speedPids = /speed\s+\d+ nodes \(pids ([\d, ]+)\)/.exec(first.banner)![1]!.split(", ").map(Number);
    const natsPid = Number(/nats-server pid (\d+)/.exec(first.banner)![1]);
    assert.equal(first.file.pid, first.child.pid);
    assert.ok(first.banner.includes(first.file.natsStoreDir!) && first.banner.includes(first.file.chdbPath!), "the banner names the NATS store and chDB dir");

    // A second start beside a live one refuses, naming it, and leaves its file alone.
    const beside = spawn(process.execPath, [ENTRY], { cwd, env: { PATH: process.env.PATH ?? "", ...base }, stdio: ["ignore", "ignore", "pipe"] });
    let besideErr = "";
    beside.stderr!.setEncoding("utf8").on("data", (d: string) => (besideErr += d));
    const besideCode = await new Promise<number | null>((resolve) => beside.once("close", (code) => resolve(code)));
    assert.equal(besideCode, 1);
    assert.match(besideErr, new RegExp(`another local cluster \\(pid ${first.file.pid}\\) runs in this directory`));
    assert.equal(readLocalClusterFile(cwd)?.pid, first.file.pid);

    // Events acknowledged before the crash.
    const now = Date.now();
    const events = Array.from({ length: 400 }, (_, i) => ({ id: `c-${i}`, article_id: `a-${i % ARTICLES}`, user_id: `u-${i % 13}`, ts: now - (i % 50) * 1_000 }));
    const input = join(cwd, "events.jsonl");
    writeFileSync(input, events.map((e) => JSON.stringify(e)).join("\n") + "\n");
    const ingested = await lambdactl(["ingest", "pageviews", input, "--json"], { cwd });
    assert.equal(parseJson<IngestJson>(ingested).accepted, events.length, ingested.stderr);

    first.child.kill("SIGKILL");
    await first.exited;
    running.pop();
    await waitFor("the speed nodes and nats-server to exit after their parent died", () => ![...speedPids, natsPid].some(processAlive), { timeoutMs: 20_000, intervalMs: 100 });

    // lambdactl reads the stale file and says the address is dead.
    const status = await lambdactl(["status"], { cwd });
    assert.notEqual(status.code, 0);
    assert.match(status.stderr, new RegExp(`local cluster \\(pid ${first.file.pid}\\) that is no longer running`));

    const staleFile = readFileSync(localClusterFilePath(cwd), "utf8");
    // The printed restart command, in the same directory: it says it restarts on the stale file's data and replaces the file.
    const env = restartEnv(first.banner);
    assert.deepEqual(Object.keys(env).sort(), ["LAMBDA_CHDB_PATH", "LAMBDA_NATS_STORE_DIR", "LAMBDA_PARTITIONS"]);
    const second = await startLocalCluster(cwd, { ...base, ...env });
    running.push(second);
    assert.match(second.stderr(), /did not stop cleanly; restarting on its NATS store/);
    assert.equal(second.file.pid, second.child.pid, "the file is replaced");
    assert.equal(second.file.natsStoreDir, first.file.natsStoreDir);
    assert.equal(second.file.chdbPath, first.file.chdbPath);

    const run = await lambdactl(["run"], { cwd });
    assert.equal(run.code, 0, run.stderr);
    // npm start serves TLS with tokens: the file names the CA and the token files (mode 0600).
    const { grpcTlsCa, grpcTokenFile, grpcAdminTokenFile } = second.file;
    assert.ok(grpcTlsCa && grpcTokenFile && grpcAdminTokenFile, JSON.stringify(second.file));
    for (const f of [grpcTokenFile, grpcAdminTokenFile]) assert.equal(statSync(f).mode & 0o777, 0o600, f);
    const token = readFileSync(grpcTokenFile, "utf8").trim();
    const bearerToken = credentials.createFromMetadataGenerator((_, done) => {
      const m = new Metadata();
      m.set("authorization", `Bearer ${token}`);
      done(null, m);
    });
    const grpc = new LambdaServiceClient(second.file.grpc, credentials.combineChannelCredentials(credentials.createSsl(readFileSync(grpcTlsCa)), bearerToken));
    const queried = await lambdactl(["query", "article_views", "a-0", "--from", "-2h", "--to", "+1m", "--json"], { cwd });
    assert.equal(queried.code, 0, `lambdactl finds TLS and the token in the file: ${queried.stderr}`);
    const plain = new LambdaServiceClient(second.file.grpc, credentials.createInsecure());
    try {
      await assert.rejects(query(plain, "article_views", "a-0", now - 3_600_000, now + 60_000), (err: ServiceError) => err.code === grpcStatus.UNAVAILABLE, "plain text is refused");
    } finally {
      plain.close();
    }
    try {
      for (let k = 0; k < ARTICLES; k++) {
        const expected = events.filter((e) => e.article_id === `a-${k}`).length;
        const r = await query(grpc, "article_views", `a-${k}`, now - 3_600_000, now + 60_000);
        assert.equal(r.total, expected, `a-${k}: batch ${r.batchPart} + speed ${r.speedPart} at run ${r.watermarkRun}`);
        assert.equal(r.batchPart, expected, `a-${k}: the batch run over the kept store counts every event`);
      }
    } finally {
      grpc.close();
    }

    second.child.kill("SIGTERM");
    await second.exited;
    running.pop();
    assert.equal(readLocalClusterFile(cwd), null, "a clean stop removes the file");

    // A plain start that finds a stale file (of a crash whose data it does not run on) says how to
    // restart on that data or discard it, then replaces the file.
    writeFileSync(localClusterFilePath(cwd), staleFile);
    const fresh = await startLocalCluster(cwd, base);
    running.push(fresh);
    assert.match(fresh.stderr(), /found a stale local cluster file/);
    assert.ok(fresh.stderr().includes(`LAMBDA_NATS_STORE_DIR=${first.file.natsStoreDir}`), "names the restart command");
    assert.ok(fresh.stderr().includes(`rm -rf ${first.file.natsStoreDir}`), "names how to discard the data");
    assert.equal(fresh.file.pid, fresh.child.pid, "the file is replaced");
    fresh.child.kill("SIGTERM");
    await fresh.exited;
    running.pop();
  } finally {
    for (const r of running) {
      r.child.kill("SIGKILL");
      await r.exited;
    }
    for (const d of [cwd, ...kept]) rmSync(d, { recursive: true, force: true });
  }
});
