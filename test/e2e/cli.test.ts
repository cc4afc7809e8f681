/**
 * lambdactl as an operator runs it: a child process against a real cluster
 * (nats-server + chDB), configured by flags, by environment variables and by
 * the local cluster file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadCatalog, metricFingerprint } from "../../src/core/catalog.js";
import { partitionOfKey } from "../../src/core/events.js";
import { writeLocalClusterFile } from "../../src/cli/index.js";
import { lambdactl, parseJson } from "../harness/cli.js";
import { startTestCluster } from "../harness/cluster.js";

/** The catalog the harness runs with. */
const CATALOG = join(process.cwd(), "catalog/catalog.json");

interface AnswerOut {
  key: string;
  group: Record<string, string>;
  total: number | null;
  batchPart: number | null;
  speedPart: number | null;
  events: number;
}
interface PartitionOut {
  partition: number;
  cutSeq: number;
  appliedSeq: number;
  speedEventsHeld: number;
  generation: number;
}
interface QueryOut {
  metric: string;
  aggregate: string;
  quantile: number | null;
  from: string;
  to: string;
  watermarkRun: number;
  answers: (AnswerOut & { series: { windowStart: string; value: number | null; batchPart: number | null; speedPart: number | null; events: number }[] | null })[];
  partitions: PartitionOut[];
  speedEventsHeld: number;
}
interface TopOut {
  metric: string;
  aggregate: string;
  k: number;
  where: Record<string, string>;
  watermarkRun: number;
  entries: (AnswerOut & { rank: number })[];
  partitions: PartitionOut[];
  speedEventsHeld: number;
}
interface MetricOut {
  name: string;
  source: string;
  groupBy: string[];
  window: string;
  aggregates: { name: string; kind: string; field: string | null }[];
  filter: unknown;
  description: string;
  definition?: string | null;
  nextDefinition?: string | null;
  state?: string;
}
interface CatalogOut {
  ok: boolean;
  file: string;
  sources?: { name: string }[];
  metrics?: MetricOut[];
  path?: string;
  reason?: string;
  error?: ErrorOut["error"];
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
  error?: ErrorOut["error"];
}
/** What every failure prints with --json. */
interface ErrorOut {
  error: { code: string; message: string; [field: string]: unknown };
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
      { id: "e6", article_id: "a-4", user_id: "u2", ts: t0 + 30_000 },
      { id: "e7", article_id: "a-4", user_id: "u5", ts: t0 + 240_000 },
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
    // The oracle: what the metrics must answer, computed here from the events (1-minute windows).
    const windowOf = (e: (typeof good)[number]) => Math.floor((typeof e.ts === "string" ? Date.parse(e.ts) : e.ts) / 60_000) * 60_000;
    const eventsIn = (fromMs: number, toMs: number) => good.filter((e) => windowOf(e) >= fromMs && windowOf(e) < toMs);
    const countOf = (key: string, fromMs: number, toMs: number) => eventsIn(fromMs, toMs).filter((e) => e.article_id === key).length;
    /** Articles by view count, highest first, ties by key: what `top` must answer. */
    const ranking = (fromMs: number, toMs: number) =>
      [...new Set(eventsIn(fromMs, toMs).map((e) => e.article_id))]
        .map((key) => ({ key, count: countOf(key, fromMs, toMs) }))
        .sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const from = t0 - 60_000;
    const to = t0 + 10 * 60_000;
    // Orders, for a metric grouped by two fields (order_flow: currency, status).
    const orders = [
      { id: "o1", customer_id: "c1", ts: t0, amount: 20, items: 2, currency: "EUR", status: "paid" },
      { id: "o2", customer_id: "c2", ts: t0 + 60_000, amount: 30, items: 3, currency: "EUR", status: "paid" },
      { id: "o3", customer_id: "c1", ts: t0 + 120_000, amount: 5, items: 2, currency: "USD", status: "paid" },
      { id: "o4", customer_id: "c3", ts: t0 + 180_000, amount: 50, items: 4, currency: "EUR", status: "open" },
      { id: "o5", customer_id: "c2", ts: t0 + 240_000, amount: 12, items: 2, currency: "USD", status: "paid" },
      { id: "o6", customer_id: "c4", ts: t0 + 300_000, amount: 12, items: 2, currency: "EUR", status: "paid" },
    ];
    const ordersFile = join(dir, "orders.jsonl");
    writeFileSync(ordersFile, orders.map((o) => JSON.stringify(o)).join("\n") + "\n");
    const range = ["--from", new Date(from).toISOString(), "--to", String(to)];

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
      for (const key of ["a-1", "a-2", "a-3", "a-4"]) {
        const r = await lambdactl(["query", "article_views", key, ...range, "--json", ...grpc], { cwd: dir });
        assert.equal(r.code, 0, r.stderr);
        const q = parseJson<QueryOut>(r);
        assert.equal(q.metric, "article_views");
        assert.equal(q.aggregate, "views");
        assert.equal(q.watermarkRun, 0);
        assert.equal(q.answers.length, 1);
        const a = q.answers[0]!;
        assert.equal(a.key, key);
        assert.deepEqual(a.group, { article_id: key });
        assert.equal(a.total, countOf(key, from, to), key);
        assert.equal(a.speedPart, a.total, key);
        assert.equal(a.batchPart, 0, key);
        assert.equal(a.events, countOf(key, from, to), key);
        assert.equal(a.series, null);
        assert.deepEqual(q.partitions.map((p) => p.partition), [partitionOfKey(key, PARTITIONS)]);
        assert.equal(q.speedEventsHeld, q.partitions.reduce((n, p) => n + p.speedEventsHeld, 0));
      }
      // A narrower range: only the first minute's window.
      const narrow = await lambdactl(["query", "article_views", "a-1", "--from", String(t0), "--to", String(t0 + 60_000), "--json", ...grpc], { cwd: dir });
      assert.equal(parseJson<QueryOut>(narrow).answers[0]!.total, countOf("a-1", t0, t0 + 60_000));
      // Relative times, --to defaulting to now.
      const rel = await lambdactl(["query", "article_views", "recent", "--from", "-1h", "--json", ...grpc], { cwd: dir });
      assert.equal(rel.code, 0, rel.stderr);
      assert.equal(parseJson<QueryOut>(rel).answers[0]!.total, 2);
    });

    await t.test("query several keys at once: one answer per key, in the order asked", async () => {
      const keys = ["a-4", "a-1", "nobody"];
      const r = await lambdactl(["query", "article_views", ...keys, ...range, "--json", ...grpc], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      const q = parseJson<QueryOut>(r);
      assert.deepEqual(q.answers.map((a) => a.key), keys);
      assert.deepEqual(
        q.answers.map((a) => a.total),
        keys.map((k) => countOf(k, from, to)),
      );
      const involved = [...new Set(keys.map((k) => partitionOfKey(k, PARTITIONS)))].sort((a, b) => a - b);
      assert.deepEqual(q.partitions.map((p) => p.partition), involved);
      // The same key by --group, after the positional ones.
      const g = await lambdactl(["query", "article_views", "a-2", "--group", "article_id=a-3", ...range, "--json", ...grpc], { cwd: dir });
      assert.equal(g.code, 0, g.stderr);
      assert.deepEqual(
        parseJson<QueryOut>(g).answers.map((a) => [a.key, a.group, a.total]),
        [
          ["a-2", { article_id: "a-2" }, countOf("a-2", from, to)],
          ["a-3", { article_id: "a-3" }, countOf("a-3", from, to)],
        ],
      );
    });

    await t.test("a global metric needs no key; --aggregate picks another aggregate", async () => {
      const r = await lambdactl(["query", "site_traffic", ...range, "--json", ...grpc], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      const q = parseJson<QueryOut>(r);
      assert.equal(q.aggregate, "views");
      assert.equal(q.answers.length, 1);
      assert.deepEqual(q.answers[0]!.group, {});
      assert.equal(q.answers[0]!.total, eventsIn(from, to).length);
      const v = await lambdactl(["query", "site_traffic", "--aggregate", "visitors", ...range, "--json", ...grpc], { cwd: dir });
      assert.equal(v.code, 0, v.stderr);
      const visitors = parseJson<QueryOut>(v);
      assert.equal(visitors.aggregate, "visitors");
      // distinct is a HyperLogLog estimate: at this size within a fraction of one.
      const distinctUsers = new Set(eventsIn(from, to).map((e) => e.user_id)).size;
      assert.ok(Math.abs(visitors.answers[0]!.total! - distinctUsers) < 0.5, `visitors ${visitors.answers[0]!.total}, expected about ${distinctUsers}`);
      const text = await lambdactl(["query", "site_traffic", ...range, ...grpc], { cwd: dir });
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^site_traffic views, windows starting in /);
      assert.match(text.stdout, new RegExp(`^total\\s+batch part\\s+speed part\\s+events\n\\s*${eventsIn(from, to).length}\\s`, "m"));
      // The estimate shows as a whole number marked ≈ (the JSON above keeps the computed value).
      const vText = await lambdactl(["query", "site_traffic", "--aggregate", "visitors", ...range, ...grpc], { cwd: dir });
      assert.equal(vText.code, 0, vText.stderr);
      assert.match(vText.stdout, new RegExp(`^total\\s+batch part\\s+speed part\\s+events\n\\s*≈${distinctUsers}\\s+(?:-|≈0)\\s+≈${distinctUsers}\\s+${eventsIn(from, to).length}$`, "m"));
      assert.match(vText.stdout, /≈: an estimate of the HyperLogLog sketch/);
    });

    await t.test("--series: the value of every window with events, per key", async () => {
      const r = await lambdactl(["query", "article_views", "a-1", "a-4", "--series", ...range, "--json", ...grpc], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      const q = parseJson<QueryOut>(r);
      for (const a of q.answers) {
        const windows = new Map<number, number>();
        for (const e of eventsIn(from, to).filter((e) => e.article_id === a.key)) windows.set(windowOf(e), (windows.get(windowOf(e)) ?? 0) + 1);
        const expected = [...windows].sort(([x], [y]) => x - y).map(([w, n]) => [new Date(w).toISOString(), n, n]);
        assert.deepEqual(a.series!.map((w) => [w.windowStart, w.value, w.events]), expected, a.key);
      }
      const text = await lambdactl(["query", "article_views", "a-1", "--series", ...range, ...grpc], { cwd: dir });
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^windows of article_id=a-1:\nwindow start\s+value\s+batch part\s+speed part\s+events$/m);
      assert.match(text.stdout, new RegExp(`^${new Date(t0).toISOString()}\\s+2\\s+0\\s+2\\s+2$`, "m"));
    });

    await t.test("an aggregate with no value: null in JSON, - in text", async () => {
      // No event carries load_ms, so there is no quantile of it.
      const args = ["query", "article_engagement", "a-1", "--aggregate", "load_ms", "--quantile", "0.9", ...range, ...grpc];
      const r = await lambdactl([...args, "--json"], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      const q = parseJson<QueryOut>(r);
      assert.equal(q.quantile, 0.9);
      assert.deepEqual([q.answers[0]!.total, q.answers[0]!.batchPart, q.answers[0]!.speedPart], [null, null, null]);
      const text = await lambdactl(args, { cwd: dir });
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^article_engagement load_ms \(q=0\.9\),/);
      assert.match(text.stdout, /^a-1\s+-\s+-\s+-\s+\d+$/m);
    });

    await t.test("query as text: the heading, the answers table and the partition table", async () => {
      const r = await lambdactl(["query", "article_views", "a-1", "a-2", ...range, ...grpc], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^article_views views, windows starting in \[\S+, \S+\), watermark run 0 \(no batch run yet/);
      assert.match(r.stdout, /^article_id\s+total\s+batch part\s+speed part\s+events$/m);
      for (const key of ["a-1", "a-2"]) {
        const n = countOf(key, from, to);
        assert.match(r.stdout, new RegExp(`^${key}\\s+${n}\\s+0\\s+${n}\\s+${n}$`, "m"));
      }
      assert.match(r.stdout, /^partition\s+cut seq\s+applied seq\s+speed events held\s+generation$/m);
      assert.match(r.stdout, /^speed events held\s+\d+ /m);
    });

    await t.test("top: keys ranked by count, as the events say", async () => {
      const expected = ranking(from, to);
      assert.ok(expected.length >= 4 && expected[0]!.count > expected[1]!.count, "the test's events rank several articles");
      const r = await lambdactl(["top", "article_views", ...range, "--json", ...grpc], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      const out = parseJson<TopOut>(r);
      assert.equal(out.k, 10);
      assert.deepEqual(
        out.entries.map((e) => ({ rank: e.rank, key: e.key, total: e.total })),
        expected.map((x, i) => ({ rank: i + 1, key: x.key, total: x.count })),
      );
      const two = await lambdactl(["top", "article_views", ...range, "-k", "2", "--json", ...grpc], { cwd: dir });
      assert.deepEqual(parseJson<TopOut>(two).entries.map((e) => e.key), expected.slice(0, 2).map((x) => x.key));
      const where = await lambdactl(["top", "article_views", ...range, "--where", "article_id=a-4", "--json", ...grpc], { cwd: dir });
      assert.equal(where.code, 0, where.stderr);
      assert.deepEqual(parseJson<TopOut>(where).entries.map((e) => [e.key, e.total]), [["a-4", countOf("a-4", from, to)]]);
      const text = await lambdactl(["top", "article_views", ...range, "-k", "3", ...grpc], { cwd: dir });
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^article_views views, top 3, windows starting in /);
      assert.match(text.stdout, /^rank\s+article_id\s+total\s+batch part\s+speed part\s+events$/m);
      assert.match(text.stdout, new RegExp(`^\\s+1\\s+${expected[0]!.key}\\s+${expected[0]!.count}\\s`, "m"));
    });

    await t.test("a metric grouped by two fields: --group per field, top --where, times shown as times", async () => {
      const r = await lambdactl(["ingest", "orders", ordersFile, "--json"], { cwd: dir, env: natsEnv });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(parseJson<IngestOut>(r).accepted, orders.length);
      await cluster.waitForSpeedCaughtUp();
      // order_flow: 1-hour windows, grouped by currency and status; every order here passes its filter.
      const hour = ["--from", "2026-06-08T14:00Z", "--to", "2026-06-08T15:00Z"];
      const ordersOf = (currency: string, status: string) => orders.filter((o) => o.currency === currency && o.status === status);
      const q = await lambdactl(["query", "order_flow", "--group", "currency=EUR", "--group", "status=paid", ...hour, "--json", ...grpc], { cwd: dir });
      assert.equal(q.code, 0, q.stderr);
      const a = parseJson<QueryOut>(q).answers;
      assert.deepEqual(a.map((x) => [x.group, x.total]), [[{ currency: "EUR", status: "paid" }, ordersOf("EUR", "paid").length]]);
      const lastAt = Math.max(...ordersOf("EUR", "paid").map((o) => o.ts));
      const last = await lambdactl(["query", "order_flow", "--group", "status=paid", "--group", "currency=EUR", "--aggregate", "last_at", ...hour, "--json", ...grpc], { cwd: dir });
      assert.equal(parseJson<QueryOut>(last).answers[0]!.total, lastAt);
      const lastText = await lambdactl(["query", "order_flow", "--group", "currency=EUR", "--group", "status=paid", "--aggregate", "last_at", ...hour, ...grpc], { cwd: dir });
      assert.equal(lastText.code, 0, lastText.stderr);
      assert.match(lastText.stdout, /^currency\s+status\s+total\s+batch part\s+speed part\s+events$/m);
      assert.match(lastText.stdout, new RegExp(`^EUR\\s+paid\\s+${new Date(lastAt).toISOString()}\\s`, "m"));
      assert.match(lastText.stdout, /max: each part is its side alone and the total is taken over both, so the parts do not add up\.$/m);
      // One-field addressing does not fit a two-field metric: the server says so.
      const positional = await lambdactl(["query", "order_flow", "EUR", ...hour, ...grpc], { cwd: dir });
      assert.equal(positional.code, 1, positional.stderr);
      assert.match(positional.stderr, /^lambdactl: INVALID_ARGUMENT: key: order_flow is grouped by 2 fields/m);
      const top = await lambdactl(["top", "order_flow", "--where", "status=paid", ...hour, "--json", ...grpc], { cwd: dir });
      assert.equal(top.code, 0, top.stderr);
      assert.deepEqual(
        parseJson<TopOut>(top).entries.map((e) => [e.group.currency, e.group.status, e.total]),
        [
          ["EUR", "paid", ordersOf("EUR", "paid").length],
          ["USD", "paid", ordersOf("USD", "paid").length],
        ],
      );
    });

    await t.test("metrics: the serving node's catalog, and one metric in detail", async () => {
      const r = await lambdactl(["metrics", "--json", ...grpc], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      const { metrics } = parseJson<{ metrics: MetricOut[] }>(r);
      const views = metrics.find((m) => m.name === "article_views");
      assert.deepEqual(views && { source: views.source, groupBy: views.groupBy, window: views.window, aggregates: views.aggregates, filter: views.filter }, {
        source: "pageviews",
        groupBy: ["article_id"],
        window: "1m",
        aggregates: [{ name: "views", kind: "count", field: null }],
        filter: null,
      });
      assert.deepEqual(metrics.map((m) => m.name), [...cluster.catalog.metrics.keys()]);
      const text = await lambdactl(["metrics", ...grpc], { cwd: dir });
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^name\s+source\s+group by\s+window\s+aggregates\s+filter\s+state$/m);
      assert.match(text.stdout, /^article_views\s+pageviews\s+article_id\s+1m\s+views:count\s+-\s+current$/m);
      // Which definition answers now and which the next run computes: the same while the catalog is unchanged.
      const fp = metricFingerprint(cluster.catalog.metrics.get("article_views")!);
      assert.deepEqual(views && [views.definition, views.nextDefinition, views.state], [fp, fp, "current"]);
      const one = await lambdactl(["metrics", "article_views", "--json", ...grpc], { cwd: dir });
      assert.equal(one.code, 0, one.stderr);
      const detail = parseJson<{ metric: MetricOut; sourceFields: Record<string, string> }>(one);
      assert.equal(detail.metric.name, "article_views");
      assert.equal(detail.sourceFields.article_id, "string");
      assert.equal(detail.sourceFields.ts, "timestamp");
      const oneText = await lambdactl(["metrics", "article_views", ...grpc], { cwd: dir });
      assert.match(oneText.stdout, /^article_id\s+string\s+group by$/m);
      const unknown = await lambdactl(["metrics", "nope", ...grpc], { cwd: dir });
      assert.equal(unknown.code, 1, unknown.stderr);
      assert.match(unknown.stderr, /^lambdactl: INVALID_ARGUMENT: metric: unknown metric "nope"/m);
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
      assert.equal(out.watermark!.eventsCovered, good.length + orders.length);
      assert.deepEqual(out.watermark!.cuts.map((c) => c.partition), Array.from({ length: PARTITIONS }, (_, p) => p));
      assert.ok(out.watermark!.cuts.every((c) => c.seq > 0));
      assert.ok(!Number.isNaN(Date.parse(out.watermark!.publishedAt)));

      const text = await lambdactl(["watermark", ...grpc], { cwd: dir });
      assert.match(text.stdout, /^run\s+1$/m);
      assert.match(text.stdout, /^published at\s+\S+ \(\d.* ago\)$/m);
      assert.match(text.stdout, /^partition\s+cut seq$/m);

      await cluster.waitForSpeedCaughtUp();
      const q = await lambdactl(["query", "article_views", "a-1", "a-4", ...range, "--json", ...grpc], { cwd: dir });
      const answered = parseJson<QueryOut>(q);
      assert.equal(answered.watermarkRun, 1);
      for (const a of answered.answers) {
        assert.equal(a.batchPart, countOf(a.key, from, to), a.key);
        assert.equal(a.speedPart, 0, a.key);
        assert.equal(a.total, countOf(a.key, from, to), a.key);
      }
      const top = await lambdactl(["top", "article_views", ...range, "--json", ...grpc], { cwd: dir });
      const ranked = parseJson<TopOut>(top);
      assert.equal(ranked.watermarkRun, 1);
      assert.deepEqual(
        ranked.entries.map((e) => [e.key, e.total, e.batchPart]),
        ranking(from, to).map((x) => [x.key, x.count, x.count]),
      );
      const queryText = await lambdactl(["query", "article_views", "a-1", ...range, ...grpc], { cwd: dir });
      assert.match(queryText.stdout, /, watermark run 1\n/);
      assert.match(queryText.stdout, /^parts: batch = batch view of run 1; .* batch \+ speed = total\.$/m);
    });

    await t.test("bad arguments: exit 2 with a message naming the problem", async () => {
      const cases: [string[], RegExp][] = [
        [["frobnicate"], /unknown command "frobnicate"/],
        [["query", "article_views", "a-1", "--from", "-1h", "--bogus", ...grpc], /unknown flag --bogus/],
        [["query", "--from", "-1h", ...grpc], /missing argument <metric>/],
        [["query", "article_views", "a-1", ...grpc], /missing flag --from/],
        [["query", "article_views", "--group", "article_id", "--from", "-1h", ...grpc], /--group: expected field=value, got "article_id"/],
        [["query", "order_flow", "--group", "currency=EUR", "--group", "currency=USD", "--from", "-1h", ...grpc], /--group: field "currency" given twice/],
        [["query", "article_engagement", "a-1", "--aggregate", "load_ms", "--quantile", "0", "--from", "-1h", ...grpc], /--quantile: expected a number greater than 0/],
        [["top", "article_views", "--from", "-1h", "-k", "0", ...grpc], /-k: expected a positive integer, got "0"/],
        [["top", "article_views", "--from", "-1h", "--where", "=a-1", ...grpc], /--where: expected field=value with a field name/],
        [["top", "--from", "-1h", ...grpc], /missing argument <metric>/],
        [["metrics", "a", "b", ...grpc], /unexpected argument "b"/],
        [["catalog", "validate"], /validate needs a catalog file/],
        [["catalog", "apply"], /apply needs a catalog file/],
        [["catalog", "show", "catalog/catalog.json"], /show takes no file/],
        [["catalog", "check", "catalog/catalog.json"], /unknown action "check"; expected validate or apply or show/],
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
      const defined = [...cluster.catalog.metrics.keys()].join(", ");
      const r = await lambdactl(["query", "nope", "a-1", "--from", "-1h", ...grpc], { cwd: dir });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, "");
      assert.equal(r.stderr, `lambdactl: INVALID_ARGUMENT: metric: unknown metric "nope"; defined: ${defined}\n`);
      const top = await lambdactl(["top", "nope", "--from", "-1h", ...grpc], { cwd: dir });
      assert.equal(top.code, 1, top.stderr);
      assert.equal(top.stderr, `lambdactl: INVALID_ARGUMENT: metric: unknown metric "nope"; defined: ${defined}\n`);
      // Which keys a metric takes is the server's to say: a one-field metric needs a key.
      const noKey = await lambdactl(["query", "article_views", "--from", "-1h", ...grpc], { cwd: dir });
      assert.equal(noKey.code, 1, noKey.stderr);
      assert.match(noKey.stderr, /^lambdactl: INVALID_ARGUMENT: key: is required/m);
      const badAggregate = await lambdactl(["top", "article_views", "--aggregate", "nope", "--from", "-1h", ...grpc], { cwd: dir });
      assert.equal(badAggregate.code, 1, badAggregate.stderr);
      assert.match(badAggregate.stderr, /^lambdactl: INVALID_ARGUMENT: aggregate: /m);
    });

    await t.test("--json: every failure is one JSON error object on stdout, with the same exit code", async () => {
      const failing = async (args: string[], opts: { cwd?: string; env?: Record<string, string>; input?: string }, code: number): Promise<ErrorOut["error"]> => {
        const r = await lambdactl([...args, "--json"], { cwd: opts.cwd ?? dir, ...opts });
        assert.equal(r.code, code, `${args.join(" ")}: ${r.stdout} ${r.stderr}`);
        assert.equal(r.stderr, "", args.join(" "));
        const out = parseJson<ErrorOut>(r);
        assert.equal(typeof out.error.message, "string", args.join(" "));
        return out.error;
      };
      // Bad command lines, exit 2.
      assert.deepEqual(await failing(["frobnicate"], {}, 2), { code: "USAGE", command: null, message: 'unknown command "frobnicate"; commands: query, top, metrics, watermark, status, run, ingest, catalog, nats-users, completion' });
      const badTimeout = await failing(["query", "article_views", "a-1", "--from", "-1h", "--timeout", "soon", ...grpc], {}, 2);
      assert.equal(badTimeout.code, "USAGE");
      assert.equal(badTimeout.command, "query");
      assert.match(badTimeout.message, /^--timeout: expected a number with a unit \(500ms, 5s, 2m/);
      // Nothing configured, exit 2.
      const none = await failing(["watermark"], { cwd: emptyDir }, 2);
      assert.equal(none.code, "CONFIG");
      assert.match(none.message, /--grpc/);
      // A serving node nobody listens at: UNAVAILABLE with the address, exit 1.
      const dead = await failing(["watermark", "--grpc", "127.0.0.1:1", "--timeout", "2s"], {}, 1);
      assert.equal(dead.code, "UNAVAILABLE");
      assert.equal(dead.unreachable, true);
      assert.equal(dead.target, "127.0.0.1:1");
      assert.equal(dead.targetFrom, "--grpc");
      // The server's refusal: its status name and details, exit 1.
      const defined = [...cluster.catalog.metrics.keys()].join(", ");
      const refused = await failing(["query", "nope", "a-1", "--from", "-1h", "--timeout", "5s", ...grpc], {}, 1);
      assert.equal(refused.code, "INVALID_ARGUMENT");
      assert.equal(refused.details, `metric: unknown metric "nope"; defined: ${defined}`);
      assert.equal(refused.unreachable, false);
      // A run the serving node does not know: RUN_REFUSED, exit 2.
      const run = await failing(["watermark", "diff", "1", "99", ...grpc], {}, 2);
      assert.equal(run.code, "RUN_REFUSED");
      assert.equal(run.command, "watermark diff");
      // NATS unreachable.
      const nats = await failing(["ingest", "pageviews", file, "--nats-url", "nats://127.0.0.1:1", "--prefix", cluster.cfg.prefix, "--partitions", String(PARTITIONS), "--catalog", CATALOG], {}, 1);
      assert.equal(nats.code, "NATS_UNREACHABLE");
      assert.equal(nats.url, "nats://127.0.0.1:1");
      // Refused ingest lines: the usual ingest JSON with the error beside it.
      const r = await lambdactl(["ingest", "pageviews", "-", "--json", ...natsFlags], { cwd: dir, input: lines.join("\n") });
      assert.equal(r.code, 1, r.stderr);
      const ingested = parseJson<IngestOut>(r);
      assert.equal(ingested.refused, expectedRefusals.length);
      assert.deepEqual(ingested.error, { code: "REFUSED", message: `${expectedRefusals.length} lines were refused (see refusals)` });
      // A successful --json answer has no error.
      const ok = await lambdactl(["watermark", "--json", "--timeout", "5000", ...grpc], { cwd: dir });
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal((parseJson<Partial<ErrorOut>>(ok)).error, undefined);
    });

    await t.test("help: exit 0 on stdout", async () => {
      const r = await lambdactl(["query", "--help"], { cwd: dir });
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^usage: lambdactl query <metric> \[key\.\.\.\] \[flags\]$/m);
      assert.match(r.stdout, /-15m/);
      assert.match(r.stdout, /^ {2}--group <field=value> /m);
      const top = await lambdactl(["top", "-h"], { cwd: dir });
      assert.equal(top.code, 0);
      assert.match(top.stdout, /^usage: lambdactl top <metric> \[flags\]$/m);
      assert.match(top.stdout, /^ {2}-k <n> /m);
      const catalog = await lambdactl(["help", "catalog"], { cwd: dir });
      assert.match(catalog.stdout, /^usage: lambdactl catalog \{validate\|apply\|show\} \[file\] \[flags\]$/m);
      const overview = await lambdactl(["--help"], { cwd: dir });
      assert.equal(overview.code, 0);
      assert.match(overview.stdout, /commands:/);
      for (const c of ["query", "top", "metrics", "watermark", "ingest", "catalog"]) assert.match(overview.stdout, new RegExp(`^ {2}${c} `, "m"), c);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("lambdactl catalog validate: no cluster needed; a broken catalog names the entry, exit 1", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lambdactl-catalog-"));
  try {
    const catalog = loadCatalog(CATALOG);
    const ok = await lambdactl(["catalog", "validate", "catalog/catalog.json"], { cwd: process.cwd() });
    assert.equal(ok.code, 0, ok.stderr);
    const n = { sources: catalog.sources.size, metrics: catalog.metrics.size };
    assert.match(ok.stdout, new RegExp(`^ok: ${n.sources} sources, ${n.metrics} metrics$`, "m"));
    assert.match(ok.stdout, /^article_views\s+pageviews\s+article_id\s+1m\s+views:count\s+-$/m);
    const okJson = await lambdactl(["catalog", "validate", CATALOG, "--json"], { cwd: dir });
    assert.equal(okJson.code, 0, okJson.stderr);
    const c = parseJson<CatalogOut>(okJson);
    assert.equal(c.ok, true);
    assert.deepEqual(c.metrics!.map((m) => m.name), [...catalog.metrics.keys()]);

    const broken = join(dir, "broken-catalog.json");
    writeFileSync(
      broken,
      JSON.stringify({
        sources: { pageviews: { fields: { id: "string", article_id: "string", ts: "timestamp" }, idField: "id", timeField: "ts", partitionKey: "article_id" } },
        metrics: { article_views: { source: "pageviews", groupBy: ["article_id"], window: "1m", aggregates: { views: { sum: "article_id" } } } },
      }),
    );
    const bad = await lambdactl(["catalog", "validate", "broken-catalog.json"], { cwd: dir });
    assert.equal(bad.code, 1, bad.stderr);
    assert.equal(bad.stdout, "");
    assert.match(bad.stderr, /^lambdactl: broken-catalog\.json: metrics\.article_views\.aggregates\.views\.sum: sum needs a field of type int or float; article_id is string$/m);
    const badJson = await lambdactl(["catalog", "validate", "broken-catalog.json", "--json"], { cwd: dir });
    assert.equal(badJson.code, 1, badJson.stderr);
    assert.equal(badJson.stderr, "");
    assert.deepEqual(parseJson<CatalogOut>(badJson), {
      ok: false,
      file: "broken-catalog.json",
      path: "metrics.article_views.aggregates.views.sum",
      reason: "sum needs a field of type int or float; article_id is string",
      error: {
        code: "INVALID_CATALOG",
        message: "broken-catalog.json: metrics.article_views.aggregates.views.sum: sum needs a field of type int or float; article_id is string",
        file: "broken-catalog.json",
      },
    });
    const missing = await lambdactl(["catalog", "validate", "no-such-catalog.json"], { cwd: dir });
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /^lambdactl: no-such-catalog\.json: \(file\): cannot read/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
