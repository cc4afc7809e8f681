/**
 * The gRPC surface against a real cluster: bad queries get INVALID_ARGUMENT
 * naming the field and leave the server answering; the standard health service
 * works, so stock probes (grpc-health-probe) do. Reflection: grpc-reflection.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client, credentials, makeGenericClientConstructor, status, type ServiceError } from "@grpc/grpc-js";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { service as healthService } from "grpc-health-check";
import type { QueryRequest, QueryResponse } from "../../src/gen/lambda/v1/serving.js";
import { startTestCluster, type TestCluster } from "../harness/cluster.js";
import { completeQuery, completeTopK, query, queryRaw, topK } from "../harness/grpc.js";
import { keptLogger, type KeptLine } from "../harness/log.js";
import { statusDetails } from "../harness/rpc_status.js";
import { waitFor } from "../harness/wait.js";
import { viewTable } from "../../src/ch/schema.js";
import { MAX_KEY_BYTES, MAX_QUERY_KEYS } from "../../src/serving/query.js";
import { MAX_TIMESTAMP_SECONDS, MIN_TIMESTAMP_SECONDS } from "../../src/serving/request_guard.js";

const T = Date.UTC(2026, 5, 8, 14, 23, 0);
const YEAR_MS = 365 * 86_400_000;

function rawQuery(cluster: TestCluster, req: Partial<QueryRequest>): Promise<QueryResponse> {
  return queryRaw(cluster.grpc, req);
}

async function assertInvalid(cluster: TestCluster, req: Partial<QueryRequest>, field: string, reason: RegExp) {
  await assert.rejects(rawQuery(cluster, req), (err: unknown) => {
    const e = err as ServiceError;
    assert.equal(e.code, status.INVALID_ARGUMENT, `code for ${JSON.stringify(req)}: ${e.code} ${e.details}`);
    assert.ok(e.details.startsWith(`${field}: `), `details name the field ${field}: ${e.details}`);
    assert.match(e.details, reason);
    return true;
  });
}

function unary<Req, Res>(client: Client, method: string, req: Req): Promise<Res> {
  const fn = (client as unknown as Record<string, (r: Req, cb: (err: ServiceError | null, res: Res) => void) => void>)[method]!;
  return new Promise((resolve, reject) => fn.call(client, req, (err, res) => (err ? reject(err) : resolve(res))));
}

test("bad queries get INVALID_ARGUMENT naming the field; health answers; the server keeps serving", async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 1 });
  await cluster.ingest.publishBatch("pageviews", [{ id: "a", article_id: "x", user_id: "u", ts: T }]);
  await cluster.waitForSpeedCaughtUp();
  const valid: Partial<QueryRequest> = { metric: "article_views", key: "x", from: new Date(T - 60_000), to: new Date(T + 60_000) };

  await assertInvalid(cluster, { ...valid, metric: "page_views" }, "metric", /unknown metric "page_views"; defined: article_views/);
  await assertInvalid(cluster, { ...valid, metric: "" }, "metric", /is required/);
  await assertInvalid(cluster, { ...valid, key: "" }, "key", /is required/);
  await assertInvalid(cluster, { ...valid, from: undefined }, "from", /is required/);
  await assertInvalid(cluster, { ...valid, to: undefined }, "to", /is required/);
  await assertInvalid(cluster, { ...valid, to: valid.from }, "to", /must be after from/);
  await assertInvalid(cluster, { ...valid, from: new Date(T), to: new Date(T - 1) }, "to", /must be after from/);
  await assertInvalid(cluster, { ...valid, from: new Date(T - 20 * YEAR_MS), to: new Date(T) }, "to", /range spans more than \d+ days/);
  await assertInvalid(cluster, { ...valid, aggregate: "nope" }, "aggregate", /has no aggregate "nope"; it has: views/);
  await assertInvalid(cluster, { ...valid, quantile: 0.9 }, "quantile", /applies to quantiles aggregates/);
  await assertInvalid(cluster, { ...valid, metric: "article_engagement", aggregate: "load_ms", quantile: 1.5 }, "quantile", /must be in \[0, 1\]/);
  await assertInvalid(cluster, { ...valid, keys: Array.from({ length: 1001 }, (_, i) => `k${i}`) }, "keys", /at most 1000/);
  await assertInvalid(cluster, { ...valid, key: "", group: { nope: "x" } }, "group", /not grouped by "nope"/);
  await assertInvalid(cluster, { metric: "order_flow", key: "EUR", from: valid.from, to: valid.to }, "key", /grouped by 2 fields; address keys with group/);
  await assertInvalid(cluster, { metric: "order_flow", group: { currency: "EUR" }, from: valid.from, to: valid.to }, "group", /missing: status/);
  await assert.rejects(topK(cluster.grpc, { metric: "article_views", k: 0, from: valid.from, to: valid.to }), (err: ServiceError) => err.code === status.INVALID_ARGUMENT && err.details.startsWith("k: "));
  await assert.rejects(topK(cluster.grpc, { metric: "article_views", k: 3, where: { nope: "x" }, from: valid.from, to: valid.to }), (err: ServiceError) => err.code === status.INVALID_ARGUMENT && err.details.startsWith("where: "));

  // Still serving, and right.
  const r = await query(cluster.grpc, "article_views", "x", T - 60_000, T + 60_000);
  assert.equal(r.total, 1);
  assert.equal(r.response.metric, "article_views");
  assert.equal(r.response.answers[0]!.key, "x");

  // Standard health service.
  const Health = makeGenericClientConstructor(healthService, "grpc.health.v1.Health");
  const health = new Health(cluster.roles.serving!.address, credentials.createInsecure());
  try {
    assert.deepEqual(await unary(health, "check", { service: "" }), { status: "SERVING" });
    assert.deepEqual(await unary(health, "check", { service: "lambda.v1.LambdaService" }), { status: "SERVING" });
    await assert.rejects(unary(health, "check", { service: "no.such.Service" }), (err: unknown) => (err as ServiceError).code === status.NOT_FOUND);
  } finally {
    health.close();
  }
});

type Ts = readonly [seconds: bigint, nanos: number];
const at = (ms: number): Ts => [BigInt(Math.floor(ms / 1000)), (ms % 1000) * 1_000_000];
const tsBytes = ([seconds, nanos]: Ts) => new BinaryWriter().tag(1, WireType.Varint).int64(seconds).tag(2, WireType.Varint).int32(nanos).finish();

/** A QueryRequest (or, with topK, a TopKRequest) written field by field, so timestamps can be what no Date can be. */
function requestBytes(kind: "query" | "topK", from: Ts, to: Ts): Buffer {
  const w = new BinaryWriter().tag(1, WireType.LengthDelimited).string("article_views");
  if (kind === "query") w.tag(2, WireType.LengthDelimited).string("x").tag(3, WireType.LengthDelimited).bytes(tsBytes(from)).tag(4, WireType.LengthDelimited).bytes(tsBytes(to));
  else w.tag(2, WireType.LengthDelimited).bytes(tsBytes(from)).tag(3, WireType.LengthDelimited).bytes(tsBytes(to)).tag(4, WireType.Varint).uint32(5);
  return Buffer.from(w.finish());
}

