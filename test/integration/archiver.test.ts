/** The archiver on real NATS and chDB: a restart neither loses nor duplicates a row. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createArchiver } from "../../src/batch/index.js";
import { queryRows } from "../../src/ch/client.js";
import type { MasterInserter } from "../../src/ch/master_insert.js";
import { masterTable } from "../../src/ch/schema.js";
import { silentLogger } from "../../src/core/logger.js";
import { streamPositionReader, type PositionReader } from "../../src/nats/stream_position.js";
import { deadLetters } from "../harness/dead_letters.js";
import { startTestCluster } from "../harness/cluster.js";
import { waitFor } from "../harness/wait.js";

const T = Date.UTC(2026, 5, 8, 12, 0, 0);
const events = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `ar-${from + i}`, article_id: `a-${(from + i) % 11}`, user_id: "u", ts: T + (from + i) * 1000 }));

test("archiver restart resumes where the master table ends: no gap, no duplicate", { timeout: 60_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 3, speedNodes: 1 });
  const ch = cluster.roles.ch!.client;
  const table = masterTable(cluster.cfg.database, "pageviews");
  const stats = async () =>
    (await queryRows<{ rows: number | string; positions: number | string; ids: number | string }>(
      ch,
      `SELECT count() AS rows, uniqExact(_partition, _seq) AS positions, uniqExact(_id) AS ids FROM ${table}`,
    ))[0]!;

  await cluster.ingest.publishBatch("pageviews", events(0, 500));
  await waitFor("500 archived rows", async () => Number((await stats()).rows) === 500);
  await cluster.roles.archiver!.close();

  // Published while no archiver runs: the next one must pick them up.
  await cluster.ingest.publishBatch("pageviews", events(500, 300));
  const second = await createArchiver(
    { nc: cluster.nc, ch: cluster.roles.ch!, catalog: cluster.catalog, names: cluster.names, log: silentLogger },
    { nodeId: "second-archiver", heartbeatIntervalMs: 200, partitions: cluster.cfg.partitions, database: cluster.cfg.database, flushIntervalMs: 50, flushRows: 1000 },
  );
  try {
    await waitFor("800 archived rows", async () => Number((await stats()).rows) >= 800);
    const s = await stats();
    assert.equal(Number(s.rows), 800, "no row twice");
    assert.equal(Number(s.positions), 800);
    assert.equal(Number(s.ids), 800);
    assert.equal(second.stats().rowsArchived, 300, "the second archiver wrote only what was missing");

    // The new archiver reports barriers, so batch runs go on.
    const wm = await cluster.roles.coordinator!.runNow();
    assert.equal(wm.eventsCovered, 800);
  } finally {
    await second.close();
  }
});

test("an insert that lands in part and then fails is retried without the rows that landed", { timeout: 60_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 3, speedNodes: 1 });
  const handle = cluster.roles.ch!;
  const table = masterTable(cluster.cfg.database, "pageviews");
  await cluster.roles.archiver!.close();

  // The first insert writes the first half of its rows for real and then reports a failure,
  // as a connection lost after ClickHouse committed part of an INSERT would.
  const calls: number[] = [];
  const flaky: MasterInserter = {
    format: handle.master.format,
    async insert(db, source, rows) {
      calls.push(rows.length);
      if (calls.length > 1) return handle.master.insert(db, source, rows);
      await handle.master.insert(db, source, rows.slice(0, Math.floor(rows.length / 2)));
      throw new Error("connection reset after the insert was sent");
    },
  };
  await cluster.ingest.publishBatch("pageviews", events(0, 400));
  const archiver = await createArchiver(
    { nc: cluster.nc, ch: { ...handle, master: flaky }, catalog: cluster.catalog, names: cluster.names, log: silentLogger },
    { nodeId: "flaky-archiver", heartbeatIntervalMs: 200, partitions: cluster.cfg.partitions, database: cluster.cfg.database, flushIntervalMs: 50, flushRows: 10_000 },
  );
  try {
    await waitFor("400 archived rows", () => archiver.stats().rowsArchived >= 400);
    const [s] = await queryRows<{ rows: number | string; positions: number | string }>(handle.client, `SELECT count() AS rows, uniqExact(_partition, _seq) AS positions FROM ${table}`);
    assert.equal(Number(s!.rows), 400, "no row twice, none lost");
    assert.equal(Number(s!.positions), 400);
    assert.ok(calls.length >= 2, "the failed insert was retried");
    assert.equal(calls[1]! + Math.floor(calls[0]! / 2), calls[0], "the retry sent only the rows that had not landed");
  } finally {
    await archiver.close();
  }
});


test("reading stops once four flushes' worth of rows wait behind an insert that does not return, and goes on when it does", { timeout: 60_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 3, speedNodes: 0 });
  const handle = cluster.roles.ch!;
  const table = masterTable(cluster.cfg.database, "pageviews");
  await cluster.roles.archiver!.close();
  const flushRows = 50;
  // The first insert waits at the gate, as an INSERT into a stalled ClickHouse would.
  const calls: number[] = [];
  let openGate!: () => void;
  const gate = new Promise<void>((r) => (openGate = r));
  const stalled: MasterInserter = {
    format: handle.master.format,
    async insert(db, source, rows) {
      calls.push(rows.length);
      if (calls.length === 1) await gate;
      return handle.master.insert(db, source, rows);
    },
  };
  await cluster.ingest.publishBatch("pageviews", events(0, 1_000));
  const archiver = await createArchiver(
    { nc: cluster.nc, ch: { ...handle, master: stalled }, catalog: cluster.catalog, names: cluster.names, log: silentLogger },
    { nodeId: "stalled-archiver", heartbeatIntervalMs: 200, partitions: cluster.cfg.partitions, database: cluster.cfg.database, flushIntervalMs: 50, flushRows },
  );
  try {
    await waitFor("the buffer full behind the held insert", () => calls.length === 1 && archiver.stats().rowsBuffered >= 4 * flushRows);
    openGate();
    await waitFor("1000 archived rows", () => archiver.stats().rowsArchived >= 1_000);
    // The flush after the held one took what the consumers had read meanwhile: no more than the bound
    // (each partition's loop may add its row past it before it waits), not the rest of the stream.
    assert.ok(calls[1]! <= 4 * flushRows + cluster.cfg.partitions, `second insert of ${calls[1]} rows`);
    const [s] = await queryRows<{ rows: number | string; positions: number | string }>(handle.client, `SELECT count() AS rows, uniqExact(_partition, _seq) AS positions FROM ${table}`);
    assert.equal(Number(s!.rows), 1_000, "no row twice, none lost");
    assert.equal(Number(s!.positions), 1_000);
  } finally {
    await archiver.close();
  }
});

test("a row ClickHouse refuses is dead-lettered and the rest of its batch archived, not retried forever", { timeout: 60_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 0 });
  const handle = cluster.roles.ch!;
  const table = masterTable(cluster.cfg.database, "pageviews");
  await cluster.roles.archiver!.close();
  // A table whose column type differs from the catalog's (as a table an operator altered would):
  // user_id holds integers, so ClickHouse refuses a user_id it cannot parse as one. Every event is valid.
  await handle.client.command({ query: `ALTER TABLE ${table} MODIFY COLUMN user_id Int64` });
  const evs = events(0, 200).map((e, i) => ({ ...e, user_id: i === 57 || i === 140 ? `not-a-number-${i}` : String(1000 + i) }));
  const published = await cluster.ingest.publishBatch("pageviews", evs);
  assert.equal(published.accepted, 200);

  const archiver = await createArchiver(
    { nc: cluster.nc, ch: handle, catalog: cluster.catalog, names: cluster.names, log: silentLogger },
    { nodeId: "refusing-archiver", heartbeatIntervalMs: 200, partitions: cluster.cfg.partitions, database: cluster.cfg.database, flushIntervalMs: 50, flushRows: 10_000 },
  );
  try {
    await waitFor("198 archived rows and 2 refused", () => archiver.stats().rowsArchived + archiver.stats().rowsRefused >= 200);
    const rows = await queryRows<{ _id: string }>(handle.client, `SELECT _id FROM ${table} ORDER BY _id`);
    const expected = evs.filter((_, i) => i !== 57 && i !== 140).map((e) => e.id).sort();
    assert.deepEqual(rows.map((r) => r._id), expected, "every other row archived once");
    assert.equal(archiver.stats().rowsRefused, 2);

    const dl = await waitFor("two dead letters", async () => {
      const all = (await deadLetters(cluster)).filter((d) => d.stage === "archive");
      return all.length >= 2 && all;
    });
    assert.deepEqual(dl.map((d) => d.eventId).sort(), ["ar-140", "ar-57"]);
    for (const d of dl) {
      assert.equal(d.source, "pageviews");
      assert.match(d.reason, /ClickHouse refused the row/);
      assert.equal(typeof d.partition, "number");
      assert.ok(typeof d.seq === "number" && d.seq > 0);
    }
    // A batch run is not held up by the refused rows: the barriers are recorded.
    const wm = await cluster.roles.coordinator!.runNow();
    assert.equal(wm.eventsCovered, 198);
  } finally {
    await archiver.close();
  }
});

test("close() returns promptly while inserts keep failing; the rows are archived after a restart", { timeout: 60_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 0 });
  const handle = cluster.roles.ch!;
  const table = masterTable(cluster.cfg.database, "pageviews");
  await cluster.roles.archiver!.close();
  let attempts = 0;
  const down: MasterInserter = {
    format: handle.master.format,
    async insert() {
      attempts++;
      throw new Error("connect ECONNREFUSED (ClickHouse is down)");
    },
  };
  await cluster.ingest.publishBatch("pageviews", events(0, 300));
  const failing = await createArchiver(
    { nc: cluster.nc, ch: { ...handle, master: down }, catalog: cluster.catalog, names: cluster.names, log: silentLogger },
    { nodeId: "failing-archiver", heartbeatIntervalMs: 200, partitions: cluster.cfg.partitions, database: cluster.cfg.database, flushIntervalMs: 50, flushRows: 10_000 },
  );
  await waitFor("the archiver retrying its insert", () => attempts >= 2);
  const t0 = Date.now();
  await failing.close();
  const tookMs = Date.now() - t0;
  assert.ok(tookMs < 2_000, `close() took ${tookMs} ms during a retry loop`);
  assert.equal(failing.stats().rowsArchived, 0);

  const second = await createArchiver(
    { nc: cluster.nc, ch: handle, catalog: cluster.catalog, names: cluster.names, log: silentLogger },
    { nodeId: "second-archiver", heartbeatIntervalMs: 200, partitions: cluster.cfg.partitions, database: cluster.cfg.database, flushIntervalMs: 50, flushRows: 10_000 },
  );
  try {
    await waitFor("300 archived rows", () => second.stats().rowsArchived >= 300);
    const [s] = await queryRows<{ rows: number | string; ids: number | string }>(handle.client, `SELECT count() AS rows, uniqExact(_id) AS ids FROM ${table}`);
    assert.deepEqual([Number(s!.rows), Number(s!.ids)], [300, 300]);
  } finally {
    await second.close();
  }
});

test("a history the stream does not hold is not archived: the partition is read again from its archived head", { timeout: 60_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 3, speedNodes: 1 });
  const handle = cluster.roles.ch!;
  const table = masterTable(cluster.cfg.database, "pageviews");
  // The cluster's own archiver checked every flush against the stream and found nothing wrong.
  await cluster.ingest.publishBatch("pageviews", events(0, 200));
  await waitFor("200 archived rows", () => cluster.roles.archiver!.stats().rowsArchived >= 200);
  assert.equal(cluster.roles.archiver!.stats().historyMismatches, 0);
  await cluster.roles.archiver!.close();

  // Now the stream's leader "holds" something else at the first positions asked about, as after
  // replica drift (docs/reliability.md, F12): those flushes must be held back and read again.
  const real = streamPositionReader(cluster.nc, cluster.names.eventStream);
  let lies = 3;
  const drifted: PositionReader = async (seq) => {
    const at = await real(seq);
    if (at && lies > 0) {
      lies--;
      return { ...at, event: { source: "pageviews", id: `not-${at.event?.id}` } };
    }
    return at;
  };
  await cluster.ingest.publishBatch("pageviews", events(200, 400));
  const archiver = await createArchiver(
    { nc: cluster.nc, ch: handle, positions: drifted, catalog: cluster.catalog, names: cluster.names, log: silentLogger },
    { nodeId: "checking-archiver", heartbeatIntervalMs: 200, partitions: cluster.cfg.partitions, database: cluster.cfg.database, flushIntervalMs: 50, flushRows: 100 },
  );
  try {
    await waitFor("the other 400 archived", () => archiver.stats().rowsArchived >= 400);
    assert.ok(archiver.stats().historyMismatches >= 1, "the wrong history was noticed");
    const rows = await queryRows<{ seq: number | string; id: string }>(handle.client, `SELECT _seq AS seq, _id AS id FROM ${table} ORDER BY _seq`);
    assert.equal(rows.length, 600, "every event once");
    assert.equal(new Set(rows.map((r) => r.id)).size, 600);
    // Each row sits where the stream holds its event.
    for (const r of rows) assert.equal((await real(Number(r.seq)))?.event?.id, r.id, `sequence ${r.seq}`);
    const wm = await cluster.roles.coordinator!.runNow();
    assert.equal(wm.eventsCovered, 600);
  } finally {
    await archiver.close();
  }
});
