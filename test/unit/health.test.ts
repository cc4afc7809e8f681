/** Readiness and liveness of a process (src/core/health.ts) and how /livez and /readyz say them (src/main/observe_http.ts). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { get } from "node:http";
import { createHealth } from "../../src/core/health.js";
import { silentLogger } from "../../src/core/logger.js";
import { createMetrics } from "../../src/core/metrics.js";
import { startObserveListener } from "../../src/main/observe_http.js";

function fetchPath(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: "127.0.0.1", port, path }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    }).on("error", reject);
  });
}

test("liveness checks: none failing is live; a failing or throwing one is named with why; removed ones are not run", () => {
  const health = createHealth();
  assert.deepEqual(health.liveness(), []);
  let stuck: string | null = null;
  health.addLivenessCheck("changes", () => stuck);
  const removeBroken = health.addLivenessCheck("broken", () => {
    throw new Error("cannot tell");
  });
  assert.deepEqual(health.liveness(), [{ name: "broken", ok: false, detail: "cannot tell" }]);
  removeBroken();
  assert.deepEqual(health.liveness(), []);
  stuck = '"stop the actor of partition 3" has run for 300 s';
  assert.deepEqual(health.liveness(), [{ name: "changes", ok: false, detail: stuck }]);
  assert.throws(() => health.addLivenessCheck("changes", () => null), /registered twice/);
});

test("/livez answers 200 while live and 503 naming the failing liveness check; readiness does not move it", async () => {
  const health = createHealth();
  let stuck: string | null = null;
  health.addLivenessCheck("speed node changes", () => stuck);
  health.addCheck("nats", () => "disconnected");
  const listener = await startObserveListener("127.0.0.1", 0, createMetrics(), health, silentLogger);
  try {
    assert.deepEqual(await fetchPath(listener.port, "/livez"), { status: 200, body: "ok\n" }, "not ready is still live");
    assert.equal((await fetchPath(listener.port, "/readyz")).status, 503);
    stuck = '"apply the assignment of partition 3 (b, generation 2)" has run for 301 s';
    assert.deepEqual(await fetchPath(listener.port, "/livez"), { status: 503, body: `FAIL speed node changes: ${stuck}\n` });
    stuck = null;
    assert.equal((await fetchPath(listener.port, "/livez")).status, 200);
  } finally {
    await listener.close();
  }
});
