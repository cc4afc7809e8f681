/**
 * Server reflection as a strict client sees it (grpcurl, buf curl, anything that builds a real
 * descriptor registry): every file the serving node sends through grpc.reflection.v1 and
 * v1alpha loads into @bufbuild/protobuf's registry, and equals what proto/ says (file names,
 * imports, fully qualified type names, snake_case field names with protoc's json names, map
 * entries). Then every unary method of LambdaService and AdminService that leaves the cluster
 * as it was is called with requests made from the reflected descriptors alone, and the answers,
 * decoded the same way, are checked against a recount of what was ingested. Last, the README's
 * grpcurl commands: emulated through reflection always, and run as written when grpcurl is
 * installed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { equals, type JsonValue } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type DescriptorProto, type FieldDescriptorProto, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { startTestCluster } from "../harness/cluster.js";
import { extraServingNode, writeGrpcSecrets } from "../harness/grpc_tls.js";
import { silentLogger } from "../../src/core/logger.js";
import { writeLocalClusterFile } from "../../src/cli/index.js";
import { callJson, callStreamJson, filesOfSet, openReflection, reflect, reflectedMethod, type Reflected, type ReflectionClient } from "../harness/reflection.js";

const T = Date.UTC(2026, 5, 8, 14, 23, 0);
const iso = (ms: number) => new Date(ms).toISOString();

// --- proto/ read independently of buf: messages, fields, imports, rpcs (enough for these files).

interface ProtoField {
  name: string;
  number: number;
  /** The declared type: "string", "google.protobuf.Timestamp", "KeyAnswer", "map<string, string>". */
  type: string;
}
interface ProtoFile {
  name: string;
  imports: string[];
  messages: Map<string, ProtoField[]>;
  rpcs: Map<string, string[]>;
}

