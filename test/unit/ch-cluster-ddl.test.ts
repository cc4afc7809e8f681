/**
 * The DDL and the batch SQL in each ClickHouse layout (src/ch/layout.ts), without a cluster: no
 * ClickHouse server can run here, so the text is what is tested. For catalog/catalog.json, every
 * statement ensureSchema runs, the ALTER that adds a field, the drop of a view table and the batch
 * run's SQL are compared with the golden files in test/golden/clickhouse/ (one per layout:
 * single server, cluster, cluster with the master sharded). The single-server file is the text
 * of before clusters existed: a change there changes what every existing deployment runs.
 * Run with LAMBDA_UPDATE_GOLDEN=1 to write the files anew, then read the diff.
 *
 * Beside the golden text, the properties that make a cluster work are checked on their own, so
 * that a golden file updated without reading still fails on them: every DDL runs ON CLUSTER,
 * every table is replicated with a Keeper path of its own, only the sharded master's path holds
 * `{shard}`, the Distributed table shards by stream partition, and IN over the sharded master is
 * GLOBAL.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadCatalog } from "../../src/core/catalog.js";
import { resolveConfig } from "../../src/core/config.js";
import { ConfigError } from "../../src/core/errors.js";
import { dropTableSql, layoutOf, readerSettings, SINGLE_LAYOUT, writerSettings, type ChLayout } from "../../src/ch/layout.js";
import { addColumnsDdl, ident, schemaDdl, viewTable } from "../../src/ch/schema.js";
import { archivedHeadsSql, belowCutStatsSql, coverageSql, recomputeMetricSql, repeatedFirstCopiesSql, repeatedIdsSql } from "../../src/batch/sql.js";

const GOLDEN_DIR = "test/golden/clickhouse";
const DB = "lambda";
const CUTS = [10, 20, 30, 40];
const catalog = loadCatalog("catalog/catalog.json");

const LAYOUTS: Record<string, ChLayout> = {
  single: SINGLE_LAYOUT,
  cluster: { kind: "cluster", cluster: "lambda", sharded: false, keeperPath: "/clickhouse/tables" },
  sharded: { kind: "cluster", cluster: "lambda", sharded: true, keeperPath: "/clickhouse/tables" },
};

/** The statements of a layout, one a line, each headed by a comment that says where it comes from. */
function render(layout: ChLayout): string {
  const out: string[] = [];
  const add = (what: string, sql: string) => out.push(`-- ${what}`, sql);
  for (const sql of schemaDdl(DB, catalog, layout)) add("ensureSchema", sql);
  add("ensureSchema: a field added to the catalog", addColumnsDdl(DB, "master_pageviews", [["referrer", { type: "string", optional: true }]], layout));
  const firstMetric = [...catalog.metrics.values()][0]!;
  add("dropViewsBefore: a view table no definition uses", dropTableSql(layout, viewTable(DB, firstMetric)));
  add("batch run: rows of every source below the cut", belowCutStatsSql(DB, [...catalog.sources.values()], CUTS));
  for (const s of catalog.sources.values()) {
    add(`archiver heads of ${s.name}`, archivedHeadsSql(DB, s));
    add(`batch run: repeated ids of ${s.name}`, repeatedFirstCopiesSql(DB, s, CUTS, layout));
    add(`batch run: how many repeated ids of ${s.name}`, repeatedIdsSql(DB, s));
    add(`batch run: coverage of ${s.name}`, coverageSql(DB, s, CUTS, layout));
  }
  for (const m of catalog.metrics.values()) {
    const params: Record<string, unknown> = {};
    add(`batch run: metric ${m.name}`, recomputeMetricSql(DB, m, catalog.sources.get(m.source)!, CUTS, params, layout));
    if (Object.keys(params).length > 0) out.push(`-- parameters ${JSON.stringify(params)}`);
  }
  return `${out.join("\n")}\n`;
}

