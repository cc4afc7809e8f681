/**
 * The fault matrix's F17 seam (src/ch/insert_fault.ts) on real chDB: while inserts-fail exists every
 * insert fails before it reaches the engine and reads go on; once the file is gone inserts land
 * again, and nothing refused was written.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { queryRows } from "../../src/ch/client.js";
import { FaultFiles, InjectedInsertFault, withFaultSeams } from "../../src/ch/insert_fault.js";
import { loadCatalog } from "../../src/core/catalog.js";
import { openTestChdb } from "../harness/chdb.js";

test("while inserts-fail exists every insert is refused and reads go on; afterwards inserts land and nothing refused was written", async () => {
  await using chdb = await openTestChdb("insert-fault");
  const faultDir = join(chdb.path, "..");
  const file = join(faultDir, FaultFiles.insertsFail);
  const ch = withFaultSeams(chdb.ch, faultDir);
  assert.notEqual(ch, chdb.ch);
  assert.equal(withFaultSeams(chdb.ch, ""), chdb.ch, "off without a directory");
  await ch.client.command({ query: "CREATE DATABASE IF NOT EXISTS f17" });
  await ch.client.command({ query: "CREATE TABLE f17.t (x UInt32) ENGINE = MergeTree ORDER BY x" });
  const count = async () => Number((await queryRows<{ n: string }>(ch.client, "SELECT count() AS n FROM f17.t"))[0]!.n);
  await ch.client.insert({ table: "f17.t", values: [{ x: 1 }], format: "JSONEachRow" });

  writeFileSync(file, "");
  const source = loadCatalog("catalog/catalog.json").sources.get("pageviews")!;
  const refused = (err: unknown) => err instanceof InjectedInsertFault && err.message.includes(file);
  await assert.rejects(ch.client.insert({ table: "f17.t", values: [{ x: 2 }], format: "JSONEachRow" }), refused);
  await assert.rejects(ch.client.command({ query: "INSERT INTO f17.t VALUES (3)" }), refused);
  await assert.rejects(ch.client.command({ query: "  insert into f17.t SELECT 4" }), refused);
  await assert.rejects(ch.master.insert("f17", source, []), refused);
  assert.equal(await count(), 1, "reads go on; nothing refused was written");
  await ch.client.command({ query: "CREATE TABLE f17.u (x UInt32) ENGINE = MergeTree ORDER BY x" }); // not an insert: goes through

  unlinkSync(file);
  await ch.client.insert({ table: "f17.t", values: [{ x: 5 }], format: "JSONEachRow" });
  await ch.client.command({ query: "INSERT INTO f17.t VALUES (6)" });
  assert.deepEqual((await queryRows<{ x: number }>(ch.client, "SELECT x FROM f17.t ORDER BY x")).map((r) => r.x), [1, 5, 6]);
});
