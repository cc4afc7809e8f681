/** How lambdactl reports each kind of failure: code, exit status, context, and the JSON shape. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { RunRefusedError } from "../../src/cli/admin_grpc.js";
import { UsageError } from "../../src/cli/args.js";
import { ExitCodes } from "../../src/cli/command.js";
import { LocalClusterFileError, NotConfiguredError } from "../../src/cli/connection.js";
import { CommandFailedError, describeFailure, failureJson, FailureCodes } from "../../src/cli/failure.js";
import { GrpcCallError } from "../../src/cli/grpc.js";
import { EventStreamMissingError, NatsUnreachableError } from "../../src/cli/nats.js";
import { ConfigError } from "../../src/core/errors.js";

const target = { value: "127.0.0.1:50051", from: "--grpc" };

test("every failure kind has its code, its exit status and its context", () => {
  const cases: [unknown, string, number, Record<string, unknown>][] = [
    [new UsageError("query", "missing flag --from <time>"), FailureCodes.usage, ExitCodes.usage, { command: "query" }],
    [new UsageError(undefined, "missing command"), FailureCodes.usage, ExitCodes.usage, { command: null }],
    [new NotConfiguredError("serving node address", "--grpc", "LAMBDA_GRPC_ADDR"), FailureCodes.config, ExitCodes.usage, { flag: "--grpc", envVar: "LAMBDA_GRPC_ADDR" }],
    [new ConfigError("LAMBDA_PARTITIONS", "x", "an integer"), FailureCodes.config, ExitCodes.usage, { setting: "LAMBDA_PARTITIONS" }],
    [new LocalClusterFileError(".lambda/local-cluster.json", "not JSON"), FailureCodes.config, ExitCodes.usage, { file: ".lambda/local-cluster.json" }],
    [new RunRefusedError("watermark diff", new GrpcCallError(status.NOT_FOUND, "NOT_FOUND", "no run 99", target)), FailureCodes.runRefused, ExitCodes.usage, { grpcCode: "NOT_FOUND", command: "watermark diff" }],
    [new GrpcCallError(status.UNAVAILABLE, "UNAVAILABLE", "connection refused", target), "UNAVAILABLE", ExitCodes.failure, { unreachable: true, target: "127.0.0.1:50051", targetFrom: "--grpc" }],
    [new GrpcCallError(status.INVALID_ARGUMENT, "INVALID_ARGUMENT", "metric: unknown", target), "INVALID_ARGUMENT", ExitCodes.failure, { unreachable: false, details: "metric: unknown" }],
    [new NatsUnreachableError("nats://h:4222", "--nats-url", { cause: new Error("refused") }), FailureCodes.natsUnreachable, ExitCodes.failure, { url: "nats://h:4222", urlFrom: "--nats-url" }],
    [new EventStreamMissingError("X_EVENTS", "x", "--prefix", "nats://h:4222"), FailureCodes.noCluster, ExitCodes.failure, { url: "nats://h:4222" }],
    [new CommandFailedError(FailureCodes.runFailed, "run 3 failed: archiver timeout", { run: 3 }), FailureCodes.runFailed, ExitCodes.failure, { run: 3 }],
    [new TypeError("boom"), FailureCodes.failed, ExitCodes.failure, { name: "TypeError" }],
    ["a string thrown", FailureCodes.failed, ExitCodes.failure, {}],
  ];
  for (const [err, code, exit, fields] of cases) {
    const f = describeFailure(err);
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    assert.equal(f.code, code, what);
    assert.equal(f.exitCode, exit, what);
    for (const [k, v] of Object.entries(fields)) assert.deepEqual(f.fields[k], v, `${what}: ${k}`);
    const json = failureJson(f);
    assert.deepEqual(Object.keys(json), ["error"]);
    assert.equal(json.error.code, code);
    assert.equal(typeof json.error.message, "string");
    assert.ok(json.error.message.length > 0, what);
  }
});

test("the text line names the command of a usage error or a refused run, and only a usage error prints the usage", () => {
  const usage = describeFailure(new UsageError("top", "-k: expected a positive integer"));
  assert.equal(usage.command, "top");
  assert.equal(usage.showUsage, true);
  const refused = describeFailure(new RunRefusedError("watermark rollback", new GrpcCallError(status.FAILED_PRECONDITION, "FAILED_PRECONDITION", "gone", target)));
  assert.equal(refused.command, "watermark rollback");
  assert.equal(refused.message, "FAILED_PRECONDITION: gone");
  assert.ok(!refused.showUsage);
  const unreachable = describeFailure(new GrpcCallError(status.UNAVAILABLE, "UNAVAILABLE", "refused", { value: "h:1", from: ".lambda/local-cluster.json" }));
  assert.match(unreachable.message, /^UNAVAILABLE: refused \(serving node h:1, from \.lambda\/local-cluster\.json; is `npm start` still running\?\)$/);
});
