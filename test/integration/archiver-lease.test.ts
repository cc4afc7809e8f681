/**
 * Two archivers on one cluster (real nats-server and chDB): one holds the lease and writes, the
 * other stands by and takes over; a holder paused past its lease writes no progress once it runs
 * again; every published event is in the master dataset, counted once (compared per id with the
 * ids published).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createArchiver, ArchiverStates, type Archiver } from "../../src/batch/index.js";
import { queryRows } from "../../src/ch/client.js";
import { masterRowsOf, type MasterInserter } from "../../src/ch/master_insert.js";
import { masterTable } from "../../src/ch/schema.js";
import { silentLogger } from "../../src/core/logger.js";
import { readArchiverLease } from "../../src/nats/archiver_lease.js";
import { parseArchiverProgress, recordArchiverProgress } from "../../src/nats/archiver_progress.js";
import { connectNats } from "../../src/nats/connect.js";
import { FencedError, readValue } from "../../src/nats/kv.js";
import { partitionKey } from "../../src/nats/names.js";
import { openBuckets, partitionHeads } from "../../src/nats/setup.js";
import { startTestCluster, type TestCluster } from "../harness/cluster.js";
import { startFreezeProxy } from "../harness/freeze_proxy.js";
import { getWatermark, queryRaw } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";

const T = Date.UTC(2026, 5, 8, 12, 0, 0);
const events = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `lease-${from + i}`, article_id: `a-${(from + i) % 11}`, user_id: "u", ts: T + (from + i) * 1000 }));
const ids = (from: number, n: number) => events(from, n).map((e) => e.id);

/** Short leases so takeovers happen within a test; the heartbeat moves a standby's server clock. */
// Long enough that an event loop held up by chDB work (both archivers share this process) does not lapse it.
const LEASE = { leaseMs: 2_000, renewMs: 200, heartbeatIntervalMs: 100 };

function startArchiver(cluster: TestCluster, nodeId: string, extra: { nc?: TestCluster["nc"]; master?: MasterInserter } = {}): Promise<Archiver> {
  const ch = extra.master ? { ...cluster.roles.ch!, master: extra.master } : cluster.roles.ch!;
  return createArchiver(
    { nc: extra.nc ?? cluster.nc, ch, catalog: cluster.catalog, names: cluster.names, log: silentLogger },
    { nodeId, ...LEASE, partitions: cluster.cfg.partitions, database: cluster.cfg.database, flushIntervalMs: 20, flushRows: 10_000 },
  );
}

/** Rows per event id in the master table. */
async function rowsPerId(cluster: TestCluster): Promise<Map<string, number>> {
  const table = masterTable(cluster.cfg.database, "pageviews");
  const rows = await queryRows<{ id: string; n: number | string }>(cluster.roles.ch!.client, `SELECT _id AS id, count() AS n FROM ${table} GROUP BY _id`);
  return new Map(rows.map((r) => [r.id, Number(r.n)]));
}
const totalRows = async (cluster: TestCluster) => [...(await rowsPerId(cluster)).values()].reduce((a, b) => a + b, 0);

/** Every id in `expected` has exactly one row, and no other id has any. */
function assertExactlyOnce(perId: Map<string, number>, expected: readonly string[], what: string): void {
  const want = new Set(expected);
  const missing = expected.filter((id) => !perId.has(id));
  const twice = [...perId].filter(([, n]) => n !== 1).map(([id, n]) => `${id}×${n}`);
  const stray = [...perId.keys()].filter((id) => !want.has(id));
  assert.deepEqual({ missing, twice, stray }, { missing: [], twice: [], stray: [] }, what);
}

