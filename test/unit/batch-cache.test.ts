/**
 * The batch-view cache cuts ranges out of per-key blocks: every read through it must equal the
 * same read straight from the view, for any keys and range, per run, and a failed read must not
 * stay. The view here is a table of rows read with the selection ch/views.ts makes (windows
 * starting in [from, to), the keys asked, the run's rows only).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { AggState } from "../../src/core/aggregate.js";
import { parseCatalog } from "../../src/core/catalog.js";
import type { BatchStates } from "../../src/ch/views.js";
import { BLOCK_WINDOWS, cachedBatchReader, MAX_BLOCKS_PER_READ } from "../../src/serving/batch_cache.js";
import type { BatchReader } from "../../src/serving/query.js";

const CATALOG = parseCatalog(
  {
    sources: { pv: { fields: { id: "string", article: "string", ts: "timestamp" }, idField: "id", timeField: "ts", partitionKey: "article" } },
    metrics: { views: { source: "pv", groupBy: ["article"], window: "1m", aggregates: { n: "count" } } },
  },
  "batch-cache.test",
);
const METRIC = CATALOG.metrics.get("views")!;
const W = METRIC.windowMs;
const KEYS = Array.from({ length: 12 }, (_, i) => `a-${i}`);

/** A deterministic pseudo-random stream (mulberry32). */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ViewRow {
  run: number;
  key: string;
  w: number;
  n: number;
}

/** Rows of runs 1 and 2 over ~3 blocks of windows around `origin`, with gaps. */
function viewRows(origin: number): ViewRow[] {
  const rnd = random(7);
  const rows: ViewRow[] = [];
  for (const run of [1, 2]) {
    for (const key of KEYS) {
      for (let i = -BLOCK_WINDOWS; i < 2 * BLOCK_WINDOWS; i++) if (rnd() < 0.4) rows.push({ run, key, w: origin + i * W, n: 1 + Math.floor(rnd() * 100) * run });
    }
  }
  return rows;
}

function viewReader(rows: readonly ViewRow[]) {
  const calls: { run: number; keys: readonly string[] | null; fromMs: number; toMs: number }[] = [];
  const read: BatchReader = async (_metric, run, keys, fromMs, toMs) => {
    calls.push({ run, keys, fromMs, toMs });
    const out: BatchStates = new Map();
    for (const r of rows) {
      if (r.run !== run || r.w < fromMs || r.w >= toMs || (keys !== null && !keys.includes(r.key))) continue;
      let byWindow = out.get(r.key);
      if (!byWindow) out.set(r.key, (byWindow = new Map()));
      byWindow.set(r.w, { n: r.n, parts: [{ k: "count" }] } satisfies AggState);
    }
    return out;
  };
  return { read, calls };
}

/** States as sorted plain values, to compare. */
const plain = (s: BatchStates) =>
  [...s]
    .filter(([, ws]) => ws.size > 0)
    .map(([k, ws]) => [k, [...ws].map(([w, st]) => [w, st.n]).sort((a, b) => a[0]! - b[0]!)] as const)
    .sort(([a], [b]) => (a < b ? -1 : 1));

test("any range and keys read through the cache equal the direct read, per run; a range sliding within held blocks reads nothing", async () => {
  const origin = 1_764_000_000_000 - (1_764_000_000_000 % (W * BLOCK_WINDOWS)) + 17 * W;
  const view = viewReader(viewRows(origin));
  const cache = cachedBatchReader(view.read);
  const rnd = random(99);
  for (let i = 0; i < 600; i++) {
    const run = rnd() < 0.5 ? 1 : 2;
    const keys = rnd() < 0.15 ? null : KEYS.filter(() => rnd() < 0.3);
    if (keys !== null && keys.length === 0) keys.push(KEYS[0]!);
    // Bounds anywhere, not only on window starts, inside and beyond the rows.
    const fromMs = origin + Math.floor((rnd() * 3.5 - 1.5) * BLOCK_WINDOWS * W);
    const toMs = fromMs + 1 + Math.floor(rnd() * 1.5 * BLOCK_WINDOWS * W);
    const expected = await viewReader(viewRows(origin)).read(METRIC, run, keys, Math.ceil(fromMs / W) * W, Math.ceil(toMs / W) * W);
    assert.deepEqual(plain(await cache.read(METRIC, run, keys, fromMs, toMs)), plain(expected), `run ${run} keys ${keys?.join(",") ?? "*"} [${fromMs}, ${toMs})`);
  }
  const before = view.calls.length;
  const direct = viewReader(viewRows(origin));
  for (let t = 0; t < 30; t++) {
    // Several calls per window (the same range, cut once) and across windows.
    const now = origin + t * 7_919;
    const expected = await direct.read(METRIC, 1, KEYS.slice(2, 5), Math.ceil((now - 31 * W) / W) * W, Math.ceil(now / W) * W);
    assert.deepEqual(plain(await cache.read(METRIC, 1, KEYS.slice(2, 5), now - 31 * W, now)), plain(expected), `sliding, now = ${now}`);
  }
  assert.equal(view.calls.length, before, "held blocks answer a sliding range without reading");
});