function parseProto(root: string, name: string): ProtoFile {
  const text = readFileSync(join(root, name), "utf8").replace(/\/\/.*$/gm, "");
  const imports = [...text.matchAll(/^import\s+"([^"]+)";/gm)].map((m) => m[1]!);
  const messages = new Map<string, ProtoField[]>();
  for (const m of text.matchAll(/message\s+(\w+)\s*\{([^}]*)\}/g)) {
    const fields = [...m[2]!.matchAll(/(?:(?:optional|repeated)\s+)?(map<[^>]+>|[\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;/g)].map((f) => ({ type: f[1]!, name: f[2]!, number: Number(f[3]) }));
    messages.set(m[1]!, fields);
  }
  const rpcs = new Map<string, string[]>();
  for (const s of text.matchAll(/service\s+(\w+)\s*\{([^}]*)\}/g)) rpcs.set(s[1]!, [...s[2]!.matchAll(/rpc\s+(\w+)\s*\(/g)].map((r) => r[1]!));
  return { name, imports, messages, rpcs };
}

/** protoc's json_name: drop each underscore and upper-case the letter after it. */
function protocJsonName(name: string): string {
  return name.replace(/_(.)/g, (_, c: string) => c.toUpperCase()).replace(/_/g, "");
}

const PROTO_FILES = ["lambda/v1/serving.proto", "lambda/v1/admin.proto"];
const SCALARS = new Set(["string", "bool", "double", "float", "uint32", "uint64", "int32", "int64", "bytes"]);

/** Checks the reflected descriptors against proto/ as written. */
function assertMatchesProto(got: Reflected, proto: ProtoFile[]) {
  for (const p of proto) {
    const file = got.files.get(p.name);
    assert.ok(file, `reflection sent ${p.name} (it sent ${[...got.files.keys()].join(", ")})`);
    assert.equal(file.package, "lambda.v1");
    assert.deepEqual(file.dependency, p.imports, `${p.name} declares its imports`);
    assert.deepEqual(file.messageType.map((m) => m.name).sort(), [...p.messages.keys()].sort(), `${p.name}: its messages`);
    for (const [service, rpcs] of p.rpcs) {
      assert.deepEqual(got.registry.getService(`lambda.v1.${service}`)?.methods.map((m) => m.name), rpcs, `lambda.v1.${service}: its methods`);
    }
    for (const [msgName, fields] of p.messages) {
      const msg = got.registry.getMessage(`lambda.v1.${msgName}`);
      assert.ok(msg, `registry has lambda.v1.${msgName}`);
      const served: DescriptorProto = file.messageType.find((m) => m.name === msgName)!;
      assert.deepEqual(
        msg.fields.map((f) => [f.name, f.number]),
        fields.map((f) => [f.name, f.number]),
        `lambda.v1.${msgName}: fields by proto name and number`,
      );
      for (const f of fields) {
        const sf: FieldDescriptorProto = served.field.find((x) => x.name === f.name)!;
        assert.equal(sf.jsonName, protocJsonName(f.name), `lambda.v1.${msgName}.${f.name}: json_name as protoc sets it`);
        const map = /^map<\s*\w+\s*,\s*([\w.]+)\s*>$/.exec(f.type);
        if (map) {
          const entry = `${f.name.replace(/(^|_)(.)/g, (_, __, c: string) => c.toUpperCase())}Entry`;
          assert.equal(sf.typeName, `.lambda.v1.${msgName}.${entry}`, `lambda.v1.${msgName}.${f.name}: map entry type`);
          assert.equal(served.nestedType.find((n) => n.name === entry)?.options?.mapEntry, true, `${msgName}.${entry} is a map entry`);
          assert.equal(msg.field[protocJsonName(f.name)]?.fieldKind, "map");
        } else if (!SCALARS.has(f.type)) {
          const full = f.type.includes(".") ? `.${f.type}` : `.lambda.v1.${f.type}`;
          assert.equal(sf.typeName, full, `lambda.v1.${msgName}.${f.name}: fully qualified type`);
        }
      }
    }
  }
}

/** The files `buf build` makes from proto/ right now, by name. */
function bufBuild(): Map<string, FileDescriptorProto> {
  const buf = createRequire(import.meta.url).resolve("@bufbuild/buf/bin/buf");
  const set = execFileSync(process.execPath, [buf, "build", ".", "-o", "-#format=binpb"], { maxBuffer: 64 << 20 });
  return new Map(filesOfSet(set).map((f) => [f.name, f]));
}

async function assertErrorCode(r: ReflectionClient, req: Parameters<ReflectionClient["ask"]>[0], code: status) {
  const res = await r.ask(req);
  assert.equal(res.error_response?.error_code, code, `${JSON.stringify(req)} answers ${status[code]}: ${JSON.stringify(res)}`);
  assert.ok(res.error_response.error_message.length > 0, "with a message");
}

/** Every full name a strict client may ask about resolves to the file that declares it. */
async function assertSymbols(r: ReflectionClient, got: Reflected) {
  const ask = async (symbol: string, file: string) => {
    const files = await r.files({ file_containing_symbol: symbol });
    assert.equal(files[0]?.name, file, `file_containing_symbol ${symbol}`);
    // The file comes with everything it imports, transitively: a strict client needs nothing more.
    const names = new Set(files.map((f) => f.name));
    for (const f of files) for (const d of f.dependency) assert.ok(names.has(d), `${symbol}: ${f.name}'s import ${d} is sent along`);
  };
  let asked = 0;
  for (const t of got.registry) {
    await ask(t.typeName, t.file.proto.name);
    asked++;
    if (t.kind === "service") for (const m of t.methods) await ask(`${t.typeName}.${m.name}`, t.file.proto.name);
    if (t.kind === "message") for (const f of t.fields) await ask(`${t.typeName}.${f.name}`, t.file.proto.name);
    // Enum values are scoped beside their enum (C++ scoping).
    if (t.kind === "enum") for (const v of t.values) await ask(`${t.typeName.slice(0, t.typeName.lastIndexOf(".") + 1)}${v.name}`, t.file.proto.name);
  }
  assert.ok(asked > 60, `asked about every type (${asked})`);
  // Nested types, as named in the proto.
  await ask("lambda.v1.KeyAnswer.GroupEntry", "lambda/v1/serving.proto");
  await ask("grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto");
  await ask("grpc.health.v1.HealthCheckResponse.SERVING", "grpc/health/v1/health.proto");

  for (const name of got.files.keys()) {
    const files = await r.files({ file_by_filename: name });
    assert.equal(files[0]?.name, name, `file_by_filename ${name}`);
  }
  await assertErrorCode(r, { file_containing_symbol: "lambda.v1.NoSuchThing" }, status.NOT_FOUND);
  await assertErrorCode(r, { file_by_filename: "lambda_v1.proto" }, status.NOT_FOUND);
  await assertErrorCode(r, { file_containing_extension: { containing_type: "lambda.v1.QueryRequest", extension_number: 100 } }, status.NOT_FOUND);
  await assertErrorCode(r, { all_extension_numbers_of_type: "lambda.v1.NoSuchThing" }, status.NOT_FOUND);
  const ext = await r.ask({ all_extension_numbers_of_type: "lambda.v1.QueryRequest" });
  assert.equal(ext.all_extension_numbers_response?.base_type_name, "lambda.v1.QueryRequest");
  assert.deepEqual(ext.all_extension_numbers_response.extension_number ?? [], []);
  // The stream answered all of that in turn and still answers.
  assert.ok((await r.ask({ list_services: "" })).list_services_response);
}

// --- reading decoded answers (JSON as protobuf's JSON mapping writes it, like grpcurl prints)

type Json = { [key: string]: JsonValue };
function obj(v: JsonValue | undefined, what: string): Json {
  assert.ok(v !== null && typeof v === "object" && !Array.isArray(v), `${what} is an object: ${JSON.stringify(v)}`);
  return v;
}
function arr(v: JsonValue | undefined): JsonValue[] {
  return Array.isArray(v) ? v : [];
}
/** uint64 is a string in protobuf's JSON mapping; absent means 0. */
const u64 = (v: JsonValue | undefined) => Number(v ?? 0);

test("reflection serves buf's descriptors to strict clients (v1 and v1alpha); methods called from them alone answer right; the README's grpcurl commands work", async (t) => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 1 });
  const address = cluster.roles.serving!.address;
  const proto = PROTO_FILES.map((f) => parseProto(join(process.cwd(), "proto"), f));

  const built = bufBuild();
  const reflected: Reflected[] = [];
  for (const version of ["v1", "v1alpha"] as const) {
    const r = openReflection(address, version);
    try {
      const got = await reflect(r);
      assert.deepEqual(
        got.services,
        ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", "lambda.v1.AdminService", "lambda.v1.LambdaService"],
        `${version} lists every service served`,
      );
      assert.deepEqual([...got.files.keys()].sort(), [
        "google/protobuf/timestamp.proto",
        "grpc/health/v1/health.proto",
        "grpc/reflection/v1/reflection.proto",
        "grpc/reflection/v1alpha/reflection.proto",
        "lambda/v1/admin.proto",
        "lambda/v1/serving.proto",
      ]);
      assertMatchesProto(got, proto);
      // Byte for byte what buf compiles from proto/ now (so also not stale).
      for (const [name, file] of built) assert.ok(equals(FileDescriptorProtoSchema, got.files.get(name)!, file), `${name} equals buf build's`);
      assert.equal(got.registry.getMessage("grpc.health.v1.HealthCheckRequest")?.fields[0]?.name, "service", "the health service is describable");
      await assertSymbols(r, got);
      reflected.push(got);
    } finally {
      r.close();
    }
  }
  const { registry } = reflected[0]!;
  const method = (service: string, name: string) => reflectedMethod(registry, service, name);
  const lambda = (name: string, req: JsonValue) => callJson(address, method("lambda.v1.LambdaService", name), req);
  const admin = (name: string, req: JsonValue) => callJson(address, method("lambda.v1.AdminService", name), req);
  const runBatch = async () => {
    const steps = await callStreamJson(address, method("lambda.v1.AdminService", "RunBatch"), {});
    const last = obj(steps.at(-1), "last RunBatch step");
    assert.equal(last.phase, "done", `batch run finished: ${JSON.stringify(steps)}`);
    return u64(obj(last.watermark, "watermark").run);
  };

  // Two batch runs and events above the last cut, so answers have a batch and a speed part.
  const pageview = (id: string, article: string, offsetMs: number) => ({ id, article_id: article, user_id: `u-${id}`, ts: T + offsetMs });
  const phases = [
    [...Array.from({ length: 5 }, (_, i) => pageview(`a${i}`, "a-1", i * 1_000)), pageview("b0", "a-2", 0), pageview("b1", "a-2", 61_000)],
    Array.from({ length: 3 }, (_, i) => pageview(`c${i}`, "a-1", 120_000 + i)),
    Array.from({ length: 2 }, (_, i) => pageview(`d${i}`, "a-1", 180_000 + i)),
  ];
  let run = 0;
  for (const [i, events] of phases.entries()) {
    const res = await cluster.ingest.publishBatch("pageviews", events);
    assert.equal(res.accepted, events.length, JSON.stringify(res));
    if (i < 2) run = await runBatch();
  }
  await cluster.waitForSpeedCaughtUp();
  const all = phases.flat();
  const count = (article: string, events = all) => events.filter((e) => e.article_id === article).length;
  const window = { from: iso(T - 3_600_000), to: iso(T + 3_600_000) };

  // LambdaService: every method.
  const q = obj(await lambda("Query", { metric: "article_views", key: "a-1", ...window }), "QueryResponse");
  const answer = obj(arr(q.answers)[0], "answer");
  assert.equal(answer.total, count("a-1"));
  assert.equal(answer.batchPart, count("a-1", [...phases[0]!, ...phases[1]!]), "json name batchPart");
  assert.equal(answer.speedPart, count("a-1", phases[2]!));
  assert.equal(u64(q.watermarkRun), run);
  const multi = obj(await lambda("Query", { metric: "article_views", keys: ["a-1", "a-2"], from: window.from, to: window.to, series: true }), "QueryResponse");
  assert.deepEqual(arr(multi.answers).map((a) => obj(a, "answer").total), [count("a-1"), count("a-2")]);
  const series = arr(obj(arr(multi.answers)[1], "answer").series).map((w) => obj(w, "window"));
  assert.deepEqual(series.map((w) => [Date.parse(String(w.windowStart)), u64(w.events)]), [[T, 1], [T + 60_000, 1]], "per-minute windows of a-2");
  const top = obj(await lambda("TopK", { metric: "article_views", k: 2, ...window }), "TopKResponse");
  assert.deepEqual(arr(top.entries).map((e) => [obj(e, "entry").key, obj(e, "entry").total]), [["a-1", count("a-1")], ["a-2", count("a-2")]]);
  const wm = obj(await lambda("GetWatermark", {}), "GetWatermarkResponse");
  assert.equal(wm.present, true);
  assert.equal(u64(obj(wm.watermark, "watermark").run), run);
  const catalogMetrics = Object.keys(obj(JSON.parse(readFileSync(join(process.cwd(), "catalog/catalog.json"), "utf8")), "catalog").metrics as Json);
  const metrics = arr(obj(await lambda("ListMetrics", {}), "ListMetricsResponse").metrics).map((m) => obj(m, "metric").name);
  assert.deepEqual(metrics.sort(), catalogMetrics.sort());
  const described = obj(await lambda("DescribeMetric", { metric: "article_views" }), "DescribeMetricResponse");
  assert.equal(obj(described.metric, "metric").source, "pageviews");
  assert.equal(obj(described.sourceFields, "sourceFields").article_id, "string", "map<string, string> source_fields decodes");

  // AdminService: every unary method but Rollback (it would move the watermark back).
  const runs = arr(obj(await admin("ListRuns", {}), "ListRunsResponse").runs).map((r) => obj(r, "run"));
  assert.deepEqual(runs.map((r) => [u64(r.run), r.outcome]), [[2, "published"], [1, "published"]]);
  assert.equal(u64(runs[0]!.eventsCovered), phases[0]!.length + phases[1]!.length);
  const diff = obj(await admin("DiffRuns", { fromRun: 1, toRun: 2 }), "DiffRunsResponse");
  assert.equal(arr(diff.partitions).reduce((n: number, p) => n + u64(obj(p, "partition").events), 0), phases[1]!.length, "events between the cuts of runs 1 and 2");
  const verify = obj(await admin("Verify", {}), "VerifyResponse");
  assert.equal(verify.exact, true, JSON.stringify(verify));
  assert.equal(u64(verify.batchEventsRecounted), phases[0]!.length + phases[1]!.length);
  const st = obj(await admin("GetStatus", {}), "GetStatusResponse");
  assert.equal(u64(st.watermarkRun), run);
  assert.deepEqual(arr(st.partitions).map((p) => u64(obj(p, "partition").partition)).sort(), [0, 1]);
  const unary = [...registry.getService("lambda.v1.LambdaService")!.methods, ...registry.getService("lambda.v1.AdminService")!.methods].filter((m) => m.methodKind === "unary");
  assert.deepEqual(unary.map((m) => m.name).sort(), ["DescribeMetric", "DiffRuns", "GetStatus", "GetWatermark", "ListMetrics", "ListRuns", "Query", "Rollback", "TopK", "Verify"], "the unary methods this test covers (all but Rollback)");

  // The README's grpcurl commands, with the address a local cluster would have: two lines that
  // read the CA and the query token through .lambda/local-cluster.json, then the calls.
  const readme = readFileSync(join(process.cwd(), "README.md"), "utf8");
  const block = /Any gRPC tool works too[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block, "README has the grpcurl block");
  const lines = block.replace(/\\\n\s*/g, "").trim().split("\n");
  assert.equal(lines.length, 4, block);
  const [setup, commands] = [lines.slice(0, 2), lines.slice(2)];
  assert.match(setup[0]!, /^CA=\$\(node -p 'require\("\.\/\.lambda\/local-cluster\.json"\)\.grpcTlsCa'\)$/);
  assert.match(setup[1]!, /^TOKEN=\$\(cat "\$\(node -p 'require\("\.\/\.lambda\/local-cluster\.json"\)\.grpcTokenFile'\)"\)$/);
  const secure = 'grpcurl -cacert "$CA" -H "authorization: Bearer $TOKEN" ';
  assert.equal(commands[0], `${secure}127.0.0.1:50051 list`);
  assert.ok(commands[1]!.startsWith(`${secure}-d '`), commands[1]);
  const data = /-d '([^']+)'/.exec(commands[1]!)?.[1];
  assert.ok(data && commands[1]!.endsWith("127.0.0.1:50051 lambda.v1.LambdaService/Query"), commands[1]);
  const readmeQuery = JSON.parse(data) as Json;
  assert.equal(readmeQuery.key, "a-1", "the README queries the key this test ingested");
  // What grpcurl does for them: list, then resolve the method, map the JSON and call.
  assert.ok(reflected[0]!.services.includes("lambda.v1.LambdaService"));
  const viaReadme = obj(await lambda("Query", readmeQuery), "QueryResponse");
  assert.equal(obj(arr(viaReadme.answers)[0], "answer").total, count("a-1"));

  await t.test("the README's grpcurl commands, run as written", async (t) => {
    try {
      await promisify(execFile)("grpcurl", ["-version"]);
    } catch {
      t.skip("grpcurl is not installed (Debian bookworm does not package it); the emulation above covered the same steps");
      return;
    }
    // A serving node as npm start runs it (TLS, tokens), and the local cluster file naming its CA and token.
    const cwd = mkdtempSync(join(tmpdir(), "lambda-readme-"));
    t.after(() => rmSync(cwd, { recursive: true, force: true }));
    const s = writeGrpcSecrets(cwd);
    const secureNode = await extraServingNode(cluster, "readme-secure", silentLogger, { security: { tlsCertFile: s.certFile, tlsKeyFile: s.keyFile, tokenFile: s.tokenFile, adminTokenFile: s.adminTokenFile } });
    t.after(() => secureNode.close());
    writeLocalClusterFile(cwd, { grpc: secureNode.address, natsUrl: cluster.nats.url, prefix: cluster.cfg.prefix, partitions: cluster.cfg.partitions, catalog: cluster.cfg.catalogPath, grpcTlsCa: s.caFile, grpcTokenFile: s.tokenFile });
    // Asynchronously: the serving node runs in this process and must answer meanwhile.
    const sh = (cmd: string) => promisify(execFile)("bash", ["-c", [...setup, cmd.replaceAll("127.0.0.1:50051", secureNode.address)].join("\n")], { encoding: "utf8", cwd });
    const listed = (await sh(commands[0]!)).stdout.trim().split("\n");
    assert.ok(listed.includes("lambda.v1.LambdaService"), listed.join(", "));
    const out = obj(JSON.parse((await sh(commands[1]!)).stdout) as JsonValue, "grpcurl output");
    assert.equal(obj(arr(out.answers)[0], "answer").total, count("a-1"));
  });
});
