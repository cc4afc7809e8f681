/**
 * `lambdactl run` while the coordinator is busy with another run: it says so at
 * once, naming the run it waits for and that run's phase (well before the
 * 10 s "no coordinator answered" deadline), waits, and then follows its own run
 * to the end.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createArchiver } from "../../src/batch/index.js";
import { silentLogger } from "../../src/core/logger.js";
import { startTestCluster } from "../harness/cluster.js";
import { spawnCli } from "../harness/cli.js";
import { waitFor } from "../harness/wait.js";

test("lambdactl run behind a run in progress says it is busy with which run and phase, waits, then runs", { timeout: 120_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 1 });
  await cluster.ingest.publishBatch("pageviews", [{ id: "b1", article_id: "a", user_id: "u", ts: Date.UTC(2026, 0, 1) }]);
  // Without an archiver, run 1 waits in its archiver flush phase: the coordinator is busy.
  await cluster.roles.archiver!.close();
  let firstPhase = "";
  const first = cluster.roles.coordinator!.runNow((phase) => (firstPhase = phase));
  first.catch(() => undefined); // awaited below
  await waitFor("run 1 to reach its archiver flush", () => firstPhase === "archiver_flush");

  const cli = spawnCli(["run"], { cwd: process.cwd(), env: { LAMBDA_GRPC_ADDR: cluster.roles.serving!.address } });
  let stdout = "";
  let stderr = "";
  cli.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  cli.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => cli.on("close", (code) => resolve(code)));
  cli.stdin.end();
  const startArchiver = () =>
    createArchiver(
      { nc: cluster.nc, ch: cluster.roles.ch!, catalog: cluster.catalog, names: cluster.names, log: silentLogger },
      { nodeId: "archiver-2", heartbeatIntervalMs: 200, partitions: cluster.cfg.partitions, database: cluster.cfg.database, flushIntervalMs: 50, flushRows: 1_000 },
    );
  let archiver: Awaited<ReturnType<typeof startArchiver>> | undefined;
  try {
    const started = Date.now();
    await waitFor("lambdactl run to say the coordinator is busy", () => /busy with run 1 \(archiver flush\); waiting for it to finish/.test(stdout), { timeoutMs: 8_000 });
    assert.ok(Date.now() - started < 10_000, "said so before the 10 s no-answer deadline");

    // An archiver again: run 1 finishes, then the queued run 2 runs.
    archiver = await startArchiver();
    assert.equal((await first).run, 1);
    assert.equal(await exited, 0, `stdout:\n${stdout}\nstderr:\n${stderr}`);
    assert.doesNotMatch(stderr, /no coordinator answered/);
    const lines = stdout.split("\n");
    const queuedAt = lines.findIndex((l) => /queued/.test(l));
    const barrierAt = lines.findIndex((l) => /run 2\s+barrier/.test(l));
    assert.ok(queuedAt >= 0 && barrierAt > queuedAt, `queued first, then run 2's phases:\n${stdout}`);
    assert.match(stdout, /run 2 published/);
  } finally {
    // Also after a failed assertion: let run 1 end, so the cluster can close.
    archiver ??= await startArchiver();
    cli.kill("SIGKILL");
    await first.catch(() => undefined);
    // A run queued after everything else ends once the coordinator is idle (run 2 too, had the CLI asked in time).
    await cluster.roles.coordinator!.runNow().catch(() => undefined);
    await archiver.close();
  }
});
