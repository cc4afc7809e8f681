/**
 * The leadership key on a real nats-server: a coordinator that could not take over resigns
 * (the bug the fault matrix found: after a JetStream election failed its takeover, it kept
 * renewing a lease it did not lead with, and no batch run happened again). Resigning stops the
 * renewals, so another coordinator takes the lead once the lease lapses, with a newer epoch.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connectNats } from "../../src/nats/connect.js";
import { readLeader, startLeadership } from "../../src/nats/leadership.js";
import { namesFor } from "../../src/nats/names.js";
import { openBuckets } from "../../src/nats/setup.js";
import { silentLogger } from "../../src/core/logger.js";
import { startTestNats } from "../harness/nats.js";
import { waitFor } from "../harness/wait.js";

test("a leader that resigns stops renewing; a standby leads once the lease lapses, with a newer epoch", async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, "leadership-test");
  try {
    const b = await openBuckets(nc, namesFor(`ld${process.pid}`));
    const opts = { leaseMs: 600, renewMs: 100 };
    const changes: [string, number | null][] = [];
    const a = await startLeadership(b.coordinator, { id: "a", ...opts }, silentLogger, (e) => void changes.push(["a", e]));
    await a.join();
    const bLead = await startLeadership(b.coordinator, { id: "b", ...opts }, silentLogger, (e) => void changes.push(["b", e]));
    try {
      await bLead.join();
      assert.equal(a.epoch(), 1);
      assert.equal(bLead.epoch(), null);

      a.resign("taking over failed: test");
      assert.equal(a.epoch(), null, "resigned at once");
      // A standby judges the lease on the server's clock, which coordinators see through their heartbeats' stored times.
      const clock = setInterval(() => bLead.serverTimeSeen(Date.now()), 50);
      const took = await waitFor("b to lead", () => bLead.epoch() ?? undefined, { timeoutMs: 10_000 }).finally(() => clearInterval(clock));
      assert.equal(took, 2, "with the next epoch");
      assert.equal((await readLeader(b.coordinator))?.value.holder, "b");
      assert.deepEqual(changes, [["a", 1], ["a", null], ["b", 2]]);
    } finally {
      await a.stop();
      await bLead.stop();
    }
  } finally {
    await nc.close();
    await nats.close();
  }
});
