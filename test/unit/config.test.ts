/**
 * Configuration (src/core/config.ts): defaults, then LAMBDA_* variables from a
 * plain object, then overrides; unknown variables and bad values are refused
 * with the key, the value and what was allowed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ARCHIVER_FLUSH_INTERVAL_MS,
  BATCH_INTERVAL_MS,
  DEDUPE_HORIZON_IDS,
  DEFAULT_DATABASE,
  DEFAULT_PARTITIONS,
  DEFAULT_PREFIX,
  defaultConfig,
  envVarFor,
  GRPC_PORT,
  HEARTBEAT_INTERVAL_MS,
  NODE_TIMEOUT_MS,
  resolveConfig,
  SNAPSHOT_INTERVAL_MS,
  type ResolvedConfig,
} from "../../src/core/config.js";
import { ConfigError } from "../../src/core/errors.js";
import type { LogFields, Logger } from "../../src/core/logger.js";

function refusal(env: Record<string, string | undefined>): ConfigError {
  try {
    resolveConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.name, "ConfigError");
    return err;
  }
  assert.fail(`expected ${JSON.stringify(env)} to be refused`);
}

/** A logger that keeps what it is told. */
function recordingLogger() {
  const lines: { level: string; message: string; fields: LogFields }[] = [];
  const make = (base: LogFields): Logger => ({
    debug: (message, fields = {}) => lines.push({ level: "debug", message, fields: { ...base, ...fields } }),
    info: (message, fields = {}) => lines.push({ level: "info", message, fields: { ...base, ...fields } }),
    warn: (message, fields = {}) => lines.push({ level: "warn", message, fields: { ...base, ...fields } }),
    error: (message, fields = {}) => lines.push({ level: "error", message, fields: { ...base, ...fields } }),
    child: (fields) => make({ ...base, ...fields }),
  });
  return { log: make({}), lines };
}

test("an empty environment gives the documented defaults", () => {
  const cfg = resolveConfig({});
  assert.deepEqual({ ...cfg, nodeId: "(any)" }, { ...defaultConfig(), nodeId: "(any)" });
  assert.deepEqual(cfg.roles, ["archiver", "coordinator", "executor", "serving"]);
  assert.equal(cfg.partitions, DEFAULT_PARTITIONS);
  assert.equal(cfg.prefix, DEFAULT_PREFIX);
  assert.equal(cfg.database, DEFAULT_DATABASE);
  assert.equal(cfg.grpcPort, GRPC_PORT);
  assert.equal(cfg.batchIntervalMs, BATCH_INTERVAL_MS);
  assert.equal(cfg.heartbeatIntervalMs, HEARTBEAT_INTERVAL_MS);
  assert.equal(cfg.nodeTimeoutMs, NODE_TIMEOUT_MS);
  assert.equal(cfg.dedupeHorizonIds, DEDUPE_HORIZON_IDS);
  assert.equal(cfg.snapshotIntervalMs, SNAPSHOT_INTERVAL_MS);
  assert.equal(cfg.archiverFlushIntervalMs, ARCHIVER_FLUSH_INTERVAL_MS);
  assert.equal(cfg.natsUrl, "", "no URL: start a local nats-server");
  assert.equal(cfg.clickhouseUrl, "", "no URL: embedded chDB");
  assert.equal(cfg.logLevel, "info");
  assert.match(cfg.nodeId, /^node-\d+$/);
  // No field is left undefined after resolution.
  for (const [k, v] of Object.entries(cfg)) assert.notEqual(v, undefined, k);
});