test("two archivers: one holds the lease and archives, the other stands by; closing the holder hands over and the rest is archived once", { timeout: 90_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 3, speedNodes: 0 });
  await cluster.roles.archiver!.close(); // releases its lease: the two below compete
  const a = await startArchiver(cluster, "archiver-a");
  const b = await startArchiver(cluster, "archiver-b");
  try {
    assert.equal(a.state(), ArchiverStates.holding, "the first to ask takes the released lease");
    assert.equal(b.state(), ArchiverStates.standby);
    const lease1 = await readArchiverLease((await openBuckets(cluster.nc, cluster.names)).archiver);
    assert.equal(lease1?.value.holder, "archiver-a");

    await cluster.ingest.publishBatch("pageviews", events(0, 600));
    // Counted by the archivers once a flush is wholly in: wait on their count, then recount the table.
    await waitFor("600 archived rows", () => a.stats().rowsArchived + b.stats().rowsArchived >= 600, { timeoutMs: 30_000 });
    assert.equal(a.stats().rowsArchived, 600);
    assert.equal(b.stats().rowsArchived, 0, "the standby inserted nothing");
    assertExactlyOnce(await rowsPerId(cluster), ids(0, 600), "after the first holder");

    await a.close(); // flushes, then releases the lease
    await cluster.ingest.publishBatch("pageviews", events(600, 400));
    const epochB = await waitFor("b to hold the lease", () => b.epoch() ?? undefined, { timeoutMs: 20_000 });
    assert.ok(epochB > lease1!.value.epoch, `a newer epoch (${epochB} after ${lease1!.value.epoch})`);
    await waitFor("1000 archived rows", () => a.stats().rowsArchived + b.stats().rowsArchived >= 1000, { timeoutMs: 30_000 });
    assert.equal(b.stats().rowsArchived, 400, "the new holder archived only what was missing");
    assertExactlyOnce(await rowsPerId(cluster), ids(0, 1000), "after the takeover");

    // The new holder records barriers under its epoch, so batch runs go on and count each event once.
    const wm = await cluster.roles.coordinator!.runNow();
    assert.equal(wm.eventsCovered, 1000);
  } finally {
    await a.close();
    await b.close();
  }
});

