/**
 * lambdactl as an operator runs it: a child process against a real cluster
 * (nats-server + chDB), configured by flags, by environment variables and by
 * the local cluster file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { partitionOfKey } from "../../src/core/events.js";
import { writeLocalClusterFile } from "../../src/cli/index.js";
import { startTestCluster } from "../harness/cluster.js";

const CLI = fileURLToPath(new URL("../../src/cli/lambdactl.js", import.meta.url));

interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs lambdactl with only the environment given (plus PATH), in `cwd`, feeding `input` to stdin. */
function lambdactl(args: readonly string[], opts: { cwd: string; env?: Record<string, string>; input?: string }): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--enable-source-maps", CLI, ...args], {
      cwd: opts.cwd,
      env: { PATH: process.env.PATH ?? "", ...opts.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? "");
  });
}

function parseJson<T>(r: CliRun): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch (err) {
    throw new Error(`lambdactl printed no JSON (exit ${r.code}); stdout: ${r.stdout}\nstderr: ${r.stderr}`, { cause: err });
  }
}

interface QueryOut {
  total: number;
  batchPart: number;
  speedPart: number;
  watermarkRun: number;
  partitions: { partition: number; cutSeq: number; appliedSeq: number; speedEventsHeld: number; generation: number }[];
}
interface WatermarkOut {
  present: boolean;
  watermark: { run: number; viewVersion: number; publishedAt: string; eventsCovered: number; cuts: { partition: number; seq: number }[] } | null;
}
interface IngestOut {
  accepted: number;
  duplicates: number;
  refused: number;
  refusals: { line: number; eventId: string | null; field: string; reason: string }[];
}

