/** How serving/query.ts spreads a query's keys over speed actors: each key to its partition, in runs below a byte budget. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCatalog } from "../../src/core/catalog.js";
import { partitionOfKey } from "../../src/core/events.js";
import { keyChunks, partitionsFor } from "../../src/serving/query.js";
import { encode } from "../../src/nats/codec.js";

const CATALOG = parseCatalog(
  {
    sources: { pv: { fields: { id: "string", article: "string", user: "string", ts: "timestamp" }, idField: "id", timeField: "ts", partitionKey: "article" } },
    metrics: {
      views: { source: "pv", groupBy: ["article"], window: "1m", aggregates: { n: "count" } },
      by_user: { source: "pv", groupBy: ["user"], window: "1m", aggregates: { n: "count" } },
    },
  },
  "query-split.test",
);

test("keys go only to the partition that holds them; without the partition key in the group-by, to every partition", () => {
  const keys = Array.from({ length: 200 }, (_, i) => `a-${i}`);
  const routed = partitionsFor(CATALOG, CATALOG.metrics.get("views")!, keys, 8);
  assert.deepEqual([...routed.keys()], [...routed.keys()].sort((a, b) => a - b), "in partition order");
  assert.deepEqual([...routed.values()].flatMap((ks) => ks ?? []).sort(), [...keys].sort(), "every key once");
  for (const [p, ks] of routed) for (const k of ks ?? []) assert.equal(partitionOfKey(k, 8), p, k);
  const everywhere = partitionsFor(CATALOG, CATALOG.metrics.get("by_user")!, keys, 8);
  assert.deepEqual([...everywhere.keys()], [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.ok([...everywhere.values()].every((ks) => ks === keys));
  assert.deepEqual([...partitionsFor(CATALOG, CATALOG.metrics.get("views")!, null, 3)], [[0, null], [1, null], [2, null]]);
});

test("key runs stay below the byte budget once encoded, keep every key in order, and null stays one ask", () => {
  const keys = Array.from({ length: 1000 }, (_, i) => `k${i}-`.padEnd(1 + (i % 1024), "é"));
  const budget = 65_536;
  const chunks = keyChunks(keys, budget);
  assert.ok(chunks.length > 1);
  for (const c of chunks) assert.ok(encode(c).length <= budget, `a run of ${c!.length} keys encodes to ${encode(c).length} bytes`);
  assert.deepEqual(chunks.flatMap((c) => c ?? []), keys);
  assert.deepEqual(keyChunks(null, budget), [null]);
  assert.deepEqual(keyChunks([], budget), [[]]);
});
