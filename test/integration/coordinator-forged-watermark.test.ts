/**
 * A watermark key value no batch run wrote does not keep a coordinator from taking the lead
 * (issue #13): a forged watermark with a huge epoch used to make the new leader's stamp fail
 * (FencedError), so it resigned, and every coordinator after it, for good; a value that is not a
 * watermark at all made its start-up read throw. Then nobody led, and nobody could serve the
 * rollback that repairs it. Coordinators alone on a real nats-server.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Kvm } from "@nats-io/kv";
import { readCatalogFile } from "../../src/core/catalog.js";
import { silentLogger } from "../../src/core/logger.js";
import { createCoordinator, type CoordinatorOptions } from "../../src/coordinator/index.js";
import { encode } from "../../src/nats/codec.js";
import { connectNats } from "../../src/nats/connect.js";
import { namesFor, WATERMARK_KEY } from "../../src/nats/names.js";
import { ensureStreams } from "../../src/nats/setup.js";
import { readWatermarkState } from "../../src/nats/watermark_store.js";
import { startTestNats } from "../harness/nats.js";

const CATALOG = readCatalogFile("catalog/catalog.json").catalog;
const OPTIONS: Omit<CoordinatorOptions, "coordinatorId"> = {
  partitions: 2,
  batchIntervalMs: 0,
  heartbeatIntervalMs: 100,
  nodeTimeoutMs: 1_000,
  viewVersionsKept: 3,
  leaderLeaseMs: 1_000,
  leaderRenewMs: 100,
};

test("a forged watermark with a huge epoch, or one that is no watermark, does not keep the next coordinator from leading", { timeout: 60_000 }, async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, "coordinator-forged-watermark-test");
  const names = namesFor(`cforge${process.pid}`);
  try {
    await ensureStreams(nc, names, { duplicateWindowMs: 60_000 });
    const deps = { nc, catalog: CATALOG, names, log: silentLogger };
    const first = await createCoordinator(deps, { ...OPTIONS, coordinatorId: "c-1" });
    assert.equal(first.leaderEpoch(), 1, "the only coordinator leads");

    // A raw client's watermark: a run nobody ran, an epoch no leader held.
    const kv = await new Kvm(nc).open(names.watermarkBucket);
    const forged = { run: 7, cuts: [5, 5], viewVersion: 7, coveredFromMs: null, coveredToMs: null, eventsCovered: 0, startedAtMs: 1, publishedAtMs: 2, coordinator: "x", timings: { barrierMs: 0, archiverFlushMs: 0, recomputeMs: 0 }, epoch: 1e12 };
    await kv.put(WATERMARK_KEY, encode(forged));
    await first.close();

    const second = await createCoordinator(deps, { ...OPTIONS, coordinatorId: "c-2" });
    try {
      assert.equal(second.leaderEpoch(), 2, "the next coordinator leads despite the forged epoch");
      const state = await readWatermarkState(kv);
      assert.equal(state.kind === "watermark" && state.watermark.epoch, 1e12, "the forged value is left for the operator's rollback, not stamped as a run's");
      // A rollback is served (and refused for the right reason: there is no run to go back to).
      await assert.rejects(second.rollback(1), /cannot roll back to run 1: no such run in the history/);
    } finally {
      await second.close();
    }

    // Not msgpack at all (0xc1 is a byte msgpack never uses).
    await kv.put(WATERMARK_KEY, new Uint8Array([0xc1]));
    const third = await createCoordinator(deps, { ...OPTIONS, coordinatorId: "c-3" });
    try {
      assert.equal(third.leaderEpoch(), 3, "the next coordinator leads despite a value that is no watermark");
    } finally {
      await third.close();
    }
  } finally {
    await nc.close();
    await nats.close();
  }
});