test("lambdactl against a running cluster", async (t) => {
  const PARTITIONS = 4;
  await using cluster = await startTestCluster({ partitions: PARTITIONS, speedNodes: 1 });
  const dir = mkdtempSync(join(tmpdir(), "lambdactl-test-"));
  try {
    // Directories to run in: one with nothing, one with a local cluster file.
    const emptyDir = mkdtempSync(join(dir, "empty-"));
    const local = mkdtempSync(join(dir, "local-"));
    const address = cluster.roles.serving!.address;
    const grpc = ["--grpc", address];
    const natsEnv = {
      LAMBDA_NATS_URL: cluster.cfg.natsUrl,
      LAMBDA_PREFIX: cluster.cfg.prefix,
      LAMBDA_PARTITIONS: String(PARTITIONS),
      LAMBDA_CATALOG: cluster.cfg.catalogPath,
    };
    const natsFlags = ["--nats-url", cluster.cfg.natsUrl, "--prefix", cluster.cfg.prefix, "--partitions", String(PARTITIONS), "--catalog", cluster.cfg.catalogPath];

    // The input: good events on three articles, a blank line, and three bad lines.
    const t0 = Date.UTC(2026, 5, 8, 14, 23, 0);
    const recent = Date.now() - 10 * 60_000;
    const good = [
      { id: "e1", article_id: "a-1", user_id: "u1", ts: new Date(t0).toISOString() },
      { id: "e2", article_id: "a-1", user_id: "u2", ts: t0 + 1_000 },
      { id: "e3", article_id: "a-2", user_id: "u1", ts: t0 + 61_000 },
      { id: "e4", article_id: "a-1", user_id: "u3", ts: t0 + 125_000 },
      { id: "e5", article_id: "a-3", user_id: "u4", ts: t0 + 2_000 },
      { id: "r1", article_id: "recent", user_id: "u1", ts: recent },
      { id: "r2", article_id: "recent", user_id: "u2", ts: recent + 1 },
    ];
    const lines = [
      JSON.stringify(good[0]),
      JSON.stringify(good[1]),
      '{"id": "broken", "article_id": ',
      JSON.stringify(good[2]),
      "",
      JSON.stringify({ id: "no-user", article_id: "a-1", ts: t0 }),
      JSON.stringify(good[3]),
      "42",
      ...good.slice(4).map((e) => JSON.stringify(e)),
    ];
    const file = join(dir, "events.jsonl");
    writeFileSync(file, lines.join("\n") + "\n");
    const expectedRefusals = [
      { line: 3, eventId: null, field: "(line)" },
      { line: 6, eventId: "no-user", field: "user_id" },
      { line: 8, eventId: null, field: "(event)" },
    ];
    const countOf = (key: string, fromMs: number, toMs: number) =>
      good.filter((e) => e.article_id === key).filter((e) => {
        const ts = typeof e.ts === "string" ? Date.parse(e.ts) : e.ts;
        const windowStart = Math.floor(ts / 60_000) * 60_000;
        return windowStart >= fromMs && windowStart < toMs;
      }).length;
    const from = t0 - 60_000;
    const to = t0 + 10 * 60_000;

    await t.test("nothing configured: says which flag and variable to set, exit 2", async () => {
      const r = await lambdactl(["watermark"], { cwd: emptyDir });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /--grpc/);
      assert.match(r.stderr, /LAMBDA_GRPC_ADDR/);
      assert.match(r.stderr, /npm start/);
      const i = await lambdactl(["ingest", "pageviews", file], { cwd: emptyDir });
      assert.equal(i.code, 2, i.stderr);
      assert.match(i.stderr, /--nats-url/);
      assert.match(i.stderr, /LAMBDA_NATS_URL/);
    });

    await t.test("watermark before any run: not present (address from the local cluster file)", async () => {
      writeLocalClusterFile(local, { grpc: address, natsUrl: cluster.cfg.natsUrl, prefix: cluster.cfg.prefix, partitions: PARTITIONS, catalog: cluster.cfg.catalogPath });
      const j = await lambdactl(["watermark", "--json"], { cwd: local });
      assert.equal(j.code, 0, j.stderr);
      assert.deepEqual(parseJson<WatermarkOut>(j), { present: false, watermark: null });
      const text = await lambdactl(["watermark"], { cwd: local });
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^no watermark yet/);
    });

    await t.test("ingest a file: counts and refused lines, exit 1", async () => {
      const r = await lambdactl(["ingest", "pageviews", file, "--json"], { cwd: dir, env: natsEnv });
      assert.equal(r.code, 1, r.stderr);
      const out = parseJson<IngestOut>(r);
      assert.equal(out.accepted, good.length);
      assert.equal(out.duplicates, 0);
      assert.equal(out.refused, expectedRefusals.length);
      assert.deepEqual(
        out.refusals.map(({ line, eventId, field }) => ({ line, eventId, field })),
        expectedRefusals,
      );
      assert.match(out.refusals[0]!.reason, /not valid JSON/);
      assert.match(out.refusals[1]!.reason, /is missing/);
    });

    await t.test("ingest the same lines again from stdin: all duplicates, refused listed in a table", async () => {
      const r = await lambdactl(["ingest", "pageviews", "-", ...natsFlags], { cwd: dir, input: lines.join("\n") });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stdout, /^accepted\s+0$/m);
      assert.match(r.stdout, new RegExp(`^duplicates\\s+${good.length}$`, "m"));
      assert.match(r.stdout, /^refused\s+3$/m);
      assert.match(r.stdout, /^line\s+event id\s+field\s+reason$/m);
      assert.match(r.stdout, /^\s*6\s+no-user\s+user_id\s+is missing$/m);
    });

    await t.test("the good events show up in query answers (speed part)", async () => {
      await cluster.waitForSpeedCaughtUp();
      for (const key of ["a-1", "a-2", "a-3"]) {
        const r = await lambdactl(["query", "article_views", key, "--from", new Date(from).toISOString(), "--to", String(to), "--json", ...grpc], { cwd: dir });
        assert.equal(r.code, 0, r.stderr);
        const q = parseJson<QueryOut>(r);
        assert.equal(q.total, countOf(key, from, to), key);
        assert.equal(q.speedPart, q.total, key);
        assert.equal(q.batchPart, 0, key);
        assert.equal(q.watermarkRun, 0);
        assert.deepEqual(q.partitions.map((p) => p.partition), [partitionOfKey(key, PARTITIONS)]);
      }
      // A narrower range: only the first minute's window.
      const narrow = await lambdactl(["query", "article_views", "a-1", "--from", String(t0), "--to", String(t0 + 60_000), "--json", ...grpc], { cwd: dir });
      assert.equal(parseJson<QueryOut>(narrow).total, countOf("a-1", t0, t0 + 60_000));
      // Relative times, --to defaulting to now.
      const rel = await lambdactl(["query", "article_views", "recent", "--from", "-1h", "--json", ...grpc], { cwd: dir });
      assert.equal(rel.code, 0, rel.stderr);
      assert.equal(parseJson<QueryOut>(rel).total, 2);
    });

    await t.test("query as text: the summary and the partition table", async () => {
      const r = await lambdactl(["query", "article_views", "a-1", "--from", String(from), "--to", String(to), ...grpc], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^total\\s+${countOf("a-1", from, to)}$`, "m"));
      assert.match(r.stdout, /^partition\s+cut seq\s+applied seq\s+speed events held\s+generation$/m);
    });

    await t.test("after a batch run: watermark run 1 with one cut per partition, answers from the batch part", async () => {
      const w = await cluster.roles.coordinator!.runNow();
      assert.equal(w.run, 1);
      const r = await lambdactl(["watermark", "--json", ...grpc], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      const out = parseJson<WatermarkOut>(r);
      assert.equal(out.present, true);
      assert.equal(out.watermark!.run, 1);
      assert.equal(out.watermark!.viewVersion, 1);
      assert.equal(out.watermark!.eventsCovered, good.length);
      assert.deepEqual(out.watermark!.cuts.map((c) => c.partition), Array.from({ length: PARTITIONS }, (_, p) => p));
      assert.ok(out.watermark!.cuts.every((c) => c.seq > 0));
      assert.ok(!Number.isNaN(Date.parse(out.watermark!.publishedAt)));

      const text = await lambdactl(["watermark", ...grpc], { cwd: dir });
      assert.match(text.stdout, /^run\s+1$/m);
      assert.match(text.stdout, /^published at\s+\S+ \(\d.* ago\)$/m);
      assert.match(text.stdout, /^partition\s+cut seq$/m);

      await cluster.waitForSpeedCaughtUp();
      const q = await lambdactl(["query", "article_views", "a-1", "--from", String(from), "--to", String(to), "--json", ...grpc], { cwd: dir });
      const a = parseJson<QueryOut>(q);
      assert.equal(a.watermarkRun, 1);
      assert.equal(a.batchPart, countOf("a-1", from, to));
      assert.equal(a.total, a.batchPart + a.speedPart);
      assert.equal(a.total, countOf("a-1", from, to));
    });

    await t.test("bad arguments: exit 2 with a message naming the problem", async () => {
      const cases: [string[], RegExp][] = [
        [["frobnicate"], /unknown command "frobnicate"/],
        [["query", "article_views", "a-1", "--from", "-1h", "--bogus", ...grpc], /unknown flag --bogus/],
        [["query", "article_views", "--from", "-1h", ...grpc], /missing argument <key>/],
        [["query", "article_views", "a-1", ...grpc], /missing flag --from/],
        [["query", "article_views", "a-1", "--from", "yesterday", ...grpc], /--from: cannot parse "yesterday" as a time/],
        [["query", "article_views", "a-1", "--from", "now", "--to", "-1h", ...grpc], /--from must be before --to/],
        [["watermark", "--grpc"], /flag --grpc needs a value/],
        [["watermark", "--grpc", "no-port"], /--grpc: expected host:port/],
        [["ingest", "nosuchsource", file, ...natsFlags], /unknown source "nosuchsource"/],
      ];
      for (const [args, message] of cases) {
        const r = await lambdactl(args, { cwd: dir });
        assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, message, args.join(" "));
        assert.equal(r.stdout, "", args.join(" "));
      }
    });

    await t.test("a query the server refuses: INVALID_ARGUMENT with the server's message, exit 1", async () => {
      const r = await lambdactl(["query", "nope", "a-1", "--from", "-1h", ...grpc], { cwd: dir });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^lambdactl: INVALID_ARGUMENT: metric: unknown metric "nope"; defined: article_views$/m);
    });

    await t.test("help: exit 0 on stdout", async () => {
      const r = await lambdactl(["query", "--help"], { cwd: dir });
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^usage: lambdactl query <metric> <key>/);
      assert.match(r.stdout, /-15m/);
      const top = await lambdactl(["--help"], { cwd: dir });
      assert.equal(top.code, 0);
      assert.match(top.stdout, /commands:/);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