const QUERY = "/lambda.v1.LambdaService/Query";
const TOP_K = "/lambda.v1.LambdaService/TopK";

/** Calls `path` with `body` as the request bytes. */
function rawCall(address: string, path: string, body: Uint8Array): Promise<Buffer> {
  const client = new Client(address, credentials.createInsecure());
  const same = (b: Buffer) => b;
  return new Promise<Buffer>((resolve, reject) => client.makeUnaryRequest(path, same, same, Buffer.from(body), (err, res) => (err ? reject(err) : resolve(res!)))).finally(() => client.close());
}

/** Calls server-streaming `path` with `body` as the request bytes; resolves with the messages at the end. */
function rawStream(address: string, path: string, body: Uint8Array): Promise<Buffer[]> {
  const client = new Client(address, credentials.createInsecure());
  const same = (b: Buffer) => b;
  return new Promise<Buffer[]>((resolve, reject) => {
    const got: Buffer[] = [];
    const call = client.makeServerStreamRequest(path, same, same, Buffer.from(body));
    call.on("data", (b: Buffer) => got.push(b));
    call.on("error", reject);
    call.on("end", () => resolve(got));
  }).finally(() => client.close());
}

/** Rejects unless `call` fails INVALID_ARGUMENT naming `field`, in the text and in a BadRequest field violation. */
async function assertBadRequest(call: Promise<unknown>, field: string, reason: RegExp, what: string) {
  await assert.rejects(call, (err: ServiceError) => {
    assert.equal(err.code, status.INVALID_ARGUMENT, `${what}: ${err.code} ${err.details}`);
    assert.ok(err.details.startsWith(`${field}: `), `${what}: details name the field ${field}: ${err.details}`);
    assert.match(err.details, reason, what);
    assert.ok(err.details.length < 300, `${what}: the bad value is not echoed back`);
    const description = err.details.slice(field.length + 2);
    assert.deepEqual(
      statusDetails(err),
      { code: status.INVALID_ARGUMENT, message: err.details, details: [{ "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: [{ field, description }] }] },
      what,
    );
    return true;
  });
}

test("bad timestamps, 64-bit overflows and oversize requests get INVALID_ARGUMENT naming the field, with a BadRequest detail", { timeout: 60_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 1 });
  const address = cluster.roles.serving!.address;
  const from = at(T - 60_000);
  const to = at(T + 60_000);
  const YEAR_10000 = 253_402_300_800n;
  const BEFORE_YEAR_1 = -62_135_596_801n;
  const INT64_MAX = 9_223_372_036_854_775_807n;
  for (const kind of ["query", "topK"] as const) {
    const path = kind === "query" ? QUERY : TOP_K;
    const bad = (f: Ts, t: Ts, field: string, reason: RegExp, what: string) => assertBadRequest(rawCall(address, path, requestBytes(kind, f, t)), field, reason, `${kind}: ${what}`);
    await bad([from[0], -1], to, "from", /nanos must be in \[0, 999999999\].*got -1/, "nanos -1");
    await bad(from, [to[0], 1_000_000_000], "to", /nanos must be in \[0, 999999999\].*got 1000000000/, "nanos 1e9");
    await bad(from, [YEAR_10000, 0], "to", /must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z/, "past year 9999");
    await bad([BEFORE_YEAR_1, 0], to, "from", /must be from 0001-01-01T00:00:00Z/, "before year 1");
    await bad([INT64_MAX, 0], to, "from", /got seconds=9223372036854775807/, "seconds int64 max");
    // The edges of the range are legal.
    await rawCall(address, path, requestBytes(kind, [MIN_TIMESTAMP_SECONDS, 0], [MIN_TIMESTAMP_SECONDS + 3600n, 0]));
    await rawCall(address, path, requestBytes(kind, [MAX_TIMESTAMP_SECONDS - 3600n, 0], [MAX_TIMESTAMP_SECONDS, 999_999_999]));
  }
  // The admin API's 64-bit run numbers past 2^53.
  const u64 = (v: bigint) => new BinaryWriter().tag(1, WireType.Varint).uint64(v).finish();
  await assertBadRequest(rawCall(address, "/lambda.v1.AdminService/Verify", u64(18_446_744_073_709_551_615n)), "run", /must be at most 9007199254740991/, "verify run 2^64-1");
  await assertBadRequest(rawCall(address, "/lambda.v1.AdminService/Rollback", u64(INT64_MAX)), "run", /must be at most 9007199254740991/, "rollback run int64 max");

  // A streaming method refuses an oversize request as well (3 MB of an unknown field).
  const junk = new BinaryWriter().tag(15, WireType.LengthDelimited).bytes(new Uint8Array(3_000_000)).finish();
  await assertBadRequest(rawStream(address, "/lambda.v1.AdminService/WatchWatermark", junk), "request", /is \d+ bytes; at most 2621440/, "watch watermark: 3 MB");

  // Keys, group values and names past MAX_KEY_BYTES, and requests past MAX_REQUEST_BYTES.
  const valid: Partial<QueryRequest> = { metric: "article_views", key: "x", from: new Date(T - 60_000), to: new Date(T + 60_000) };
  const big = (bytes: number, tag = "k") => tag.padEnd(bytes, "x");
  await assertBadRequest(rawQuery(cluster, { ...valid, key: big(1_048_576) }), "key", /is 1048576 bytes; at most 1024/, "a 1 MB key");
  await assertBadRequest(rawQuery(cluster, { ...valid, key: "", keys: Array.from({ length: 1000 }, (_, i) => big(2048, `k${i}`)) }), "keys", /key 0 is 2048 bytes; at most 1024/, "1000 keys of 2 KB");
  await assertBadRequest(rawQuery(cluster, { ...valid, key: "", keys: Array.from({ length: 1000 }, (_, i) => big(3000, `k${i}`)) }), "request", /is \d+ bytes; at most 2621440/, "3 MB of keys");
  await assertBadRequest(rawQuery(cluster, { ...valid, key: "", group: { article_id: big(5000) } }), "group", /is 5000 bytes; at most 1024/, "a long group value");
  await assertBadRequest(rawQuery(cluster, { ...valid, metric: big(100_000) }), "metric", /is 100000 bytes/, "a long metric name");
  await assertBadRequest(topK(cluster.grpc, { metric: "article_views", k: 3, where: { article_id: big(1_048_576) }, from: valid.from, to: valid.to }), "where", /is 1048576 bytes/, "top-k: a 1 MB where value");
  await assertBadRequest(topK(cluster.grpc, { metric: "article_views", k: 3, aggregate: big(2000), from: valid.from, to: valid.to }), "aggregate", /is 2000 bytes/, "top-k: a long aggregate name");
  await assertBadRequest(rawQuery(cluster, { ...valid, keys: Array.from({ length: 1001 }, (_, i) => `k${i}`) }), "keys", /at most 1000/, "1001 keys");
  const describe = new Promise((resolve, reject) => cluster.grpc.describeMetric({ metric: big(50_000) }, (err, res) => (err ? reject(err) : resolve(res))));
  await assertBadRequest(describe, "metric", /is 50000 bytes; at most 1024/, "describe: a long metric name");

  // UNAVAILABLE carries RetryInfo: no speed actor answers once the only speed node is gone.
  await cluster.killSpeedNode([...cluster.speedNodes.keys()][0]!);
  await waitFor("a query to find no speed actor", async () => {
    try {
      await queryRaw(cluster.grpc, { metric: "article_views", key: "x", from: new Date(T - 60_000), to: new Date(T + 60_000) });
      return undefined;
    } catch (err) {
      return (err as ServiceError).code === status.UNAVAILABLE ? (err as ServiceError) : undefined;
    }
  }).then((err) => {
    const d = statusDetails(err) as { details: unknown[] };
    assert.deepEqual(d.details, [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "0.500s" }]);
  });
});