for (const [name, layout] of Object.entries(LAYOUTS)) {
  test(`DDL and batch SQL of the ${name} layout match ${GOLDEN_DIR}/${name}.sql`, () => {
    const file = `${GOLDEN_DIR}/${name}.sql`;
    const text = render(layout);
    if (process.env["LAMBDA_UPDATE_GOLDEN"] === "1") {
      mkdirSync(GOLDEN_DIR, { recursive: true });
      writeFileSync(file, text);
    }
    assert.equal(text, readFileSync(file, "utf8"), `${file} differs; LAMBDA_UPDATE_GOLDEN=1 rewrites it, then read its diff`);
  });
}

const statements = (layout: ChLayout) =>
  render(layout)
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("--"));
const ddl = (layout: ChLayout) => statements(layout).filter((s) => /^(CREATE|DROP|ALTER TABLE \S+ (ON CLUSTER \S+ )?ADD)/.test(s));
const keeperPaths = (layout: ChLayout) => statements(layout).flatMap((s) => [...s.matchAll(/ReplicatedMergeTree\('([^']+)', '\{replica\}'\)/g)].map((m) => m[1]!));

test("one server: no ON CLUSTER, no replication, no Distributed table, no GLOBAL IN", () => {
  for (const s of statements(SINGLE_LAYOUT)) assert.doesNotMatch(s, /ON CLUSTER|Replicated|Distributed|GLOBAL| SYNC$/, s);
  assert.equal(ddl(SINGLE_LAYOUT).length, schemaDdl(DB, catalog).length + 2);
});

test("a cluster: every DDL runs ON CLUSTER, every table is replicated on every node with a Keeper path of its own", () => {
  const layout = LAYOUTS["cluster"]!;
  const all = ddl(layout);
  for (const s of all) assert.match(s, / ON CLUSTER `lambda`/, s);
  const creates = all.filter((s) => s.startsWith("CREATE TABLE"));
  for (const s of creates) assert.match(s, /ENGINE = ReplicatedMergeTree\('\/clickhouse\/tables\/lambda\/[a-z0-9_]+', '\{replica\}'\)/, s);
  const paths = keeperPaths(layout);
  assert.equal(paths.length, creates.length);
  assert.equal(new Set(paths).size, paths.length, "one Keeper path per table");
  for (const s of statements(layout)) assert.doesNotMatch(s, /Distributed|GLOBAL/, s);
  for (const s of all.filter((x) => x.startsWith("DROP"))) assert.match(s, / SYNC$/, s);
});

test("a sharded cluster: the master is a per-shard table under a Distributed table by stream partition; views and repeated ids stay whole; IN over the master is GLOBAL", () => {
  const layout = LAYOUTS["sharded"]!;
  const all = ddl(layout);
  for (const s of all) assert.match(s, / ON CLUSTER `lambda`/, s);
  for (const source of catalog.sources.keys()) {
    const local = all.find((s) => s.startsWith(`CREATE TABLE IF NOT EXISTS ${ident(DB)}.${ident(`master_${source}_shard`)}`));
    assert.ok(local, `per-shard table of ${source}`);
    assert.match(local, new RegExp(`ReplicatedMergeTree\\('/clickhouse/tables/\\{shard\\}/lambda/master_${source}_shard', '\\{replica\\}'\\)`));
    const dist = all.find((s) => s.startsWith(`CREATE TABLE IF NOT EXISTS ${ident(DB)}.${ident(`master_${source}`)} `));
    assert.ok(dist, `Distributed table of ${source}`);
    assert.match(dist, new RegExp(`ENGINE = Distributed\\('lambda', 'lambda', 'master_${source}_shard', _partition\\)$`));
    // Same columns on both, in the same order: the Distributed table reads the shards' by name.
    const cols = (s: string) => /\((.*)\) ENGINE/.exec(s)![1];
    assert.equal(cols(dist), cols(local));
    assert.ok(all.indexOf(local) < all.indexOf(dist), "the per-shard table is made first");
  }
  for (const p of keeperPaths(layout)) assert.equal(p.includes("{shard}"), /\/master_[a-z]+_shard$/.test(p), p);
  const global = statements(layout).filter((s) => s.includes("GLOBAL"));
  const batch = statements(layout).filter((s) => / (NOT )?IN \(SELECT/.test(s));
  assert.ok(batch.length > 0);
  for (const s of batch) assert.ok(global.includes(s), `IN over the sharded master must be GLOBAL: ${s.slice(0, 120)}…`);
});

test("the settings that keep a cluster exact go with every writing request, and one server gets none", () => {
  assert.deepEqual(writerSettings(SINGLE_LAYOUT), {});
  assert.deepEqual(readerSettings(SINGLE_LAYOUT), {});
  const unsharded = writerSettings(LAYOUTS["cluster"]!);
  assert.deepEqual(unsharded, { insert_quorum: "auto", insert_quorum_parallel: 0, select_sequential_consistency: "1", insert_deduplicate: 0, alter_sync: "2" });
  assert.deepEqual(writerSettings(LAYOUTS["sharded"]!), { ...unsharded, insert_distributed_sync: 1 });
  assert.deepEqual(readerSettings(LAYOUTS["cluster"]!), { select_sequential_consistency: "1" });
});

test("config: the cluster settings resolve to a layout; a cluster needs a server, sharding needs a cluster, a Keeper path is absolute", () => {
  const url = { LAMBDA_CLICKHOUSE_URL: "http://ch:8123" };
  assert.deepEqual(layoutOf(resolveConfig({})), SINGLE_LAYOUT);
  assert.deepEqual(layoutOf(resolveConfig({ ...url, LAMBDA_CLICKHOUSE_CLUSTER: "lambda" })), { kind: "cluster", cluster: "lambda", sharded: false, keeperPath: "/clickhouse/tables" });
  assert.deepEqual(layoutOf(resolveConfig({ ...url, LAMBDA_CLICKHOUSE_CLUSTER: "c1", LAMBDA_CLICKHOUSE_SHARDED: "true", LAMBDA_CLICKHOUSE_KEEPER_PATH: "/ch/{cluster}/tables" })), {
    kind: "cluster",
    cluster: "c1",
    sharded: true,
    keeperPath: "/ch/{cluster}/tables",
  });
  const refused = (env: Record<string, string>, key: string) =>
    assert.throws(
      () => resolveConfig(env),
      (err: unknown) => err instanceof ConfigError && err.key === key,
      JSON.stringify(env),
    );
  refused({ LAMBDA_CLICKHOUSE_CLUSTER: "lambda" }, "LAMBDA_CLICKHOUSE_CLUSTER");
  refused({ ...url, LAMBDA_CLICKHOUSE_SHARDED: "true" }, "LAMBDA_CLICKHOUSE_SHARDED");
  refused({ ...url, LAMBDA_CLICKHOUSE_SHARDED: "yes" }, "LAMBDA_CLICKHOUSE_SHARDED");
  refused({ ...url, LAMBDA_CLICKHOUSE_CLUSTER: "a b" }, "LAMBDA_CLICKHOUSE_CLUSTER");
  refused({ ...url, LAMBDA_CLICKHOUSE_CLUSTER: "c", LAMBDA_CLICKHOUSE_KEEPER_PATH: "clickhouse/tables" }, "LAMBDA_CLICKHOUSE_KEEPER_PATH");
  refused({ ...url, LAMBDA_CLICKHOUSE_CLUSTER: "c", LAMBDA_CLICKHOUSE_KEEPER_PATH: "/clickhouse/tables/" }, "LAMBDA_CLICKHOUSE_KEEPER_PATH");
  refused({ ...url, LAMBDA_CLICKHOUSE_CLUSTER: "c", LAMBDA_CLICKHOUSE_KEEPER_PATH: "/x'y" }, "LAMBDA_CLICKHOUSE_KEEPER_PATH");
});
