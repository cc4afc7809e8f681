/**
 * The pure parts of crash handling: a member's state from its heartbeat age, the
 * coordinator's long-gone check, the restart command the local cluster prints,
 * lambdactl on a stale local-cluster file, a queued run's progress text, and a
 * dead-letter record made to fit one NATS message.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { resolveGrpcAddress, StaleLocalClusterFileError, writeLocalClusterFile } from "../../src/cli/connection.js";
import { queuedText } from "../../src/cli/commands/run.js";
import { MembershipTracker } from "../../src/coordinator/membership.js";
import { processAlive } from "../../src/core/pid.js";
import type { DeadLetter } from "../../src/core/dead_letter.js";
import { restartCommand } from "../../src/main/restart_command.js";
import { decode, encodeDeadLetter } from "../../src/nats/codec.js";
import { GONE, memberState } from "../../src/serving/status.js";

test("a heartbeat older than the node timeout is gone, whatever it last said", () => {
  const hb = { role: "coordinator", id: "c", atMs: 10_000, state: "leader" } as const;
  assert.equal(memberState(hb, 15_000, 5_000), "leader", "at the timeout: still live");
  assert.equal(memberState(hb, 15_001, 5_000), GONE);
  assert.equal(memberState({ role: "speed", id: "s", atMs: 0 }, 100, 5_000), "");
});

test("the coordinator finds members whose heartbeat stopped changing for the drop time, with the revision seen", () => {
  const t = new MembershipTracker(1_000);
  t.observe(new Map([["a", 1], ["b", 7]]), 0);
  t.observe(new Map([["a", 2], ["b", 7]]), 600);
  assert.deepEqual(t.expired(999), []);
  assert.deepEqual(t.expired(1_000), [{ member: "b", revision: 7 }]);
  t.observe(new Map([["a", 2]]), 1_100); // b deleted
  assert.deepEqual(t.expired(1_600), [{ member: "a", revision: 2 }]);
});

test("the restart command names the kept store and chDB dir, and only non-default settings; odd paths are quoted", () => {
  assert.equal(
    restartCommand({ natsStoreDir: "/tmp/lambda-nats-x", chdbPath: "/tmp/lambda-chdb-y", prefix: "lambda", partitions: 8, database: "lambda" }),
    "LAMBDA_NATS_STORE_DIR=/tmp/lambda-nats-x LAMBDA_CHDB_PATH=/tmp/lambda-chdb-y npm start",
  );
  assert.equal(
    restartCommand({ natsUrl: "nats://h:4222", chdbPath: "/data/my chdb's", prefix: "p", partitions: 2 }),
    `LAMBDA_NATS_URL=nats://h:4222 LAMBDA_CHDB_PATH='/data/my chdb'\\''s' LAMBDA_PREFIX=p LAMBDA_PARTITIONS=2 npm start`,
  );
});

test("lambdactl on a local-cluster file whose process is gone says its addresses are dead", () => {
  const dir = mkdtempSync(join(tmpdir(), "lambda-stale-"));
  try {
    const done = spawnSync(process.execPath, ["-e", ""]);
    const deadPid = done.pid!;
    assert.equal(processAlive(deadPid), false);
    writeLocalClusterFile(dir, { grpc: "127.0.0.1:50051", natsUrl: "nats://127.0.0.1:4222", prefix: "lambda", partitions: 8, catalog: "/c.json", pid: deadPid });
    assert.throws(
      () => resolveGrpcAddress({ flags: {}, env: {}, cwd: dir }),
      (err: unknown) => err instanceof StaleLocalClusterFileError && err.pid === deadPid && /no longer running.*127\.0\.0\.1:50051/.test(err.message),
    );
    // A flag or variable does not need the file.
    assert.equal(resolveGrpcAddress({ flags: {}, env: { LAMBDA_GRPC_ADDR: "h:1" }, cwd: dir }).value, "h:1");
    writeLocalClusterFile(dir, { grpc: "127.0.0.1:50051", natsUrl: "nats://127.0.0.1:4222", prefix: "lambda", partitions: 8, catalog: "/c.json", pid: process.pid });
    assert.equal(resolveGrpcAddress({ flags: {}, env: {}, cwd: dir }).value, "127.0.0.1:50051", "a live process's file is used");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a queued run says what it waits for", () => {
  assert.equal(queuedText(JSON.stringify({ busyWith: 5, busyPhase: "archiver_flush" })), "the coordinator is busy with run 5 (archiver flush); waiting for it to finish");
  assert.equal(queuedText(JSON.stringify({ busyWith: 0, busyPhase: "starting" })), "the coordinator is busy with another run (starting); waiting for it to finish");
  assert.equal(queuedText(JSON.stringify({ busyWith: 3, busyPhase: "rollback" })), "the coordinator is busy rolling the watermark back to run 3; waiting");
});

test("a dead-letter record over max_payload keeps the start of the raw JSON and says how long it was", () => {
  const raw = { id: "é1", device: "é".repeat(50_000) };
  const problems = [{ field: "device", reason: "too large" }];
  const record: DeadLetter = { stage: "ingest", source: "pageviews", raw, field: "device", reason: "too large", problems, eventId: "é1", partition: null, seq: null, refusedAt: "2026-01-01T00:00:00.000Z" };
  const small = encodeDeadLetter(record, 1_000_000);
  assert.deepEqual(decode(small), record, "fits: kept whole");
  const cut = encodeDeadLetter(record, 8_192);
  assert.ok(cut.length <= 8_192, `${cut.length} bytes`);
  const back = decode<DeadLetter>(cut);
  const whole = JSON.stringify(raw);
  assert.equal(back.rawTruncatedFrom, Buffer.byteLength(whole));
  assert.equal(back.reason, "too large");
  assert.ok(typeof back.raw === "string" && back.raw.length > 1_000);
  assert.ok(whole.startsWith((back.raw as string).replace(/\uFFFD$/, "")), "a prefix of the JSON text");
});