test("the largest legal query is split below NATS max_payload and equals the recount; an INTERNAL error carries an id, never its message", { timeout: 90_000 }, async () => {
  const lines: KeptLine[] = [];
  // One partition, so every key goes to one actor, and a NATS server that takes 256 KiB: the
  // query's keys are four times what one message to that actor can carry.
  await using cluster = await startTestCluster({ partitions: 1, speedNodes: 1, log: keptLogger(lines), natsMaxPayloadBytes: 262_144 });
  const keys = Array.from({ length: MAX_QUERY_KEYS }, (_, i) => `k${i}-`.padEnd(MAX_KEY_BYTES, "x"));
  const maxPayload = cluster.nc.info!.max_payload;
  assert.ok(keys.reduce((n, k) => n + k.length, 0) > maxPayload, `fixture: the keys (${MAX_QUERY_KEYS} of ${MAX_KEY_BYTES} B) exceed max_payload ${maxPayload}`);
  const recount = new Map<string, number>();
  const event = (i: number, j: number) => {
    const key = keys[i]!;
    recount.set(key, (recount.get(key) ?? 0) + 1);
    return { id: `e${i}-${j}`, article_id: key, user_id: "u", ts: T + j * 1000 };
  };
  // Batch part, then speed part, on some keys; the others have no events at all.
  await cluster.ingest.publishBatch("pageviews", Array.from({ length: 60 }, (_, i) => event(i * 7, 0)));
  await cluster.roles.coordinator!.runNow();
  await cluster.ingest.publishBatch("pageviews", Array.from({ length: 60 }, (_, i) => event(i * 11, 1)));
  await cluster.waitForSpeedCaughtUp();

  const res = await rawQuery(cluster, { metric: "article_views", key: "", keys, from: new Date(T - 60_000), to: new Date(T + 60_000) });
  assert.equal(res.answers.length, keys.length);
  for (const a of res.answers) assert.equal(a.total ?? 0, recount.get(a.key) ?? 0, `key ${a.key.slice(0, 8)}…`);
  assert.ok((res.answers.find((a) => a.key === keys[0])?.batchPart ?? 0) > 0 && res.answers.some((a) => (a.speedPart ?? 0) > 0), "both parts answered");

  // An internal failure: the view table loses a column every read needs. The range is days away
  // from the one asked above, whose blocks of windows serving's batch cache holds per key.
  const table = viewTable(cluster.cfg.database, cluster.catalog.metrics.get("article_views")!);
  await cluster.roles.ch!.client.command({ query: `ALTER TABLE ${table} DROP COLUMN n` });
  const DAY = 86_400_000;
  await assert.rejects(query(cluster.grpc, "article_views", keys[0]!, T + 10 * DAY, T + 10 * DAY + 60_000), (err: ServiceError) => {
    assert.equal(err.code, status.INTERNAL, `${err.code} ${err.details}`);
    const m = /^internal error; see the serving log, error id ([0-9a-f]{16})$/.exec(err.details);
    assert.ok(m, `only an id: ${err.details}`);
    const logged = lines.find((l) => l.level === "error" && l.fields.errorId === m[1]);
    assert.ok(logged?.fields.err instanceof Error, "the serving log has the error under that id");
    return true;
  });
});

