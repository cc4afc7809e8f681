/** The partition count a cluster was started with, recorded once and checked by every later process (real nats-server). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { agreeOnSettings, checkSettings, ClusterSettingsError } from "../../src/nats/cluster_settings.js";
import { connectNats } from "../../src/nats/connect.js";
import { namesFor } from "../../src/nats/names.js";
import { openBuckets } from "../../src/nats/setup.js";
import { startTestNats } from "../harness/nats.js";

test("the first role records the partition count; a process with another one is refused, naming both", async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, "cluster-settings-test");
  try {
    const kv = (await openBuckets(nc, namesFor(`set${process.pid}`))).coordinator;
    await checkSettings(kv, 5); // nothing recorded yet: a client cannot tell, and does not record
    const first = await agreeOnSettings(kv, 8, "coordinator-1");
    assert.deepEqual([first.partitions, first.recordedBy], [8, "coordinator-1"]);
    const again = await agreeOnSettings(kv, 8, "speed-2");
    assert.deepEqual(again, first, "a later role with the same count reads, does not rewrite");
    await checkSettings(kv, 8);
    for (const attempt of [agreeOnSettings(kv, 4, "speed-3"), checkSettings(kv, 4)]) {
      await assert.rejects(attempt, (e: unknown) => e instanceof ClusterSettingsError && /this cluster has 8 partitions \(recorded by coordinator-1 at .*\), this process is configured with 4/.test(e.message));
    }
  } finally {
    await nc.close();
    await nats.close();
  }
});
