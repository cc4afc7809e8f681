/** ensureSchema on a database an older build made (real chDB): columns of new optional fields added, old scratch tables gone. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCatalog } from "../../src/core/catalog.js";
import { queryRows } from "../../src/ch/client.js";
import { ensureSchema } from "../../src/ch/schema.js";
import { openTestChdb } from "../harness/chdb.js";

const doc = (fields: Record<string, string>) => ({
  sources: { pv: { fields: { id: "string", article: "string", ts: "timestamp", ...fields }, idField: "id", timeField: "ts", partitionKey: "article" } },
  metrics: { views: { source: "pv", groupBy: ["article"], window: "1m", aggregates: { n: "count" } } },
});

test("ensureSchema adds the columns of new optional fields, keeps the rows, and drops the old first-copies table", async () => {
  await using db = await openTestChdb("schema");
  const client = db.ch.client;
  await ensureSchema(client, "s1", parseCatalog(doc({}), "v1"));
  await client.command({ query: "INSERT INTO s1.master_pv VALUES (0, 1, 'e1', 'e1', 'a', now64(3))" });
  await client.command({ query: "CREATE TABLE s1.first_pv (_run UInt64) ENGINE = MergeTree ORDER BY tuple()" });

  await ensureSchema(client, "s1", parseCatalog(doc({ referrer: "string?", score: "float?" }), "v2"));
  const columns = async (table: string) => (await queryRows<{ name: string; type: string }>(client, "SELECT name, type FROM system.columns WHERE database = 's1' AND table = {t:String} ORDER BY position", { t: table })).map((c) => `${c.name} ${c.type}`);
  for (const table of ["master_pv", "repeated_pv"]) {
    const cols = await columns(table);
    assert.ok(cols.includes("referrer Nullable(String)") && cols.includes("score Nullable(Float64)"), `${table}: ${cols.join(", ")}`);
  }
  const rows = await queryRows<{ id: string; referrer: string | null }>(client, "SELECT id, referrer FROM s1.master_pv");
  assert.deepEqual(rows, [{ id: "e1", referrer: null }], "the row from before reads the new field as missing");
  const tables = await queryRows<{ name: string }>(client, "SELECT name FROM system.tables WHERE database = 's1' AND name = 'first_pv'");
  assert.deepEqual(tables, []);
  await ensureSchema(client, "s1", parseCatalog(doc({ referrer: "string?", score: "float?" }), "v2")); // idempotent
});