test("LAMBDA_* variables are parsed into their fields", () => {
  const cfg = resolveConfig({
    LAMBDA_ROLES: "speed",
    LAMBDA_NATS_URL: "nats://10.0.0.1:4222",
    LAMBDA_NATS_STORE_DIR: "/data/nats",
    LAMBDA_CLICKHOUSE_URL: "http://ch:8123",
    LAMBDA_CLICKHOUSE_USER: "writer",
    LAMBDA_CLICKHOUSE_PASSWORD: "s3cret",
    LAMBDA_CLICKHOUSE_CA_FILE: "/tls/ca.pem",
    LAMBDA_CLICKHOUSE_CERT_FILE: "/tls/client.pem",
    LAMBDA_CLICKHOUSE_KEY_FILE: "/tls/client.key",
    LAMBDA_CLICKHOUSE_SCHEMA_WAIT_MS: "5000",
    LAMBDA_CHDB_PATH: "/data/chdb",
    LAMBDA_DATABASE: "prod_db",
    LAMBDA_PREFIX: "prod-1",
    LAMBDA_PARTITIONS: "16",
    LAMBDA_CATALOG: "/etc/lambda/catalog.json",
    LAMBDA_GRPC_HOST: "127.0.0.1",
    LAMBDA_GRPC_PORT: "0",
    LAMBDA_BATCH_INTERVAL_MS: "0",
    LAMBDA_HEARTBEAT_INTERVAL_MS: "250",
    LAMBDA_NODE_TIMEOUT_MS: "3000",
    LAMBDA_DEDUPE_HORIZON_IDS: "0",
    LAMBDA_SNAPSHOT_INTERVAL_MS: "500",
    LAMBDA_ARCHIVER_FLUSH_INTERVAL_MS: "100",
    LAMBDA_ARCHIVER_FLUSH_ROWS: "5000",
    LAMBDA_VIEW_VERSIONS_KEPT: "2",
    LAMBDA_BATCH_CACHE_STATES: "0",
    LAMBDA_DUPLICATE_WINDOW_MS: "60000",
    LAMBDA_NODE_ID: "speed-7",
    LAMBDA_LOG_LEVEL: "debug",
  });
  const expected: Partial<ResolvedConfig> = {
    roles: ["speed"],
    natsUrl: "nats://10.0.0.1:4222",
    natsStoreDir: "/data/nats",
    clickhouseUrl: "http://ch:8123",
    clickhouseUser: "writer",
    clickhousePassword: "s3cret",
    clickhouseCaFile: "/tls/ca.pem",
    clickhouseCertFile: "/tls/client.pem",
    clickhouseKeyFile: "/tls/client.key",
    clickhouseSchemaWaitMs: 5000,
    chdbPath: "/data/chdb",
    database: "prod_db",
    prefix: "prod-1",
    partitions: 16,
    catalogPath: "/etc/lambda/catalog.json",
    grpcHost: "127.0.0.1",
    grpcPort: 0,
    batchIntervalMs: 0,
    heartbeatIntervalMs: 250,
    nodeTimeoutMs: 3000,
    dedupeHorizonIds: 0,
    snapshotIntervalMs: 500,
    archiverFlushIntervalMs: 100,
    archiverFlushRows: 5000,
    viewVersionsKept: 2,
    batchCacheStates: 0,
    duplicateWindowMs: 60000,
    nodeId: "speed-7",
    logLevel: "debug",
  };
  assert.deepEqual(Object.fromEntries(Object.keys(expected).map((k) => [k, cfg[k as keyof ResolvedConfig]])), expected);
  // Every field can be set by a variable (Kubernetes manifests set them that way).
  for (const field of Object.keys(defaultConfig()) as (keyof ResolvedConfig)[]) assert.ok(envVarFor(field), `no variable sets ${field}`);
});

test("variables outside LAMBDA_ and undefined values are ignored", () => {
  const cfg = resolveConfig({ PATH: "/bin", HOME: "/root", LAMBDAX: "1", lambda_partitions: "3", LAMBDA_PARTITIONS: undefined });
  assert.equal(cfg.partitions, DEFAULT_PARTITIONS);
});

