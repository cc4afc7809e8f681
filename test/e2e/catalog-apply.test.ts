/**
 * `lambdactl catalog apply` on a running cluster, no restart: a new source, a
 * new optional field and a redefined metric reach every role at once. The
 * coordinator adopts the change with a run over the whole history, ingest
 * accepts the new source and field, the archiver stores them, the speed actors
 * count them, and every answer equals a recount of the events. A change the
 * running catalog cannot take is refused and nothing is applied.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { metricFingerprint, parseCatalog } from "../../src/core/catalog.js";
import type { CatalogApplyJson, CatalogShowJson } from "../../src/cli/commands/catalog.js";
import { lambdactl, parseJson } from "../harness/cli.js";
import { startTestCluster } from "../harness/cluster.js";
import { getWatermark, query } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";

const T0 = Date.UTC(2026, 5, 8, 12, 0, 0);
const FROM = T0 - 3_600_000;
const TO = T0 + 3_600_000;
const PARTITIONS = 2;

interface Pageview {
  readonly id: string;
  readonly article_id: string;
  readonly user_id: string;
  readonly ts: number;
  readonly referrer?: string;
}

test("a catalog applied to a running cluster reaches every role without a restart, exactly", { timeout: 180_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: PARTITIONS, speedNodes: 2 });
  const dir = mkdtempSync(join(tmpdir(), "lambda-catalog-apply-"));
  const nats = ["--nats-url", cluster.cfg.natsUrl, "--prefix", cluster.cfg.prefix, "--partitions", String(PARTITIONS)];
  try {
    const a: Pageview[] = Array.from({ length: 80 }, (_, i) => ({ id: `a-${i}`, article_id: `a-${i % 4}`, user_id: `u-${i % 5}`, ts: T0 + i * 30_000 }));
    await cluster.ingest.publishBatch("pageviews", a);
    await cluster.waitForSpeedCaughtUp();
    await cluster.roles.coordinator!.runNow(); // run 1

    const doc = JSON.parse(readFileSync(cluster.cfg.catalogPath, "utf8"));
    // Listed first: the table adds the column last, so inserts must name their columns.
    doc.sources.pageviews.fields = { referrer: "string?", ...doc.sources.pageviews.fields };
    doc.sources.signups = { fields: { id: "string", user_id: "string", plan: "string", ts: "timestamp" }, idField: "id", timeField: "ts", partitionKey: "user_id" };
    doc.metrics.signups_by_plan = { source: "signups", groupBy: ["plan"], window: "1h", aggregates: { signups: "count" } };
    doc.metrics.referred_views = { source: "pageviews", groupBy: ["article_id"], window: "1h", aggregates: { views: "count" }, filter: { field: "referrer", op: "eq", value: "r-1" } };
    doc.metrics.article_views.filter = { field: "user_id", op: "ne", value: "u-0" };
    const next = parseCatalog(doc, "next");
    const file = join(dir, "next.json");
    writeFileSync(file, JSON.stringify(doc, null, 2));

    const applied = await lambdactl(["catalog", "apply", file, "--json", ...nats], { cwd: dir });
    assert.equal(applied.code, 0, applied.stderr);
    const out = parseJson<CatalogApplyJson>(applied);
    assert.deepEqual([out.version, out.previousVersion, out.changed], [2, 1, true]);
    assert.deepEqual(out.changes, {
      sourcesAdded: ["signups"],
      fieldsAdded: ["pageviews.referrer"],
      metricsAdded: ["signups_by_plan", "referred_views"],
      metricsRedefined: ["article_views"],
      metricsRemoved: [],
    });

    // The coordinator adopts it at once: run 2, the new definition over the whole history.
    const views = (evs: readonly Pageview[]) => evs.filter((e) => e.article_id === "a-1" && e.user_id !== "u-0").length;
    await waitFor("run 2 adopting catalog version 2", async () => (await getWatermark(cluster.grpc)).watermark?.run === 2);
    const adopted = await query(cluster.grpc, "article_views", "a-1", FROM, TO);
    assert.equal(adopted.response.definition, metricFingerprint(next.metrics.get("article_views")!));
    assert.deepEqual([adopted.total, adopted.batchPart, adopted.speedPart], [views(a), views(a), 0]);

    // Ingest takes the new source and field (the harness's ingest follows the catalog, lambdactl reads the cluster's).
    const b: Pageview[] = Array.from({ length: 60 }, (_, i) => ({ id: `b-${i}`, article_id: `a-${i % 4}`, user_id: `u-${i % 5}`, ts: T0 + i * 30_000, referrer: `r-${i % 3}` }));
    const pv = await cluster.ingest.publishBatch("pageviews", b);
    assert.deepEqual([pv.accepted, pv.refused.length], [b.length, 0], JSON.stringify(pv.refused));
    const signups = Array.from({ length: 30 }, (_, i) => ({ id: `s-${i}`, user_id: `u-${i}`, plan: i % 3 === 0 ? "pro" : "free", ts: T0 + i * 60_000 }));
    const ingested = await lambdactl(["ingest", "signups", "-", "--json", ...nats], { cwd: dir, input: signups.map((s) => JSON.stringify(s)).join("\n") });
    assert.equal(ingested.code, 0, ingested.stderr);
    assert.equal(parseJson<{ accepted: number }>(ingested).accepted, signups.length);

    // A client configured with another partition count would send events to the wrong actors: refused.
    const misrouted = await lambdactl(["ingest", "signups", "-", ...nats.slice(0, -1), "3"], { cwd: dir, input: JSON.stringify(signups[0]) });
    assert.equal(misrouted.code, 1, misrouted.stdout);
    assert.match(misrouted.stderr, /this cluster has 2 partitions .* this process is configured with 3/);

    // The speed layer counts them under the new catalog...
    const pro = signups.filter((s) => s.plan === "pro").length;
    const referred = b.filter((e) => e.referrer === "r-1" && e.article_id === "a-1").length;
    await waitFor("speed answers for the new source and field", async () => {
      const [s, r, v] = await Promise.all([
        query(cluster.grpc, "signups_by_plan", "pro", FROM, TO),
        query(cluster.grpc, "referred_views", "a-1", FROM, TO),
        query(cluster.grpc, "article_views", "a-1", FROM, TO),
      ]);
      return s.speedPart === pro && r.speedPart === referred && v.total === views([...a, ...b]);
    });
    // ...and the next run finds them archived, the new column included.
    await cluster.roles.coordinator!.runNow(); // run 3
    for (const [metric, key, want] of [["signups_by_plan", "pro", pro], ["referred_views", "a-1", referred], ["article_views", "a-1", views([...a, ...b])]] as const) {
      const r = await query(cluster.grpc, metric, key, FROM, TO);
      assert.deepEqual([r.watermarkRun, r.total, r.batchPart, r.speedPart], [3, want, want, 0], metric);
    }

    const shown = await lambdactl(["catalog", "show", "--json", ...nats], { cwd: dir });
    assert.equal(shown.code, 0, shown.stderr);
    const show = parseJson<CatalogShowJson>(shown);
    assert.deepEqual([show.version, show.origin], [2, `lambdactl catalog apply ${file}`]);
    assert.ok(show.metrics.some((m) => m.name === "signups_by_plan"));

    // The same file again changes nothing; one the running catalog cannot take is refused whole.
    const again = await lambdactl(["catalog", "apply", file, ...nats], { cwd: dir });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^unchanged: the cluster already runs this catalog \(version 2\)$/m);
    delete doc.sources.clicks;
    doc.sources.pageviews.fields.country = "int?";
    doc.metrics = { article_views: doc.metrics.article_views };
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify(doc));
    const refused = await lambdactl(["catalog", "apply", bad, ...nats], { cwd: dir });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /sources\.clicks: removed: the master dataset holds its events/);
    assert.match(refused.stderr, /sources\.pageviews\.fields\.country: was string\?, now int\?/);
    assert.match(refused.stderr, /cannot replace the cluster's catalog version 2; nothing was applied/);
    assert.equal(parseJson<CatalogShowJson>(await lambdactl(["catalog", "show", "--json", ...nats], { cwd: dir })).version, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
