/**
 * Least privilege on a real nats-server started with the generated authorization block: the
 * roles, each as its own process under its own user, run the whole protocol (answers equal a
 * recount, and the server logs no permission violation), while each user's forbidden actions
 * are refused and a client without credentials cannot connect at all.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { credentials } from "@grpc/grpc-js";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { readCatalogFile } from "../../src/core/catalog.js";
import { createLogger } from "../../src/core/logger.js";
import { LambdaServiceClient } from "../../src/gen/lambda/v1/serving.js";
import { createIngest } from "../../src/ingest/index.js";
import { encode, encodeBarrier } from "../../src/nats/codec.js";
import { connectNats } from "../../src/nats/connect.js";
import { CATALOG_KEY, namesFor, WATERMARK_KEY } from "../../src/nats/names.js";
import { readWatermark } from "../../src/nats/watermark_store.js";
import { readAssignments } from "../../src/nats/assignments_store.js";
import { ensureStreams, NatsSetupMissingError, openBuckets } from "../../src/nats/setup.js";
import { agreeOnSettings, ClusterSettingsError } from "../../src/nats/cluster_settings.js";
import { inboxPrefixFor, natsAuthorizationConfig, type NatsPrincipal, type NatsUserSpec } from "../../src/nats/permissions.js";
import type { NatsUsersJson } from "../../src/cli/commands/nats_users.js";
import { lambdactl, parseJson } from "../harness/cli.js";
import { startNatsServer } from "../../src/nats/server_process.js";
import { spawnNode } from "../../src/main/spawn.js";
import { getWatermark, query } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";
import { runBatchOver } from "../harness/batch_run.js";

const CATALOG = fileURLToPath(new URL("../../../catalog/catalog.json", import.meta.url));
const PARTITIONS = 4;
const names = namesFor("lambda");

interface User {
  readonly name: string;
  readonly password: string;
  readonly principals: readonly NatsPrincipal[];
}
const user = (name: string, ...principals: NatsPrincipal[]): User => ({ name, password: randomBytes(12).toString("hex"), principals });

/** The settings a process of `u` connects with. */
const envOf = (url: string, u: User) => ({ LAMBDA_NATS_URL: url, LAMBDA_NATS_USER: u.name, LAMBDA_NATS_PASSWORD: u.password, LAMBDA_NATS_INBOX_PREFIX: inboxPrefixFor(u.name) });
const connectAs = (url: string, u: User) => connectNats(url, `test ${u.name}`, { user: u.name, password: u.password, inboxPrefix: inboxPrefixFor(u.name) });

/** Resolves with the error a denied action gives (nats.js reports a permission violation, or the request times out). */
async function refused(what: string, action: () => Promise<unknown>): Promise<Error> {
  try {
    await action();
  } catch (err) {
    return err as Error;
  }
  assert.fail(`${what} was allowed`);
}

