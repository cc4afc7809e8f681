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

test("a heartbeat older than the node timeout is gone, whatever it last said; the leadership key says who leads", () => {
  // The member's own clock (atMs) is far off: only the server's stored time counts.
  const beat = (id: string, state: string) => ({ hb: { role: "coordinator", id, atMs: 999_999_999, state } as const, storedAtMs: 10_000 });
  const leader = { id: "c", epoch: 2, leaseAgeMs: 1_000, leaseMs: 5_000 };
  assert.equal(memberState(beat("c", "leader"), 15_000, 5_000, leader), "leader", "at the timeout: still live");
  assert.equal(memberState(beat("c", "leader"), 15_001, 5_000, leader), GONE);
  assert.equal(memberState(beat("d", "leader"), 15_000, 5_000, leader), "standby", "a stale claim to lead is not the key's word");
  assert.equal(memberState(beat("c", "leader"), 15_000, 5_000, { ...leader, leaseAgeMs: 5_000 }), "standby", "a lapsed lease leads no more");
  assert.equal(memberState(beat("c", "leader"), 15_000, 5_000, null), "standby");
  assert.equal(memberState({ hb: { role: "speed", id: "s", atMs: 0 }, storedAtMs: 0 }, 100, 5_000, leader), "");
});

test("membership runs on the server's clock: members expire by the newest stored time seen, whatever the local clock", () => {
  const t = new MembershipTracker();
  t.beat("speed.a", 1, 10_000);
  t.beat("speed.b", 7, 10_000);
  t.beat("speed.a", 2, 10_600);
  assert.deepEqual(t.expired(1_000), [], "server time has moved 600 ms only");
  t.beat("coordinator.c", 3, 10_999);
  assert.deepEqual(t.expired(1_000), []);
  assert.deepEqual(t.alive("speed", 1_000), ["a", "b"]);
  t.beat("coordinator.c", 4, 11_000);
  assert.deepEqual(t.expired(1_000), [{ member: "speed.b", revision: 7 }], "b missed its heartbeats by the server's clock");
  assert.deepEqual(t.alive("speed", 1_000), ["a"]);
  t.left("speed.b", 11_100); // b said goodbye
  t.beat("coordinator.c", 5, 11_600);
  assert.deepEqual(t.expired(1_000), [{ member: "speed.a", revision: 2 }]);
  assert.equal(t.serverNowMs, 11_600);
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