test("a many-key read asks the view only for the keys it does not hold, in whole blocks", async () => {
  const origin = 1_764_000_000_000 - (1_764_000_000_000 % (W * BLOCK_WINDOWS));
  const view = viewReader(viewRows(origin));
  const cache = cachedBatchReader(view.read);
  await cache.read(METRIC, 1, KEYS.slice(0, 4), origin + 10 * W, origin + 40 * W);
  await cache.read(METRIC, 1, KEYS.slice(0, 8), origin + 5 * W, origin + 35 * W);
  assert.deepEqual(view.calls.map((c) => [c.keys, c.fromMs, c.toMs]), [
    [KEYS.slice(0, 4), origin, origin + BLOCK_WINDOWS * W],
    [KEYS.slice(4, 8), origin, origin + BLOCK_WINDOWS * W],
  ]);
  assert.deepEqual(cache.stats().hits, 0);
  await cache.read(METRIC, 1, KEYS.slice(2, 6), origin + 100 * W, origin + 128 * W);
  assert.equal(view.calls.length, 2);
  assert.equal(cache.stats().hits, 1);
  // A key asked twice is read and kept once.
  const twice = await cache.read(METRIC, 1, [KEYS[9]!, KEYS[9]!], origin, origin + 3 * W);
  assert.deepEqual(plain(twice), plain(await view.read(METRIC, 1, [KEYS[9]!], origin, origin + 3 * W)));
  assert.deepEqual(view.calls.at(-2)!.keys, [KEYS[9]!]);
  assert.equal(cache.stats().entries, 9);
});

test("a failed read is not kept; a range wider than the blocks allowed is kept whole; the states held stay bounded", async () => {
  const origin = 1_764_000_000_000 - (1_764_000_000_000 % (W * BLOCK_WINDOWS));
  const rows = viewRows(origin);
  let fail = true;
  const view = viewReader(rows);
  const cache = cachedBatchReader(async (...a) => {
    if (fail) throw new Error("view unreachable");
    return view.read(...a);
  }, 200);
  await assert.rejects(cache.read(METRIC, 1, [KEYS[0]!], origin, origin + W), /view unreachable/);
  fail = false;
  assert.ok((await cache.read(METRIC, 1, [KEYS[0]!], origin, origin + BLOCK_WINDOWS * W)).get(KEYS[0]!)!.size > 0);

  const wideTo = origin + (MAX_BLOCKS_PER_READ + 1) * BLOCK_WINDOWS * W;
  const wide = await cache.read(METRIC, 2, null, origin - BLOCK_WINDOWS * W, wideTo);
  assert.deepEqual(plain(wide), plain(await view.read(METRIC, 2, null, origin - BLOCK_WINDOWS * W, wideTo)));
  const calls = view.calls.length;
  await cache.read(METRIC, 2, null, origin - BLOCK_WINDOWS * W, wideTo);
  assert.equal(view.calls.length, calls, "the same wide range again is a hit");

  for (const key of KEYS) await cache.read(METRIC, 1, [key], origin, origin + W);
  assert.ok(cache.stats().states <= 200, `${cache.stats().states} states held, bound 200`);
});

test("a range across a block's end asked again gets the same maps (nothing copied), and a moved range its own", async () => {
  const origin = 1_764_000_000_000 - (1_764_000_000_000 % (W * BLOCK_WINDOWS));
  const view = viewReader(viewRows(origin));
  const cache = cachedBatchReader(view.read);
  const direct = viewReader(viewRows(origin));
  const [from, to] = [origin - 20 * W, origin + 11 * W];
  const first = await cache.read(METRIC, 1, KEYS.slice(0, 6), from, to);
  const again = await cache.read(METRIC, 1, KEYS.slice(0, 6), from - W + 1, to - W + 1); // the same windows (bounds round up to a window start)
  assert.deepEqual(plain(first), plain(await direct.read(METRIC, 1, KEYS.slice(0, 6), from, to)));
  for (const k of KEYS.slice(0, 6)) if (first.has(k)) assert.equal(again.get(k), first.get(k), `${k}: the same map for the same windows`);
  const moved = await cache.read(METRIC, 1, KEYS.slice(0, 6), from + W, to + W);
  assert.deepEqual(plain(moved), plain(await direct.read(METRIC, 1, KEYS.slice(0, 6), from + W, to + W)));
  for (const k of KEYS.slice(0, 6)) if (first.has(k) && moved.has(k)) assert.notEqual(moved.get(k), first.get(k), `${k}: a moved range is cut anew`);
  assert.deepEqual(plain(first), plain(await direct.read(METRIC, 1, KEYS.slice(0, 6), from, to)), "the maps handed out before did not change");
});

test("with a bound of 0 states every read goes to the view as asked, and counts as a miss", async () => {
  const origin = 1_764_000_000_000 - (1_764_000_000_000 % (W * BLOCK_WINDOWS));
  const view = viewReader(viewRows(origin));
  const cache = cachedBatchReader(view.read, 0);
  for (let i = 0; i < 3; i++) {
    const got = await cache.read(METRIC, 1, ["a-1", "a-2"], origin, origin + 10 * W);
    assert.deepEqual(plain(got), plain(await view.read(METRIC, 1, ["a-1", "a-2"], origin, origin + 10 * W)));
  }
  // Three reads through the cache, three direct ones to compare: each asked exactly the range.
  assert.equal(view.calls.length, 6);
  assert.ok(view.calls.every((c) => c.fromMs === origin && c.toMs === origin + 10 * W), JSON.stringify(view.calls));
  assert.deepEqual(cache.stats(), { hits: 0, misses: 3, entries: 0, states: 0 });
});
