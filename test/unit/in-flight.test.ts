/** The in-flight window (src/core/in_flight.ts): slots, waiting when full, draining. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { inFlightWindow } from "../../src/core/in_flight.js";

test("a window hands out its slots at once, then makes the producer wait for a release", async () => {
  const w = inFlightWindow(3);
  for (let i = 0; i < 3; i++) assert.equal(w.take(), undefined, `slot ${i} is free`);
  assert.equal(w.size, 3);
  let fourth = false;
  const waiting = w.take()!.then(() => (fourth = true));
  assert.ok(waiting instanceof Promise);
  await Promise.resolve();
  assert.equal(fourth, false, "no slot until one is released");
  w.release();
  await waiting;
  assert.equal(fourth, true);
  assert.equal(w.size, 3, "the released slot went to the waiter");

  let drained = false;
  const done = w.drained().then(() => (drained = true));
  w.release();
  w.release();
  await Promise.resolve();
  assert.equal(drained, false, "one operation is still in flight");
  w.release();
  await done;
  assert.equal(w.size, 0);
  await w.drained(); // resolves at once when empty
});