test("a holder paused past its lease: a standby takes over; after it resumes it records no progress and inserts nothing more; each event counts once", { timeout: 120_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 3, speedNodes: 0 });
  await cluster.roles.archiver!.close();
  const buckets = await openBuckets(cluster.nc, cluster.names);
  const url = new URL(cluster.nats.url.split(",")[0]!);
  await using proxy = await startFreezeProxy({ host: url.hostname, port: Number(url.port) });
  const ncA = await connectNats(proxy.url, "paused-archiver");

  // A's inserts: the first one armed waits at the gate, inside the insert (after A's lease check),
  // as an archiver paused in the middle of an INSERT would; it lands when the gate opens.
  const base = cluster.roles.ch!.master;
  let armed = false;
  let openGate!: () => void;
  const gate = new Promise<void>((r) => (openGate = r));
  let held: { rows: number; ids: string[] } | undefined;
  const insertsByA: number[] = [];
  const masterA: MasterInserter = {
    format: base.format,
    async insert(db, source, rows) {
      insertsByA.push(rows.length);
      if (armed && !held) {
        held = { rows: rows.length, ids: masterRowsOf(rows).map((r) => r.id) };
        await gate;
      }
      return base.insert(db, source, rows);
    },
  };
  const a = await startArchiver(cluster, "archiver-a", { nc: ncA, master: masterA });
  const b = await startArchiver(cluster, "archiver-b");
  try {
    const epochA = a.epoch();
    assert.equal(a.state(), ArchiverStates.holding);
    assert.equal(epochA, (await readArchiverLease(buckets.archiver))?.value.epoch);

    await cluster.ingest.publishBatch("pageviews", events(0, 200));
    await waitFor("200 archived rows", async () => (await totalRows(cluster)) >= 200, { timeoutMs: 30_000 });

    // The pause: A's next insert stops inside; what arrives meanwhile waits in A's buffer.
    armed = true;
    await cluster.ingest.publishBatch("pageviews", events(200, 300));
    await waitFor("A's insert held at the gate", () => held !== undefined, { timeoutMs: 30_000 });
    await cluster.ingest.publishBatch("pageviews", events(500, 100));
    const heads = await partitionHeads(cluster.nc, cluster.names, cluster.cfg.partitions);
    await waitFor("A to have read every event", () => heads.every((h, p) => (a.stats().read[p] ?? 0) >= h), { timeoutMs: 30_000 });
    // ... and its NATS traffic stops, as a stopped process's would: no renewal reaches the server.
    proxy.freeze();

    const epochB = await waitFor("B to take the lease over", () => b.epoch() ?? undefined, { timeoutMs: 30_000 });
    assert.ok(epochB > epochA!, "with a newer epoch");
    assert.equal(a.epoch(), null, "A's lease is stale on its own clock: it may not insert");
    assert.equal(a.state(), ArchiverStates.lapsed);
    await waitFor("B to archive all 600", async () => (await totalRows(cluster)) >= 600, { timeoutMs: 30_000 });
    assertExactlyOnce(await rowsPerId(cluster), ids(0, 600), "B archived what A had not");

    // A resumes: its held INSERT lands (it was past A's lease check); then nothing more.
    const insertsBeforeResume = insertsByA.length;
    openGate();
    proxy.thaw();
    await waitFor("the held insert to land", async () => (await totalRows(cluster)) >= 600 + held!.rows, { timeoutMs: 30_000 });
    await waitFor("A to learn that B holds the lease and stop its writer", () => a.state() === ArchiverStates.standby, { timeoutMs: 30_000 });
    assert.equal((await readArchiverLease(buckets.archiver))?.value.holder, "archiver-b");

    // Its progress writes are refused: B stamped its epoch on every partition's key.
    for (let p = 0; p < cluster.cfg.partitions; p++) {
      const progress = await readValue(buckets.archiver, partitionKey(p), parseArchiverProgress);
      assert.equal(progress?.value.epoch, epochB, `partition ${p}'s progress carries B's epoch`);
      await assert.rejects(recordArchiverProgress(buckets.archiver, { partition: p, run: 1_000_000, barrierSeq: 1, atMs: Date.now() }, epochA!), FencedError, "A's epoch cannot move progress");
    }

    // A barrier run after the resume: B records it; A inserts nothing more.
    await cluster.ingest.publishBatch("pageviews", events(600, 100));
    const wm = await cluster.roles.coordinator!.runNow();
    assert.equal(insertsByA.length, insertsBeforeResume, "A started no insert after it resumed");
    const perId = await rowsPerId(cluster);
    // Rows twice: exactly the rows of the INSERT A had in flight when its lease lapsed (documented in batch/archiver.ts).
    const twice = [...perId].filter(([, n]) => n > 1);
    const heldIds = new Set(held!.ids);
    assert.ok(twice.every(([id, n]) => n === 2 && heldIds.has(id)), "only the held insert's rows are there twice");
    assert.equal(twice.length, held!.rows, "B had archived every row of the held insert before it landed");
    assertExactlyOnce(new Map([...perId].map(([id, n]) => [id, heldIds.has(id) ? n - 1 : n])), ids(0, 700), "every other event once, none missing");
    // The batch layer counts each event once: the run's view counts, per article, what was published (an independent recount).
    assert.equal(wm.eventsCovered, 700, "each event counted once by the batch run");
    const published = events(0, 700);
    await waitFor("serving to answer at the new watermark", async () => (await getWatermark(cluster.grpc)).watermark?.run === wm.run, { timeoutMs: 20_000 });
    for (let k = 0; k < 11; k++) {
      const res = await queryRaw(cluster.grpc, { metric: "article_views", key: `a-${k}`, from: new Date(T - 60_000), to: new Date(T + 3_600_000), strict: false });
      assert.equal(res.watermarkRun, wm.run);
      assert.equal(res.answers[0]?.batchPart ?? 0, published.filter((e) => e.article_id === `a-${k}`).length, `batch view count of a-${k}`);
    }
  } finally {
    proxy.thaw();
    await a.close();
    await b.close();
    await ncA.close();
  }
});
