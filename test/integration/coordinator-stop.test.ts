/**
 * A leader that stops (or stands down) in the middle of a run stops waiting at
 * once, whatever its run waits for (here: an archiver that never comes), writes
 * nothing more for that run, and releases the lease; the next leader gives the run
 * an outcome. Coordinators alone on a real nats-server: no archiver, no executor.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readCatalogFile } from "../../src/core/catalog.js";
import { silentLogger } from "../../src/core/logger.js";
import { createCoordinator, type CoordinatorOptions } from "../../src/coordinator/index.js";
import { connectNats } from "../../src/nats/connect.js";
import { NotLeaderError, readLeader } from "../../src/nats/leadership.js";
import { namesFor } from "../../src/nats/names.js";
import { readRun } from "../../src/nats/run_history.js";
import { ensureStreams, openBuckets } from "../../src/nats/setup.js";
import { startTestNats } from "../harness/nats.js";
import { waitFor } from "../harness/wait.js";

const CATALOG = readCatalogFile("catalog/catalog.json").catalog;
const OPTIONS: Omit<CoordinatorOptions, "coordinatorId"> = {
  partitions: 2,
  batchIntervalMs: 0,
  heartbeatIntervalMs: 100,
  nodeTimeoutMs: 1_000,
  viewVersionsKept: 3,
  leaderLeaseMs: 1_000,
  leaderRenewMs: 100,
  // Far beyond the test's own timeout: only a stop that aborts the wait lets the test pass.
  archiverTimeoutMs: 600_000,
};

test("a leader stopped mid-run stops waiting at once, releases the lease, and the next leader records the run abandoned", { timeout: 60_000 }, async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, "coordinator-stop-test");
  const names = namesFor(`cstop${process.pid}`);
  try {
    await ensureStreams(nc, names, { duplicateWindowMs: 60_000 });
    const b = await openBuckets(nc, names);
    const deps = { nc, catalog: CATALOG, names, log: silentLogger };
    const first = await createCoordinator(deps, { ...OPTIONS, coordinatorId: "c-1" });
    assert.equal(first.leaderEpoch(), 1, "the only coordinator leads");

    const phases: string[] = [];
    const running = first.runNow((phase) => phases.push(phase));
    const outcome = running.then(
      () => "published",
      (err: unknown) => err,
    );
    await waitFor("the run to wait for the archiver", () => phases.includes("archiver_flush"));
    await first.close();
    const err = await outcome;
    assert.ok(err instanceof NotLeaderError, `the run ended with ${String(err)}`);
    assert.match(err.message, /it is stopping/);
    assert.equal((await readLeader(b.coordinator))?.value.holder, "", "the lease is released on stop");
    const left = await readRun(b, 1);
    assert.equal(left?.outcome, "running", "the stopping leader wrote no outcome: that is the next leader's word");
    assert.equal(left?.phase, "archiver_flush");

    const second = await createCoordinator(deps, { ...OPTIONS, coordinatorId: "c-2" });
    try {
      assert.equal(second.leaderEpoch(), 2, "a released lease is taken at once, with the next epoch");
      const r = await readRun(b, 1);
      assert.equal(r?.outcome, "abandoned");
      assert.match(r?.detail ?? "", /^abandoned by coordinator c-1 at phase archiver_flush; coordinator c-2 took over with epoch 2/);
    } finally {
      await second.close();
    }
  } finally {
    await nc.close();
    await nats.close();
  }
});