test("an unknown LAMBDA_ variable is refused naming it and the known ones, not its value", () => {
  const err = refusal({ LAMBDA_PARTITION: "4" });
  assert.equal(err.key, "LAMBDA_PARTITION");
  assert.match(err.message, /^config LAMBDA_PARTITION: expected a known variable \(.*LAMBDA_PARTITIONS.*\), got "\(value not shown\)"$/);
  // A mistyped secret's variable: the error (which the process logs) never carries the secret.
  const typo = refusal({ LAMBDA_CLICKHOUSE_PASWORD: "hunter2-secret" });
  assert.ok(!JSON.stringify({ ...typo, message: typo.message }).includes("hunter2-secret"), typo.message);
});

test("the ClickHouse password comes from the variable or from a file, never both, and the error does not show it", () => {
  const cfg = resolveConfig({ LAMBDA_CLICKHOUSE_PASSWORD_FILE: "/run/secrets/ch-password" });
  assert.deepEqual([cfg.clickhousePassword, cfg.clickhousePasswordFile], ["", "/run/secrets/ch-password"]);
  const err = refusal({ LAMBDA_CLICKHOUSE_PASSWORD: "hunter2-secret", LAMBDA_CLICKHOUSE_PASSWORD_FILE: "/run/secrets/ch-password" });
  assert.equal(err.key, "LAMBDA_CLICKHOUSE_PASSWORD_FILE");
  assert.match(err.message, /\/run\/secrets\/ch-password/);
  assert.match(err.message, /unset LAMBDA_CLICKHOUSE_PASSWORD or this/);
  assert.ok(!JSON.stringify({ ...err, message: err.message }).includes("hunter2-secret"), err.message);
});

test("a bad integer is refused naming the key, the value and the allowed range", () => {
  const cases: [string, string, string][] = [
    ["LAMBDA_PARTITIONS", "0", "1..1024"],
    ["LAMBDA_PARTITIONS", "1025", "1..1024"],
    ["LAMBDA_PARTITIONS", "eight", "1..1024"],
    ["LAMBDA_PARTITIONS", "", "1..1024"],
    ["LAMBDA_PARTITIONS", "  ", "1..1024"],
    ["LAMBDA_PARTITIONS", "2.5", "1..1024"],
    ["LAMBDA_GRPC_PORT", "65536", "0..65535"],
    ["LAMBDA_GRPC_PORT", "-1", "0..65535"],
    ["LAMBDA_HEARTBEAT_INTERVAL_MS", "49", `50..${Number.MAX_SAFE_INTEGER}`],
    ["LAMBDA_NODE_TIMEOUT_MS", "99", `100..${Number.MAX_SAFE_INTEGER}`],
    ["LAMBDA_DEDUPE_HORIZON_IDS", "-5", `0..${Number.MAX_SAFE_INTEGER}`],
    ["LAMBDA_BATCH_INTERVAL_MS", "9007199254740993", `0..${Number.MAX_SAFE_INTEGER}`],
  ];
  for (const [key, raw, range] of cases) {
    const err = refusal({ [key]: raw });
    assert.equal(err.key, key);
    assert.equal(err.value, raw);
    assert.equal(err.expected, `an integer in ${range}`);
    assert.equal(err.message, `config ${key}: expected an integer in ${range}, got ${JSON.stringify(raw)}`);
  }
  // The bounds themselves are allowed.
  assert.equal(resolveConfig({ LAMBDA_PARTITIONS: "1" }).partitions, 1);
  assert.equal(resolveConfig({ LAMBDA_PARTITIONS: "1024" }).partitions, 1024);
  assert.equal(resolveConfig({ LAMBDA_GRPC_PORT: "65535" }).grpcPort, 65535);
});

test("names and log levels are checked", () => {
  let err = refusal({ LAMBDA_PREFIX: "a.b" });
  assert.equal(err.key, "LAMBDA_PREFIX");
  assert.match(err.message, /letters, digits, '_' or '-'/);
  err = refusal({ LAMBDA_DATABASE: "db; DROP" });
  assert.equal(err.key, "LAMBDA_DATABASE");
  err = refusal({ LAMBDA_NODE_ID: "" });
  assert.equal(err.key, "LAMBDA_NODE_ID");
  err = refusal({ LAMBDA_LOG_LEVEL: "verbose" });
  assert.equal(err.key, "LAMBDA_LOG_LEVEL");
  assert.match(err.message, /one of debug, info, warn, error, silent, got "verbose"/);
});

