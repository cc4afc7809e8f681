/**
 * The batch executor's request-reply on a real nats-server: a long recompute keeps the
 * coordinator waiting (the executor says it is alive every second), and an executor that
 * dies mid-run is noticed after the silence timeout instead of blocking runs for minutes (the
 * fault matrix's F2 found a run waiting 5 min for a SIGKILLed executor).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { UnavailableError } from "../../src/core/errors.js";
import { silentLogger } from "../../src/core/logger.js";
import { connectNats } from "../../src/nats/connect.js";
import { askExecutor, EXECUTOR_KEEPALIVE_MS, serveExecutorRequests } from "../../src/nats/executor_control.js";
import { namesFor } from "../../src/nats/names.js";
import { startTestNats } from "../harness/nats.js";

const REQUEST = { kind: "drop_views", keepFrom: 1, epoch: 1 } as const;

test("a slow executor keeps the run waiting; a dead one is given up after the silence timeout", async () => {
  const nats = await startTestNats();
  const executorConn = await connectNats(nats.url, "executor");
  const coordinatorConn = await connectNats(nats.url, "coordinator");
  const names = namesFor(`ek${process.pid}`);
  try {
    // Slow: answers after three keepalive periods, longer than the coordinator's silence timeout below.
    const slow = serveExecutorRequests(executorConn, names, silentLogger, async () => {
      await new Promise((r) => setTimeout(r, 3 * EXECUTOR_KEEPALIVE_MS));
      return { eventsCovered: 7, coveredFromMs: null, coveredToMs: null };
    });
    // The subscription reaches the server before the request (else: no responders).
    await executorConn.flush();
    const silenceMs = 2 * EXECUTOR_KEEPALIVE_MS;
    const done = await askExecutor(coordinatorConn, names, REQUEST, { ackTimeoutMs: silenceMs, idleTimeoutMs: silenceMs });
    assert.equal(done.eventsCovered, 7, "kept alive past the silence timeout");
    slow.unsubscribe();

    // Dead mid-run: its connection closes while the request runs; the coordinator stops waiting after the silence.
    const dyingConn = await connectNats(nats.url, "dying executor");
    serveExecutorRequests(dyingConn, names, silentLogger, async () => {
      // Gone after its first keepalive: the coordinator heard from it, then nothing.
      setTimeout(() => void dyingConn.close(), 1.5 * EXECUTOR_KEEPALIVE_MS);
      // Never finishes while its connection lives (the process is gone); settles after, so the test ends.
      await dyingConn.closed();
      return { refused: "gone" };
    });
    await dyingConn.flush();
    const t0 = Date.now();
    await assert.rejects(askExecutor(coordinatorConn, names, REQUEST, { ackTimeoutMs: silenceMs, idleTimeoutMs: silenceMs }), (e: unknown) => e instanceof UnavailableError && /said nothing for/.test(e.message));
    assert.ok(Date.now() - t0 < 10 * silenceMs, `gave up after ${Date.now() - t0} ms`);
  } finally {
    await executorConn.close();
    await coordinatorConn.close();
    await nats.close();
  }
});