test("speed answers larger than NATS max_payload (a top-k over thousands of keys, a long series) come in parts and equal the recount", { timeout: 120_000 }, async () => {
  // 64 KiB messages: one partition's answer for its ~6000 of 12000 keys, or for 8000 windows of one key, is larger.
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 1, natsMaxPayloadBytes: 65_536 });
  const MINUTE = 60_000;
  const counts = new Map<string, number>();
  const events: { id: string; article_id: string; user_id: string; ts: number }[] = [];
  const add = (key: string, ts: number) => {
    counts.set(key, (counts.get(key) ?? 0) + 1);
    events.push({ id: `e${events.length}`, article_id: key, user_id: "u", ts });
  };
  for (let i = 0; i < 12_000; i++) for (let j = 0; j <= i % 3; j++) add(`art-${i}`, T + j * MINUTE);
  for (let w = 0; w < 8_000; w++) add("long", T + w * MINUTE);
  // All of it above the cut of run 1: the speed layer answers every part.
  await cluster.roles.coordinator!.runNow();
  const res = await cluster.ingest.publishBatch("pageviews", events);
  assert.equal(res.refused.length, 0);
  await cluster.waitForSpeedCaughtUp(60_000);

  const from = new Date(T - MINUTE);
  const to = new Date(T + 9_000 * MINUTE);
  const top = await completeTopK(cluster.grpc, { metric: "article_views", k: 1_000, from, to });
  const expected = [...counts].sort(([ka, a], [kb, b]) => b - a || (ka < kb ? -1 : ka > kb ? 1 : 0)).slice(0, 1_000);
  assert.deepEqual(top.entries.map((e) => [e.key, e.total]), expected);
  assert.ok(top.complete);

  const series = await completeQuery(cluster.grpc, { metric: "article_views", key: "long", series: true, from, to });
  assert.equal(series.answers[0]!.total, 8_000);
  assert.equal(series.answers[0]!.series.length, 8_000);
  assert.ok(series.answers[0]!.series.every((w, i) => w.windowStart!.getTime() === T + i * MINUTE && w.value === 1), "every window once, in order");
});
