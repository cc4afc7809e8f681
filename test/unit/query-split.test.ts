/**
 * How serving/query_plan.ts spreads a query's keys over speed actors: each key to its partition, in runs
 * below a byte budget, and a speed answer too large for one NATS message in halves.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCatalog } from "../../src/core/catalog.js";
import { partitionOfKey } from "../../src/core/events.js";
import { keyChunks, partitionsFor, splitSpeedQuery } from "../../src/serving/query_plan.js";
import { keyShard } from "../../src/actors/speed_state.js";
import type { SpeedQuery } from "../../src/actors/index.js";
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

test("a speed query too large to answer in one message splits into halves that ask exactly what it asked", () => {
  const base: SpeedQuery = { run: 3, metric: "views", definition: "d", keys: ["a", "b", "c"], fromMs: 0, toMs: 600_000, series: true, generation: 2 };
  const [k1, k2] = splitSpeedQuery(base)!;
  assert.deepEqual([k1.keys, k2.keys], [["a", "b"], ["c"]]);
  assert.ok([k1, k2].every((h) => h.fromMs === 0 && h.toMs === 600_000 && h.generation === 2 && h.run === 3));

  // One key: two halves of the range; every window start lands in exactly one of them.
  const [r1, r2] = splitSpeedQuery({ ...base, keys: ["a"] })!;
  assert.deepEqual([r1.fromMs, r1.toMs, r2.fromMs, r2.toMs], [0, 300_000, 300_000, 600_000]);
  assert.equal(splitSpeedQuery({ ...base, keys: ["a"], fromMs: 5, toMs: 6 }), null, "a 1 ms range cannot be split");

  // Every key: shards, doubling, that cover each key once at every depth.
  const keys = Array.from({ length: 2_000 }, (_, i) => `a-${i}`).filter((k) => partitionOfKey(k, 8) === 5); // one partition's keys
  let shards: SpeedQuery[] = [{ ...base, keys: null }];
  for (let depth = 1; depth <= 4; depth++) {
    shards = shards.flatMap((s) => splitSpeedQuery(s)!);
    assert.equal(shards.length, 2 ** depth);
    const counts = shards.map((s) => keys.filter((k) => keyShard(k, s.shard!.count) === s.shard!.index).length);
    assert.equal(counts.reduce((a, b) => a + b, 0), keys.length, `depth ${depth}: every key in exactly one shard`);
    // The salt keeps one partition's keys from landing in one shard (their unsalted hash agrees modulo 8).
    assert.ok(Math.max(...counts) < keys.length * (1.5 / 2 ** depth), `depth ${depth}: shards of ${counts.join(", ")}`);
  }
});
