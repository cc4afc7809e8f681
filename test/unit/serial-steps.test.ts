/** One step at a time (src/core/serial_steps.ts): order, a failed step does not stop the rest, a long one is reported. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createLogger, type LogRecord } from "../../src/core/logger.js";
import { createSerialSteps } from "../../src/core/serial_steps.js";
import { waitFor } from "../../src/core/wait.js";

function recordingLogger() {
  const lines: LogRecord[] = [];
  const log = createLogger({ level: "debug", sink: { write: (s: string) => void lines.push(JSON.parse(s) as LogRecord) } });
  return { log, lines };
}

test("steps run one at a time in the order queued, and a failed step does not stop the ones behind it", async () => {
  const { log, lines } = recordingLogger();
  const steps = createSerialSteps({ log, owner: "test node", stuckAfterMs: 60_000 });
  const ran: string[] = [];
  let running = 0;
  const step = (name: string, fail = false) => async () => {
    running++;
    assert.equal(running, 1, `${name} runs alone`);
    await new Promise((r) => setImmediate(r));
    ran.push(name);
    running--;
    if (fail) throw new Error(`${name} broke`);
  };
  const first = steps.queue("first", step("first"));
  void steps.queue("second", step("second", true));
  const third = steps.queue("third", step("third"));
  await first;
  assert.deepEqual(ran, ["first"], "queue() resolves once its own step has run");
  await third; // never rejects, though the step before it threw
  await steps.drained();
  assert.deepEqual(ran, ["first", "second", "third"]);
  const failed = lines.filter((l) => l.level === "error");
  assert.equal(failed.length, 1);
  assert.match(failed[0]!.msg, /test node: "second" failed/);
  assert.match(JSON.stringify(failed[0]), /second broke/, "the error is in the line");
  assert.equal(steps.stuck(), null);
});

test("a step running past the bound is reported while it runs, and cleared once it ends", async () => {
  const { log, lines } = recordingLogger();
  const steps = createSerialSteps({ log, owner: "test node", stuckAfterMs: 50 });
  let release!: () => void;
  const hung = new Promise<void>((r) => (release = r));
  void steps.queue("stop the actor of partition 3", () => hung);
  let behindRan = false;
  void steps.queue("start the actor of partition 4", async () => void (behindRan = true));
  assert.equal(steps.stuck(), null, "not stuck before the bound");
  await waitFor("the step to start", () => steps.running() ?? false, { timeoutMs: 5_000 });
  assert.equal(steps.running()!.what, "stop the actor of partition 3");

  const stuck = await waitFor("the step to be reported stuck", () => steps.stuck() ?? false, { timeoutMs: 5_000 });
  assert.equal(stuck.what, "stop the actor of partition 3");
  assert.equal(stuck.waiting, 1);
  assert.ok(stuck.runningMs >= 50);
  await waitFor("the stuck line", () => lines.some((l) => l.level === "error" && /"stop the actor of partition 3" has run for 50 ms/.test(l.msg)), { timeoutMs: 5_000 });
  assert.equal(behindRan, false, "the step behind waits: a stuck step is never abandoned");

  release();
  await steps.drained();
  assert.equal(behindRan, true);
  assert.equal(steps.stuck(), null);
  assert.equal(steps.running(), null);
  assert.ok(lines.some((l) => l.level === "warn" && /"stop the actor of partition 3" finished after \d+ ms/.test(l.msg)));
});
