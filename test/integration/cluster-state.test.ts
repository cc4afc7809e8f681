/**
 * The typed cluster-state layer (src/nats/kv.ts and the stores on it) against a real
 * nats-server: a malformed value is a typed error naming bucket, key and revision, a watch
 * skips it and goes on, and the end of a watch is reported (and logged) rather than silent.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { encode } from "../../src/nats/codec.js";
import { connectNats } from "../../src/nats/connect.js";
import { MalformedValueError } from "../../src/nats/kv.js";
import { readAssignment, watchAssignments, writeAssignment } from "../../src/nats/assignments_store.js";
import { readMembers, startHeartbeat } from "../../src/nats/members.js";
import { namesFor, partitionKey, WATERMARK_KEY } from "../../src/nats/names.js";
import { readRun } from "../../src/nats/run_history.js";
import { openBuckets } from "../../src/nats/setup.js";
import { followWatermark, publishWatermark, readWatermark } from "../../src/nats/watermark_store.js";
import type { Assignment } from "../../src/core/records.js";
import { keptLogger, type KeptLine } from "../harness/log.js";
import { startTestNats } from "../harness/nats.js";
import { waitFor } from "../harness/wait.js";

test("a malformed value is a MalformedValueError naming bucket, key and revision; watches skip it and go on", async () => {
  await using nats = { ...(await startTestNats()), [Symbol.asyncDispose]: async () => nats.close() };
  const nc = await connectNats(nats.url, "cluster-state-test");
  try {
    const names = namesFor(`cs${process.pid}`);
    const b = await openBuckets(nc, names);
    const lines: KeptLine[] = [];
    const log = keptLogger(lines);

    const seen: Assignment[] = [];
    const watch = await watchAssignments(b.assignments, log, (a) => seen.push(a));
    const rev = await b.assignments.put(partitionKey(3), encode({ partition: 3, node: 7, generation: 1 }));
    await assert.rejects(readAssignment(b.assignments, 3), (e: unknown) => {
      assert.ok(e instanceof MalformedValueError, String(e));
      assert.equal(e.bucket, names.assignmentsBucket);
      assert.equal(e.key, partitionKey(3));
      assert.equal(e.revision, rev);
      assert.match(e.message, /node must be a string, got 7/);
      return true;
    });
    await b.assignments.put(partitionKey(3), new Uint8Array([0xd9, 0x10])); // a 16-byte string header with no string: truncated msgpack
    await assert.rejects(readAssignment(b.assignments, 3), /not msgpack/);
    await writeAssignment(b.assignments, { partition: 3, node: "s-1", generation: 2 });
    await waitFor("the good assignment after two malformed ones", () => seen.some((a) => a.generation === 2));
    assert.deepEqual(seen, [{ partition: 3, node: "s-1", generation: 2 }], "only the well-formed value is delivered");
    assert.equal(lines.filter((l) => l.level === "error" && /malformed value while following assignments/.test(l.message)).length, 2, JSON.stringify(lines));

    // The watermark and a run record: the same boundary.
    await b.watermark.put(WATERMARK_KEY, encode({ run: "three" }));
    await assert.rejects(readWatermark(b.watermark), (e: unknown) => e instanceof MalformedValueError && e.key === WATERMARK_KEY);
    await b.watermark.put("run.1", encode({ run: 1, outcome: "exploded", cuts: [], coordinator: "c", startedAtMs: 0 }));
    await assert.rejects(readRun(b, 1), /outcome must be one of running, published, failed, rolled_back, abandoned, got "exploded"/);

    // A heartbeat from another build is left out of the member list, with a warning.
    const hb = await startHeartbeat(b.members, "speed", "s-1", 60_000, log);
    await b.members.put("speed.odd", encode({ role: "speed", id: "odd", atMs: "yesterday" }));
    assert.deepEqual((await readMembers(b.members, log)).map((m) => m.hb.id), ["s-1"]);
    assert.ok(lines.some((l) => l.level === "warn" && /malformed member heartbeat/.test(l.message) && l.fields.key === "speed.odd"));
    await hb.stop();

    watch.stop();
    assert.deepEqual(await watch.ended, { kind: "stopped" });
  } finally {
    await nc.close();
  }
});

test("a watch that ends without stop() says so: logged as an error and reported through ended", async () => {
  await using nats = { ...(await startTestNats()), [Symbol.asyncDispose]: async () => nats.close() };
  const nc = await connectNats(nats.url, "cluster-state-end-test");
  const b = await openBuckets(nc, namesFor(`ce${process.pid}`));
  const lines: KeptLine[] = [];
  const follower = await followWatermark(b.watermark, keptLogger(lines));
  assert.equal(follower.current(), null);
  await nc.close(); // the connection goes: the watch cannot go on
  const end = await follower.ended;
  assert.notEqual(end.kind, "stopped");
  assert.ok(lines.some((l) => l.level === "error" && /the watch of the watermark (ended|failed); no longer following the watermark/.test(l.message)), JSON.stringify(lines));
});

test("a watermark check still running when the follower stops decides nothing and logs nothing", async () => {
  await using nats = { ...(await startTestNats()), [Symbol.asyncDispose]: async () => nats.close() };
  const nc = await connectNats(nats.url, "cluster-state-stop-test");
  try {
    const b = await openBuckets(nc, namesFor(`cst${process.pid}`));
    const lines: KeptLine[] = [];
    // The check of run 1 waits until the follower stops, then fails as a closed ClickHouse would.
    let signal: AbortSignal | undefined;
    const follower = await followWatermark(b.watermark, keptLogger(lines), undefined, {
      check: (_w, stopped) => {
        signal = stopped;
        return new Promise((_, reject) => stopped.addEventListener("abort", () => reject(new Error("the client is closed")), { once: true }));
      },
    });
    await publishWatermark(b.watermark, { run: 1, cuts: [0], viewVersion: 1, coveredFromMs: null, coveredToMs: null, eventsCovered: 0, startedAtMs: 1, publishedAtMs: 2, coordinator: "c", timings: { barrierMs: 0, archiverFlushMs: 0, recomputeMs: 0 } });
    await waitFor("the check of run 1 to start", () => signal !== undefined);
    assert.equal(signal!.aborted, false);
    follower.stop();
    assert.equal(signal!.aborted, true, "stop() aborts the running check");
    assert.deepEqual(await follower.ended, { kind: "stopped" });
    // The rejection is handled after stop(): give it its turn, then look.
    await new Promise((r) => setImmediate(r));
    assert.equal(follower.current(), null, "a check cut short by stop() takes nothing");
    assert.deepEqual(lines.filter((l) => l.level === "error" || l.level === "warn"), [], "nothing reported for a check the stop cut short");
  } finally {
    await nc.close();
  }
});
