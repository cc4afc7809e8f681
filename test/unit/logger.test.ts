import { test } from "node:test";
import assert from "node:assert/strict";
import { createLogger, errorFields, formatPrettyLine, LogFormats, type LogRecord } from "../../src/core/logger.js";

const T = Date.UTC(2026, 5, 8, 14, 23, 5, 120);

/** A logger writing into an array, at a fixed time. */
function capture(format: "json" | "pretty" = "json") {
  const lines: string[] = [];
  const log = createLogger({ level: "debug", base: { node: "n1" }, format, sink: { write: (l: string) => lines.push(l) }, now: () => T });
  return { log, lines };
}

class PartitionError extends Error {
  override readonly name = "PartitionError";
  constructor(
    readonly partition: number,
    options: { cause: unknown },
  ) {
    super(`partition ${partition} failed`, options);
  }
}

test("json: one object per line with time, level, message, base and child fields; errors with context and cause", () => {
  const { log, lines } = capture();
  const err = new PartitionError(3, { cause: new Error("disk full") });
  log.child({ component: "archiver" }).warn("insert failed; retrying", { attempt: 2, err });
  assert.equal(lines.length, 1);
  assert.ok(lines[0]!.endsWith("\n") && !lines[0]!.slice(0, -1).includes("\n"), "one line");
  const r = JSON.parse(lines[0]!) as LogRecord & { err: Record<string, unknown> & { cause: Record<string, unknown> } };
  assert.equal(r.t, "2026-06-08T14:23:05.120Z");
  assert.equal(r.level, "warn");
  assert.equal(r.msg, "insert failed; retrying");
  assert.equal(r.node, "n1");
  assert.equal(r.component, "archiver");
  assert.equal(r.attempt, 2);
  assert.equal(r.err.name, "PartitionError");
  assert.equal(r.err.message, "partition 3 failed");
  assert.equal(r.err.partition, 3);
  assert.match(String(r.err.stack), /^PartitionError: partition 3 failed\n/);
  assert.equal(r.err.cause.message, "disk full");
});

test("levels below the chosen one are dropped", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "warn", sink: { write: (l: string) => lines.push(l) } });
  log.debug("d");
  log.info("i");
  log.warn("w");
  log.error("e");
  assert.deepEqual(lines.map((l) => (JSON.parse(l) as LogRecord).msg), ["w", "e"]);
});

test("an error whose cause points back at it is cut off, not followed forever", () => {
  const a = new Error("a");
  const b = new Error("b", { cause: a });
  Object.defineProperty(a, "cause", { value: b, enumerable: false });
  let depth = 0;
  for (let f: unknown = errorFields(a); f && typeof f === "object" && "cause" in f; f = (f as { cause: unknown }).cause) depth++;
  assert.ok(depth <= 6, `depth ${depth}`);
});

test("pretty: one short line per event: time, level, component, message, the other fields as key=value", () => {
  const r: LogRecord = {
    t: "2026-06-08T14:23:05.120Z",
    level: "warn",
    msg: "insert failed; retrying",
    node: "local",
    component: "archiver",
    partition: 3,
    source: "page views",
    err: { name: "InsertError", message: "Cannot parse input", stack: "InsertError: Cannot parse input\n    at x" },
  };
  assert.equal(
    formatPrettyLine(r),
    '14:23:05.120 WARN  archiver    insert failed; retrying  node=local  partition=3  source="page views"  err="InsertError: Cannot parse input"',
  );
  assert.equal(formatPrettyLine({ t: r.t, level: "info", msg: "node started" }), "14:23:05.120 INFO  -           node started");
  assert.equal(formatPrettyLine({ t: r.t, level: "error", msg: "x" }, { color: true }), "14:23:05.120 \x1b[31mERROR\x1b[0m -           x");
  const long = formatPrettyLine({ t: r.t, level: "info", msg: "m", sql: "x".repeat(500) });
  assert.ok(long.length < 220, `${long.length} characters`);
  assert.match(long, /…$/);
});

test("a pretty logger writes the same events as pretty lines", () => {
  const { log, lines } = capture(LogFormats.pretty);
  log.child({ component: "serving" }).info("listening", { address: "0.0.0.0:50051" });
  assert.deepEqual(lines, ["14:23:05.120 INFO  serving     listening  node=n1  address=0.0.0.0:50051\n"]);
});