test("LAMBDA_ROLES is a comma-separated list of known roles, trimmed and deduplicated", () => {
  assert.deepEqual(resolveConfig({ LAMBDA_ROLES: "speed" }).roles, ["speed"]);
  assert.deepEqual(resolveConfig({ LAMBDA_ROLES: " serving , archiver,coordinator " }).roles, ["serving", "archiver", "coordinator"]);
  assert.deepEqual(resolveConfig({ LAMBDA_ROLES: "speed,speed,,serving," }).roles, ["speed", "serving"]);
  for (const raw of ["ingest", "speed,batch", "Speed"]) {
    const err = refusal({ LAMBDA_ROLES: raw });
    assert.equal(err.key, "LAMBDA_ROLES");
    assert.equal(err.value, raw);
    assert.match(err.message, /a comma-separated list of archiver, coordinator, executor, serving, speed/);
  }
  for (const raw of ["", " , ,"]) {
    const err = refusal({ LAMBDA_ROLES: raw });
    assert.equal(err.key, "LAMBDA_ROLES");
    assert.match(err.message, /at least one role/);
  }
});

test("names inherited from Object.prototype are neither roles nor log levels", () => {
  // `r in Roles` / `raw in LogLevels` also find inherited members such as "toString".
  for (const raw of ["toString", "speed,constructor"]) assert.equal(refusal({ LAMBDA_ROLES: raw }).key, "LAMBDA_ROLES");
  assert.equal(refusal({ LAMBDA_LOG_LEVEL: "hasOwnProperty" }).key, "LAMBDA_LOG_LEVEL");
});

test("overrides win over the environment, which wins over the defaults, and a replaced variable is logged", () => {
  const { log, lines } = recordingLogger();
  const cfg = resolveConfig({ LAMBDA_PARTITIONS: "16", LAMBDA_PREFIX: "env" }, { partitions: 4, grpcPort: 0, natsUrl: undefined }, log);
  assert.equal(cfg.partitions, 4, "override over env");
  assert.equal(cfg.prefix, "env", "env over default");
  assert.equal(cfg.grpcPort, 0, "override over default");
  assert.equal(cfg.natsUrl, "", "an undefined override changes nothing");
  const warnings = lines.filter((l) => l.level === "warn");
  assert.equal(warnings.length, 1, JSON.stringify(lines));
  assert.equal(warnings[0]!.fields.field, "partitions");
  assert.match(warnings[0]!.message, /unset the variable/);
});

test("an override of an unknown field is refused", () => {
  assert.throws(
    () => resolveConfig({}, { partitionz: 3 } as never),
    (err: unknown) => err instanceof ConfigError && err.key === "partitionz" && /a known config field/.test(err.message),
  );
});

test("the environment object is only read, never written", () => {
  const env = Object.freeze({ LAMBDA_PARTITIONS: "2" });
  assert.equal(resolveConfig(env).partitions, 2);
});

test("variables Kubernetes injects for a Service named lambda-… are ignored, not refused", async () => {
  const { resolveConfig } = await import("../../src/core/config.js");
  const cfg = resolveConfig({
    LAMBDA_SERVING_SERVICE_HOST: "10.0.0.1",
    LAMBDA_SERVING_SERVICE_PORT: "50051",
    LAMBDA_SERVING_SERVICE_PORT_GRPC: "50051",
    LAMBDA_SERVING_PORT: "tcp://10.0.0.1:50051",
    LAMBDA_SERVING_PORT_50051_TCP: "tcp://10.0.0.1:50051",
    LAMBDA_SERVING_PORT_50051_TCP_ADDR: "10.0.0.1",
    LAMBDA_GRPC_PORT: "6000",
  });
  assert.equal(cfg.grpcPort, 6000);
  assert.throws(() => resolveConfig({ LAMBDA_SERVING_HOST: "x" }), /LAMBDA_SERVING_HOST/);
});