test("every role runs under its own least-privilege user; forbidden actions and strangers are refused", { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "lambda-perms-"));
  // archiver, executor and serving share the embedded chDB engine: one process, the union of their permissions.
  const users = {
    coordinator: user("coordinator", "coordinator"),
    speed: user("speed", "speed"),
    data: user("data", "archiver", "executor", "serving"),
    ingest: user("ingest", "ingest"),
    reader: user("reader", "lambdactl"),
  };
  const specs: NatsUserSpec[] = Object.values(users).map((u) => ({ name: u.name, principals: u.principals, auth: { password: u.password } }));
  writeFileSync(join(dir, "nats.conf"), natsAuthorizationConfig(names, specs));
  let serverLog = "";
  const server = await startNatsServer({ path: process.env.PATH ?? "", args: ["-c", join(dir, "nats.conf")], onLog: (chunk) => (serverLog += chunk) });
  const url = server.url;
  const base = { LAMBDA_PARTITIONS: String(PARTITIONS), LAMBDA_CATALOG: CATALOG, LAMBDA_LOG_LEVEL: "debug", LAMBDA_HEARTBEAT_INTERVAL_MS: "200", LAMBDA_NODE_TIMEOUT_MS: "3000", LAMBDA_BATCH_INTERVAL_MS: "0" };
  const nodes = [] as ReturnType<typeof spawnNode>[];
  const conns: NatsConnection[] = [];
  try {
    // The coordinator first: only it may create the streams and buckets.
    // Every role's log output goes to one file, to look for secrets in it at the end (debug level: the most it says).
    const logFd = openSync(join(dir, "roles.log"), "a");
    nodes.push(spawnNode("coord", { ...base, ...envOf(url, users.coordinator), LAMBDA_ROLES: "coordinator" }, logFd));
    await nodes[0]!.ready;
    nodes.push(spawnNode("sp1", { ...base, ...envOf(url, users.speed), LAMBDA_ROLES: "speed" }, logFd));
    nodes.push(spawnNode("data", { ...base, ...envOf(url, users.data), LAMBDA_ROLES: "archiver,executor,serving", LAMBDA_CHDB_PATH: join(dir, "chdb"), LAMBDA_GRPC_HOST: "127.0.0.1", LAMBDA_GRPC_PORT: "0" }, logFd));
    const [, data] = await Promise.all([nodes[1]!.ready, nodes[2]!.ready]);
    const grpc = new LambdaServiceClient(data.grpc!, credentials.createInsecure());

    // Ingest under the ingest user, and a recount of what was accepted.
    const ingestNc = await connectAs(url, users.ingest);
    conns.push(ingestNc);
    const ingest = createIngest({ nc: ingestNc, catalog: readCatalogFile(CATALOG).catalog, names, partitions: PARTITIONS, log: createLogger({ level: "error" }) });
    const t = Date.UTC(2026, 5, 8, 14, 0, 0);
    const expected = new Map<string, number>();
    const events = Array.from({ length: 60 }, (_, i) => ({ id: `e${i}`, article_id: `a-${i % 3}`, user_id: `u${i}`, ts: t + i * 1000 }));
    for (const e of events) expected.set(e.article_id, (expected.get(e.article_id) ?? 0) + 1);
    const res = await ingest.publishBatch("pageviews", events);
    assert.equal(res.accepted, events.length);

    // A batch run through the admin API (serving asks the coordinator), then answers vs the recount.
    const admin = await connectAs(url, users.data);
    conns.push(admin);
    await waitFor("serving answers", async () => (await getWatermark(grpc).then(() => true, () => false)) || undefined, { timeoutMs: 30_000 });
    await runBatchOver(admin, names);
    for (const [key, n] of expected) {
      const a = await query(grpc, "article_views", key, t - 3600_000, t + 3600_000);
      assert.equal(a.total, n, `article_views ${key}`);
      assert.equal(a.batchPart, n, `article_views ${key} from the batch view`);
    }
    grpc.close();

    // What each user must not do.
    const ingestKv = await new Kvm(ingestNc).open(names.watermarkBucket);
    assert.match(String(await refused("the ingest user putting a watermark", () => ingestKv.put(WATERMARK_KEY, encode({ run: 1_000_000 })))), /permission/i);
    const speedNc = await connectAs(url, users.speed);
    conns.push(speedNc);
    await refused("the speed user publishing a barrier", () => jetstream(speedNc).publish(names.eventSubject(0), encodeBarrier(99, 99), { timeout: 3_000 }));
    const readerNc = await connectAs(url, users.reader);
    conns.push(readerNc);
    await refused("the read-only lambdactl user writing the catalog", async () => (await new Kvm(readerNc).open(names.catalogBucket)).put("current", encode({}), { timeout: 3_000 } as never));
    await refused("the read-only lambdactl user publishing an event", () => jetstream(readerNc).publish(names.eventSubject(0), encode({ k: "e" }), { timeout: 3_000 }));
    await refused("the ingest user creating a stream", async () => jetstreamManager(ingestNc, { timeout: 3_000 }).then((m) => m.streams.add({ name: "STRANGER", subjects: ["stranger.>"] })));
    await refused("the ingest user reading another user's replies", async () => {
      const sub = ingestNc.subscribe(`${inboxPrefixFor(users.data.name)}.>`);
      await sub.closed;
      throw new Error("subscription ended");
    });
    assert.match(String(await refused("a client without credentials", () => connect({ servers: url, reconnect: false }))), /Authorization Violation/i);
    assert.match(String(await refused("a client with a wrong password", () => connect({ servers: url, user: "ingest", pass: "wrong", reconnect: false }))), /Authorization Violation/i);

    // The watermark the ingest user tried to forge never reached an answer: still the real run.
    const w = await readWatermark(await new Kvm(readerNc).open(names.watermarkBucket));
    assert.equal(w?.watermark.run, 1);

    // The server refused what the test tried, and the roles did all of the above without a single violation.
    const violations = serverLog.split("\n").filter((l) => /Violation/.test(l));
    assert.ok(violations.some((l) => /Publish Violation - User "ingest", Subject "\$KV\.lambda_watermark\.current"/.test(l)), "the server logged the forged watermark's refusal");
    assert.ok(violations.some((l) => /Subscription Violation - User "ingest", Subject "_INBOX\.data\.>"/.test(l)), "the server refused the ingest user another user's inbox");
    const byRoles = violations.filter((l) => /nats\.js:lambda-node/.test(l));
    assert.deepEqual(byRoles, [], "the roles hit no permission violation");

    // No role wrote a password into its log, though each logged at debug level.
    const roleLog = readFileSync(join(dir, "roles.log"), "utf8");
    assert.ok(roleLog.length > 0, "the roles logged something");
    for (const u of Object.values(users)) assert.ok(!roleLog.includes(u.password), `${u.name}'s password is not in the roles' log`);
  } finally {
    for (const c of conns) await c.close().catch(() => undefined);
    for (const n of nodes) await n.stop();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("lambdactl nats-users: the seeds it writes and the server config it writes let each role in, with its permissions", { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "lambda-nats-users-"));
  try {
    const r = await lambdactl(["nats-users", "--out", "users", "--json"], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const out = parseJson<NatsUsersJson>(r);
    assert.deepEqual(out.users.map((u) => u.name).sort(), ["archiver", "coordinator", "executor", "ingest", "lambdactl", "lambdactl-readonly", "serving", "speed"]);
    assert.deepEqual(out.users.find((u) => u.name === "lambdactl")?.roles, ["lambdactl-admin"]);
    for (const u of out.users) assert.equal(statSync(u.seedFile).mode & 0o777, 0o600, `${u.seedFile} is private`);
    // The Helm values and the server config name the same keys.
    const helm = readFileSync(out.helmValues, "utf8");
    for (const u of out.users) assert.ok(helm.includes(u.nkey), `${u.name} in the Helm values`);
    // --format prints the server side for a pipe.
    const conf = await lambdactl(["nats-users", "--out", "users2", "--format", "conf"], { cwd: dir });
    assert.equal(conf.code, 0, conf.stderr);
    assert.equal(conf.stdout, readFileSync(join(dir, "users2", "nats-server.conf"), "utf8"));
    // A second run into the same directory keeps the first one's seeds.
    const again = await lambdactl(["nats-users", "--out", "users"], { cwd: dir });
    assert.equal(again.code, 2);
    assert.match(again.stderr, /exists; give a new directory/);

    const server = await startNatsServer({ path: process.env.PATH ?? "", args: ["-c", out.serverConfig] });
    try {
      const ingest = out.users.find((u) => u.name === "ingest")!;
      const nc = await connectNats(server.url, "nats-users test", { nkeySeedFile: ingest.seedFile, inboxPrefix: ingest.inboxPrefix });
      try {
        // In, and held to its allow-list: $JS.API.INFO yes, the watermark bucket no.
        await nc.request("$JS.API.INFO", undefined, { timeout: 5_000 });
        await assert.rejects(nc.request(`$KV.${names.watermarkBucket}.${WATERMARK_KEY}`, encode({ run: 1 }), { timeout: 5_000 }), /permission/i);
      } finally {
        await nc.close();
      }
    } finally {
      await server.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("archiver, executor and serving each alone under its own user (as on a ClickHouse server): the protocol runs without a violation", { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "lambda-perms-alone-"));
  const roles = ["coordinator", "speed", "archiver", "executor", "serving", "ingest"] as const;
  const users = Object.fromEntries(roles.map((r) => [r, user(r, r)])) as Record<(typeof roles)[number], User>;
  writeFileSync(join(dir, "nats.conf"), natsAuthorizationConfig(names, Object.values(users).map((u) => ({ name: u.name, principals: u.principals, auth: { password: u.password } }))));
  let serverLog = "";
  const server = await startNatsServer({ path: process.env.PATH ?? "", args: ["-c", join(dir, "nats.conf")], onLog: (chunk) => (serverLog += chunk) });
  const url = server.url;
  const base = { LAMBDA_PARTITIONS: String(PARTITIONS), LAMBDA_CATALOG: CATALOG, LAMBDA_LOG_LEVEL: "warn", LAMBDA_HEARTBEAT_INTERVAL_MS: "200", LAMBDA_NODE_TIMEOUT_MS: "3000", LAMBDA_BATCH_INTERVAL_MS: "0" };
  const node = (id: string, role: (typeof roles)[number], extra: Record<string, string> = {}) => spawnNode(id, { ...base, ...envOf(url, users[role]), LAMBDA_ROLES: role, ...extra }, "ignore");
  const nodes = [] as ReturnType<typeof spawnNode>[];
  const conns: NatsConnection[] = [];
  try {
    nodes.push(node("coord", "coordinator"));
    await nodes[0]!.ready;
    // Each ClickHouse role on its own chDB directory, as each would be its own pod on a server. Serving
    // reads a schema it never creates: an executor makes it in serving's directory first, then goes.
    const schemaMaker = node("schema", "executor", { LAMBDA_CHDB_PATH: join(dir, "chdb-serving") });
    await schemaMaker.ready;
    await schemaMaker.stop();
    nodes.push(node("sp", "speed"), node("arch", "archiver", { LAMBDA_CHDB_PATH: join(dir, "chdb-archiver") }), node("exec", "executor", { LAMBDA_CHDB_PATH: join(dir, "chdb-executor") }));
    nodes.push(node("serv", "serving", { LAMBDA_CHDB_PATH: join(dir, "chdb-serving"), LAMBDA_GRPC_HOST: "127.0.0.1", LAMBDA_GRPC_PORT: "0" }));
    const started = await Promise.all(nodes.map((n) => n.ready));
    const grpc = new LambdaServiceClient(started.at(-1)!.grpc!, credentials.createInsecure());

    const ingestNc = await connectAs(url, users.ingest);
    conns.push(ingestNc);
    const ingest = createIngest({ nc: ingestNc, catalog: readCatalogFile(CATALOG).catalog, names, partitions: PARTITIONS, log: createLogger({ level: "error" }) });
    const t = Date.UTC(2026, 5, 8, 14, 0, 0);
    assert.equal((await ingest.publishBatch("pageviews", Array.from({ length: 20 }, (_, i) => ({ id: `e${i}`, article_id: "a-1", user_id: `u${i}`, ts: t + i * 1000 })))).accepted, 20);

    // A batch run asked for as serving's user goes through: barriers, archiver progress, recompute, watermark.
    const servingNc = await connectAs(url, users.serving);
    conns.push(servingNc);
    assert.ok((await runBatchOver(servingNc, names)) >= 1);
    // Serving asked the speed actor: the answer came back (its batch views are in another directory here,
    // so it refuses the watermark; what counts is that every NATS step was allowed).
    await waitFor("serving to answer a query", () => getWatermark(grpc).then(() => true, () => false));
    grpc.close();

    const byRoles = serverLog.split("\n").filter((l) => /Violation/.test(l) && /nats\.js:lambda-node/.test(l));
    assert.deepEqual(byRoles, [], "no role hit a permission violation");
  } finally {
    for (const c of conns) await c.close().catch(() => undefined);
    for (const n of nodes) await n.stop();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("roles started before the coordinator wait for it to create the streams and buckets, and give up at LAMBDA_NATS_SETUP_WAIT_MS", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "lambda-perms-order-"));
  const users = { coordinator: user("coordinator", "coordinator"), speed: user("speed", "speed") };
  writeFileSync(join(dir, "nats.conf"), natsAuthorizationConfig(names, Object.values(users).map((u) => ({ name: u.name, principals: u.principals, auth: { password: u.password } }))));
  const server = await startNatsServer({ path: process.env.PATH ?? "", args: ["-c", join(dir, "nats.conf")] });
  const base = { LAMBDA_PARTITIONS: String(PARTITIONS), LAMBDA_CATALOG: CATALOG, LAMBDA_HEARTBEAT_INTERVAL_MS: "200", LAMBDA_BATCH_INTERVAL_MS: "0" };
  const nodes = [] as ReturnType<typeof spawnNode>[];
  const logOf = (name: string) => readFileSync(join(dir, `${name}.log`), "utf8");
  try {
    // No coordinator ever: the speed node waits its 1.5 s, then fails naming what is missing.
    const alone = spawnNode("alone", { ...base, ...envOf(server.url, users.speed), LAMBDA_ROLES: "speed", LAMBDA_NATS_SETUP_WAIT_MS: "1500" }, openSync(join(dir, "alone.log"), "a"));
    nodes.push(alone);
    assert.notEqual(await alone.exited, 0);
    assert.match(logOf("alone"), /waiting for a coordinator to create stream LAMBDA/);
    assert.match(logOf("alone"), /NatsSetupMissingError.*stream LAMBDA_EVENTS does not exist, this NATS user may not create it/);

    // The speed node first, then the coordinator: the speed node waits, and both come up.
    const speed = spawnNode("sp1", { ...base, ...envOf(server.url, users.speed), LAMBDA_ROLES: "speed" }, openSync(join(dir, "sp1.log"), "a"));
    nodes.push(speed);
    await waitFor("the speed node to say it waits for a coordinator", () => /waiting for a coordinator to create/.test(logOf("sp1")) || undefined, { timeoutMs: 30_000 });
    const coordinator = spawnNode("coord", { ...base, ...envOf(server.url, users.coordinator), LAMBDA_ROLES: "coordinator" }, openSync(join(dir, "coord.log"), "a"));
    nodes.push(coordinator);
    await Promise.all([speed.ready, coordinator.ready]);
    // It runs: the coordinator assigns it every partition.
    const nc = await connectAs(server.url, users.coordinator);
    try {
      const assignments = await new Kvm(nc).open(names.assignmentsBucket);
      await waitFor(
        "every partition assigned to the speed node",
        async () => [...(await readAssignments(assignments, PARTITIONS)).values()].filter((a) => a.node === "sp1").length === PARTITIONS || undefined,
        { timeoutMs: 30_000 },
      );
    } finally {
      await nc.close();
    }
  } finally {
    for (const n of nodes) await n.stop();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Runs `body` with a coordinator's and a speed node's connection to a fresh server under the generated permissions. */
async function withCoordinatorAndSpeedUsers(tag: string, body: (conns: { coordinator: NatsConnection; speed: NatsConnection }) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `lambda-perms-${tag}-`));
  const users = { coordinator: user("coordinator", "coordinator"), speed: user("speed", "speed") };
  writeFileSync(join(dir, "nats.conf"), natsAuthorizationConfig(names, Object.values(users).map((u) => ({ name: u.name, principals: u.principals, auth: { password: u.password } }))));
  const server = await startNatsServer({ path: process.env.PATH ?? "", args: ["-c", join(dir, "nats.conf")] });
  const conns: NatsConnection[] = [];
  try {
    const coordinator = await connectAs(server.url, users.coordinator);
    conns.push(coordinator);
    const speed = await connectAs(server.url, users.speed);
    conns.push(speed);
    await body({ coordinator, speed });
  } finally {
    for (const c of conns) await c.close().catch(() => undefined);
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a user that may not create KV buckets waits for the coordinator to create them, then binds to them", { timeout: 60_000 }, () =>
  withCoordinatorAndSpeedUsers("buckets", async ({ coordinator, speed }) => {
    // The streams exist; the buckets do not yet.
    await ensureStreams(coordinator, names, { duplicateWindowMs: 120_000 });
    const waiting: string[] = [];
    const log = createLogger({ level: "info", sink: { write: (line: string) => void waiting.push(line) } });
    const opened = openBuckets(speed, names, 1, log, { timeoutMs: 30_000, log, intervalMs: 50 });
    await waitFor("the speed user to wait for every bucket", () => waiting.filter((l) => /waiting for a coordinator to create KV bucket/.test(l)).length === 7 || undefined, { timeoutMs: 10_000 });
    await openBuckets(coordinator, names, 1);
    const buckets = await opened;
    // Bound to the coordinator's buckets: what the coordinator writes, the speed user reads.
    await (await new Kvm(coordinator).open(names.catalogBucket)).put(CATALOG_KEY, encode({ from: "coordinator" }));
    assert.deepEqual(Buffer.from((await buckets.catalog.get(CATALOG_KEY))?.value ?? []), Buffer.from(encode({ from: "coordinator" })), "the speed user reads the coordinator's bucket");
  }),
);

test("a role whose user may not record the cluster settings waits for the coordinator to record them, then checks them", { timeout: 60_000 }, () =>
  withCoordinatorAndSpeedUsers("settings", async ({ coordinator, speed }) => {
    // Streams and buckets exist (a coordinator got that far); the settings are not recorded yet.
    await ensureStreams(coordinator, names, { duplicateWindowMs: 120_000 });
    const coordBuckets = await openBuckets(coordinator, names, 1);
    const speedBuckets = await openBuckets(speed, names, 1);
    const lines: string[] = [];
    const log = createLogger({ level: "info", sink: { write: (line: string) => void lines.push(line) } });

    // No coordinator records them: the wait ends at its deadline, naming what is missing.
    await assert.rejects(agreeOnSettings(speedBuckets.coordinator, PARTITIONS, "sp0", { timeoutMs: 300, log, intervalMs: 50 }), (err: Error) => {
      assert.ok(err instanceof NatsSetupMissingError, `${err.name}: ${err.message}`);
      assert.match(err.message, /the cluster settings \(key settings of the coordinator bucket\) does not exist/);
      return true;
    });

    const agreed = agreeOnSettings(speedBuckets.coordinator, PARTITIONS, "sp1", { timeoutMs: 30_000, log, intervalMs: 50 });
    const mismatched = agreeOnSettings(speedBuckets.coordinator, PARTITIONS * 2, "sp2", { timeoutMs: 30_000, log, intervalMs: 50 });
    await waitFor("both speed users to wait for the settings", () => lines.filter((l) => /waiting for a coordinator to create the cluster settings/.test(l)).length >= 3 || undefined, { timeoutMs: 10_000 });
    await agreeOnSettings(coordBuckets.coordinator, PARTITIONS, "coord");
    // Once recorded: the one configured alike goes on with the coordinator's record, the other is told at once.
    const settings = await agreed;
    assert.equal(settings.partitions, PARTITIONS);
    assert.equal(settings.recordedBy, "coord");
    await assert.rejects(mismatched, ClusterSettingsError);
  }),
);
