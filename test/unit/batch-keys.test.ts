/**
 * The key filter in front of batch reads: a key the view version lacks is answered empty
 * without a read once the version's key set is loaded, a key that is there is read as before,
 * and a key that appears in a later run is read at that run. Until a set is loaded, when its
 * read failed, or when the version has too many keys, every read goes through.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCatalog } from "../../src/core/catalog.js";
import type { BatchKeys, BatchStates } from "../../src/ch/views.js";
import { keyFilteredBatchReader } from "../../src/serving/batch_keys.js";
import type { BatchReader } from "../../src/serving/query.js";

const CATALOG = parseCatalog(
  {
    sources: { pv: { fields: { id: "string", article: "string", ts: "timestamp" }, idField: "id", timeField: "ts", partitionKey: "article" } },
    metrics: { views: { source: "pv", groupBy: ["article"], window: "1m", aggregates: { n: "count" } } },
  },
  "batch-keys.test",
);
const METRIC = CATALOG.metrics.get("views")!;

/** View versions: run → key → event count in window 0. */
type Views = Map<number, Map<string, number>>;

function fakeView(views: Views) {
  const reads: { run: number; keys: readonly string[] | null }[] = [];
  const keyReads: number[] = [];
  let failKeys = false;
  const read: BatchReader = async (_m, run, keys) => {
    reads.push({ run, keys });
    const out: BatchStates = new Map();
    for (const [k, n] of views.get(run) ?? []) if (keys === null || keys.includes(k)) out.set(k, new Map([[0, { n, parts: [{ k: "count" }] }]]));
    return out;
  };
  const readKeys = async (_m: unknown, run: number, limit: number): Promise<BatchKeys> => {
    keyReads.push(run);
    if (failKeys) throw new Error("ClickHouse is away");
    const keys = new Set(views.get(run)?.keys() ?? []);
    return keys.size > limit ? { kind: "too_many", limit } : { kind: "keys", keys };
  };
  return { read, readKeys, reads, keyReads, fail: (on: boolean) => (failKeys = on) };
}

/** Lets the key set reads started so far finish. */
const settle = () => new Promise((r) => setImmediate(r));
const count = (s: BatchStates, k: string) => s.get(k)?.get(0)?.n ?? 0;

test("a key the version lacks is answered empty without a read once its set is loaded; a present key is read", async () => {
  const v = fakeView(new Map([[1, new Map([["a", 3], ["b", 1]])]]));
  const f = keyFilteredBatchReader(v.read, v.readKeys);
  // The first read starts the set's read and does not wait for it.
  assert.equal(count(await f.read(METRIC, 1, ["new-1"], 0, 60_000), "new-1"), 0);
  assert.equal(v.reads.length, 1);
  await settle();
  assert.equal((await f.read(METRIC, 1, ["new-2"], 0, 60_000)).size, 0);
  assert.equal(v.reads.length, 1, "no read for a key the version lacks");
  assert.equal(count(await f.read(METRIC, 1, ["a"], 0, 60_000), "a"), 3);
  // Several keys: only the present ones are read, and the answer is the same.
  const many = await f.read(METRIC, 1, ["x", "b", "y"], 0, 60_000);
  assert.deepEqual(v.reads.at(-1)!.keys, ["b"]);
  assert.equal(count(many, "b"), 1);
  assert.equal(v.keyReads.length, 1, "one set read per (run, metric)");
  assert.deepEqual(f.stats(), { skipped: 1, narrowed: 1, sets: 1, keys: 2 });
});

test("a key absent at run 1 is read at run 2, whose view holds it", async () => {
  const views: Views = new Map([[1, new Map([["a", 1]])]]);
  const v = fakeView(views);
  const f = keyFilteredBatchReader(v.read, v.readKeys);
  await f.read(METRIC, 1, ["late"], 0, 60_000);
  await settle();
  assert.equal((await f.read(METRIC, 1, ["late"], 0, 60_000)).size, 0);
  views.set(2, new Map([["a", 1], ["late", 5]]));
  // Run 2's set is not loaded yet: the read goes through; once loaded, the key is in it.
  assert.equal(count(await f.read(METRIC, 2, ["late"], 0, 60_000), "late"), 5);
  await settle();
  assert.equal(count(await f.read(METRIC, 2, ["late"], 0, 60_000), "late"), 5);
  assert.deepEqual(v.reads.at(-1), { run: 2, keys: ["late"] });
});

test("top-k, a failed set read (retried after the pause) and a version with too many keys read through", async () => {
  const v = fakeView(new Map([[1, new Map([["a", 1], ["b", 2], ["c", 3]])], [2, new Map([["a", 1]])]]));
  let now = 0;
  const errors: string[] = [];
  const f = keyFilteredBatchReader(v.read, v.readKeys, { maxKeysPerSet: 2, retryMs: 1_000, now: () => now, onError: (e) => errors.push(String(e)) });
  // Run 1 has three keys, more than a set may hold: reads go through for good.
  await f.read(METRIC, 1, ["zz"], 0, 60_000);
  await settle();
  await f.read(METRIC, 1, ["zz"], 0, 60_000);
  assert.equal(v.reads.length, 2);
  assert.equal((await f.read(METRIC, 1, null, 0, 60_000)).size, 3, "top-k reads every key");
  // Run 2: the set read fails; reads go through, and the set is read again after the pause.
  v.fail(true);
  await f.read(METRIC, 2, ["zz"], 0, 60_000);
  await settle();
  assert.equal(errors.length, 1);
  await f.read(METRIC, 2, ["zz"], 0, 60_000);
  assert.equal(v.keyReads.filter((r) => r === 2).length, 1, "no second set read before the pause");
  v.fail(false);
  now = 1_000;
  await f.read(METRIC, 2, ["zz"], 0, 60_000);
  await settle();
  const before = v.reads.length;
  assert.equal((await f.read(METRIC, 2, ["zz"], 0, 60_000)).size, 0);
  assert.equal(v.reads.length, before, "skipped once the retried set is loaded");
});

test("only the two newest runs of a metric keep a set", async () => {
  const views: Views = new Map([1, 2, 3].map((r) => [r, new Map([[`k${r}`, r]])]));
  const v = fakeView(views);
  const f = keyFilteredBatchReader(v.read, v.readKeys);
  for (const run of [1, 2, 3]) await f.read(METRIC, run, ["x"], 0, 60_000);
  await settle();
  assert.deepEqual(f.stats(), { skipped: 0, narrowed: 0, sets: 2, keys: 2 });
  // Run 1 is older than the runs kept: its reads go through and start no set read.
  const keyReads = v.keyReads.length;
  assert.equal(count(await f.read(METRIC, 1, ["k1"], 0, 60_000), "k1"), 1);
  await settle();
  assert.equal(v.keyReads.length, keyReads);
  assert.equal(f.stats().sets, 2);
});
