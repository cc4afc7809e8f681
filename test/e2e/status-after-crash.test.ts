/**
 * `lambdactl status` after a crash: a process running coordinator + archiver +
 * serving is SIGKILLed (no goodbye, its heartbeat keys stay), the cluster is
 * restarted on the same NATS store and chDB directory, and status shows one
 * leader (the live coordinator) with the dead process's members as gone. The
 * new coordinator then drops the dead keys after 12 node timeouts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MEMBER_DROP_AFTER_NODE_TIMEOUTS } from "../../src/coordinator/membership.js";
import { spawnNode, type ChildNode } from "../../src/main/spawn.js";
import { startNatsServer, type NatsServerProcess } from "../../src/nats/server_process.js";
import type { StatusJson } from "../../src/cli/commands/status.js";
import { lambdactl, parseJson } from "../harness/cli.js";
import { waitFor } from "../harness/wait.js";

const NODE_TIMEOUT_MS = 1_000;

test("after a SIGKILL and a restart on the same store, status shows one leader and the dead members as gone", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "lambda-status-crash-"));
  const storeDir = join(dir, "nats");
  const prefix = `sc${process.pid}`;
  let nats: NatsServerProcess | undefined;
  const nodes: ChildNode[] = [];
  try {
    const env = (natsUrl: string) => ({
      LAMBDA_NATS_URL: natsUrl,
      LAMBDA_PREFIX: prefix,
      LAMBDA_DATABASE: prefix,
      LAMBDA_PARTITIONS: "2",
      LAMBDA_CATALOG: join(process.cwd(), "catalog/catalog.json"),
      LAMBDA_CHDB_PATH: join(dir, "chdb"),
      LAMBDA_ROLES: "archiver,coordinator,executor,serving",
      LAMBDA_GRPC_HOST: "127.0.0.1",
      LAMBDA_GRPC_PORT: "0",
      LAMBDA_BATCH_INTERVAL_MS: "0",
      LAMBDA_HEARTBEAT_INTERVAL_MS: "200",
      LAMBDA_NODE_TIMEOUT_MS: String(NODE_TIMEOUT_MS),
      LAMBDA_LEADER_LEASE_MS: String(NODE_TIMEOUT_MS),
      LAMBDA_LEADER_RENEW_MS: "200",
      LAMBDA_LOG_LEVEL: "warn",
    });
    nats = await startNatsServer({ path: process.env.PATH ?? "", storeDir });
    const first = spawnNode("main-a", env(nats.url), "inherit");
    nodes.push(first);
    await first.ready;
    await first.kill();

    // The whole cluster restarts: NATS on the kept store, the roles on the kept chDB directory.
    await nats.close();
    nats = await startNatsServer({ path: process.env.PATH ?? "", storeDir });
    const second = spawnNode("main-b", env(nats.url), "inherit");
    nodes.push(second);
    const { grpc } = await second.ready;
    assert.ok(grpc, "the restarted process runs a serving node");

    const status = async () => parseJson<StatusJson>(await lambdactl(["status", "--json"], { cwd: dir, env: { LAMBDA_GRPC_ADDR: grpc } }));
    const s = await waitFor("status to list the restarted coordinator as the leader", async () => {
      const r = await status();
      // main-b leads once main-a's lease lapsed (main-a never released it).
      return r.members.some((m) => m.id === "main-b" && m.role === "coordinator" && m.state === "leader") ? r : undefined;
    });
    const state = (role: string, id: string) => s.members.find((m) => m.role === role && m.id === id)?.state;
    assert.deepEqual(
      s.members.filter((m) => m.state === "leader").map((m) => m.id),
      ["main-b"],
      `one leader: ${JSON.stringify(s.members)}`,
    );
    for (const role of ["coordinator", "archiver", "serving"]) {
      assert.equal(state(role, "main-a"), "gone", `${role} main-a is gone`);
      assert.notEqual(state(role, "main-b"), "gone", `${role} main-b is live`);
    }
    const deadAge = s.members.find((m) => m.id === "main-a")!.heartbeatAgeS;
    assert.ok(deadAge * 1_000 > NODE_TIMEOUT_MS, `the dead heartbeat is older than the node timeout (${deadAge} s)`);

    const table = await lambdactl(["status"], { cwd: dir, env: { LAMBDA_GRPC_ADDR: grpc } });
    assert.equal(table.code, 0, table.stderr);
    const rows = table.stdout.split("\n").filter((l) => /^coordinator\s/.test(l.trim()));
    assert.equal(rows.length, 2, table.stdout);
    assert.match(rows.find((l) => l.includes("main-a"))!, /\bgone\b/);
    assert.match(rows.find((l) => l.includes("main-b"))!, /\bleader\b/);
    const memberRows = table.stdout.slice(0, table.stdout.indexOf("\npartitions\n"));
    assert.equal(memberRows.match(/\bleader\b/g)?.length, 1, `one leader in the members table:\n${table.stdout}`);
    assert.match(table.stdout, /^leader\s+main-b, epoch \d+ \(renewed /m, "the leader line names the live leader");
    assert.equal(s.leader?.id, "main-b");

    // After 12 node timeouts of silence the coordinator drops the dead keys.
    await waitFor(
      "the coordinator to drop the dead members",
      async () => !(await status()).members.some((m) => m.id === "main-a"),
      { timeoutMs: NODE_TIMEOUT_MS * MEMBER_DROP_AFTER_NODE_TIMEOUTS + 15_000, intervalMs: 500 },
    );
    const after = await status();
    assert.deepEqual(after.members.map((m) => `${m.role}.${m.id}:${m.state}`).sort(), ["archiver.main-b:holding", "coordinator.main-b:leader", "executor.main-b:", "serving.main-b:"]);
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await nats?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
