/**
 * The catalog bucket on a real nats-server: which catalog a cluster runs when
 * coordinators restart with the same or another file, what an apply writes or
 * refuses, and how a follower sees new versions.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { catalogFingerprint, parseCatalog, type CatalogFile } from "../../src/core/catalog.js";
import { silentLogger } from "../../src/core/logger.js";
import { applyCatalog, CatalogRefusedError, followCatalog, readStoredCatalog, seedCatalog } from "../../src/nats/catalog_store.js";
import { connectNats } from "../../src/nats/connect.js";
import { namesFor } from "../../src/nats/names.js";
import { openBuckets } from "../../src/nats/setup.js";
import { startTestNats } from "../harness/nats.js";
import { waitFor } from "../harness/wait.js";

/** A catalog document: one source, and the metrics given. */
function doc(metrics: Record<string, unknown>, extraFields: Record<string, string> = {}): Record<string, unknown> {
  return {
    sources: { pv: { fields: { id: "string", article: "string", ts: "timestamp", ...extraFields }, idField: "id", timeField: "ts", partitionKey: "article" } },
    metrics,
  };
}
const file = (document: Record<string, unknown>, path: string): CatalogFile => ({ path, document, catalog: parseCatalog(document, path) });

const V1 = file(doc({ views: { source: "pv", groupBy: ["article"], window: "1m", aggregates: { n: "count" } } }), "v1.json");
const V2 = file(doc({ views: { source: "pv", groupBy: ["article"], window: "5m", aggregates: { n: "count" } } }, { referrer: "string?" }), "v2.json");
const V3 = file(doc({ hourly: { source: "pv", window: "1h", aggregates: { n: "count" } } }, { referrer: "string?" }), "v3.json");

test("catalog bucket: a coordinator's file seeds it once; a later apply stands until the file changes; bad changes are refused", async () => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, "catalog-store-test");
  try {
    const kv = (await openBuckets(nc, namesFor(`cat${process.pid}`))).catalog;
    assert.equal(await readStoredCatalog(kv), null);

    const first = await seedCatalog(kv, V1, "c-1", silentLogger);
    assert.deepEqual([first.version, first.fingerprint, first.origin], [1, catalogFingerprint(V1.catalog), "file v1.json (coordinator c-1)"]);
    const follower = await followCatalog(kv, V1.catalog, silentLogger);
    const seen: number[] = [];
    follower.subscribe((_c, v) => void seen.push(v));
    assert.equal(follower.version(), 1);

    // The same file again (a restart): nothing written.
    assert.equal((await seedCatalog(kv, V1, "c-2", silentLogger)).version, 1);

    // An operator applies v2; a coordinator restarting with the old file keeps v2.
    const applied = await applyCatalog(kv, V2, { origin: "lambdactl catalog apply v2.json" });
    assert.deepEqual([applied.stored.version, applied.changed], [2, true]);
    await waitFor("the follower to see version 2", async () => follower.version() === 2 && seen.includes(2));
    assert.ok(follower.current().sources.get("pv")!.fields.referrer, "the follower's catalog is version 2's");
    assert.equal((await seedCatalog(kv, V1, "c-3", silentLogger)).version, 2, "the unchanged file does not undo an apply");
    assert.equal((await applyCatalog(kv, V2, { origin: "again" })).changed, false, "the same catalog again writes nothing");

    // A coordinator deployed with a changed file applies it.
    const seeded = await seedCatalog(kv, V3, "c-4", silentLogger);
    assert.deepEqual([seeded.version, seeded.origin, seeded.fileFingerprint], [3, "file v3.json (coordinator c-4)", catalogFingerprint(V3.catalog)]);
    await waitFor("the follower to see version 3", async () => follower.version() === 3);
    assert.deepEqual(seen, [2, 3], "listeners called once per version, in order");

    // Going back to a file without the optional field would drop a stored column: refused, nothing written.
    await assert.rejects(
      seedCatalog(kv, V1, "c-5", silentLogger),
      (e: unknown) => e instanceof CatalogRefusedError && e.runningVersion === 3 && /sources\.pv\.fields\.referrer: removed/.test(e.message),
    );
    const required = file(doc({}, { referrer: "string?", lang: "string" }), "required.json");
    await assert.rejects(applyCatalog(kv, required, { origin: "x" }), /sources\.pv\.fields\.lang: new and required: stored events lack it; declare it optional \("string\?"\)/);
    const rekeyed = file({ ...doc({}, { referrer: "string?" }), sources: { pv: { fields: { id: "string", article: "string", ts: "timestamp", referrer: "string?" }, idField: "id", timeField: "ts", partitionKey: "id" } } }, "rekeyed.json");
    await assert.rejects(applyCatalog(kv, rekeyed, { origin: "x" }), /sources\.pv\.partitionKey: was "article", now "id": stored events were partitioned by the old one/);
    assert.equal((await readStoredCatalog(kv))!.stored.version, 3);
    follower.stop();
  } finally {
    await nc.close();
    await nats.close();
  }
});
