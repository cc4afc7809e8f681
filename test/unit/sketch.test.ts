/**
 * The sketches of src/core/sketch.ts without ClickHouse: the hash against known
 * vectors, the HLL's merge laws and accuracy, and the quantile sketch's error
 * bound. test/integration/sketch-sql.test.ts checks that SQL builds the same
 * states.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  HLL_MAX_RANK,
  HLL_REGISTERS,
  QUANTILE_MANTISSA_BITS,
  SketchStateError,
  canonicalString,
  createHllState,
  createQuantileState,
  hllAdd,
  hllDecode,
  hllEncode,
  hllEstimate,
  hllMerge,
  hllRegister,
  murmur3_32,
  quantileAdd,
  quantileBucket,
  quantileDecode,
  quantileEncode,
  quantileEstimate,
  quantileMerge,
  type HllState,
  type QuantileState,
} from "../../src/core/sketch.js";
import { prng, type Prng } from "./prng.js";

const hllOf = (items: readonly string[]): HllState => {
  const s = createHllState();
  for (const t of items) hllAdd(s, t);
  return s;
};
const merged = (...states: HllState[]): HllState => {
  const s = createHllState();
  for (const x of states) hllMerge(s, x);
  return s;
};
const quantilesOf = (xs: readonly number[]): QuantileState => {
  const s = createQuantileState();
  for (const x of xs) quantileAdd(s, x);
  return s;
};
const randomItems = (rnd: Prng, n: number, universe: number): string[] => Array.from({ length: n }, () => `user-${rnd.int(0, universe - 1)}`);

test("murmur3_32 matches known MurmurHash3_x86_32 vectors (seed 0) for every tail length and UTF-8", () => {
  const vectors: [string, number][] = [
    ["", 0],
    ["hello", 0x248bfa47],
    ["The quick brown fox jumps over the lazy dog", 0x2e4ff723],
    // The rest as ClickHouse murmurHash3_32 gives them.
    ["a", 0x3c2569b2],
    ["ab", 0x9bbfd75f],
    ["abc", 0xb3dd93fa],
    ["abcd", 0x43ed676a],
    ["abcde", 0xe89b9af6],
    ["é", 0x10110787],
    ["日本語", 0xa5a47297],
    ["😀", 0xbeb42efa],
    ["a".repeat(20), 0xce03b111],
  ];
  for (const [text, want] of vectors) assert.equal(murmur3_32(text), want, JSON.stringify(text));
  // The reused buffer grows: a long string after short ones.
  assert.equal(murmur3_32("x".repeat(10_000)), murmur3_32("x".repeat(10_000)));
});

test("canonicalString spells strings, safe integers and booleans as ClickHouse toString does; refuses other numbers", () => {
  assert.equal(canonicalString("a b"), "a b");
  assert.equal(canonicalString(""), "");
  assert.equal(canonicalString(-42), "-42");
  assert.equal(canonicalString(-0), "0");
  assert.equal(canonicalString(Number.MAX_SAFE_INTEGER), "9007199254740991");
  assert.equal(canonicalString(true), "true");
  assert.equal(canonicalString(false), "false");
  for (const bad of [1.5, Number.NaN, Infinity, 2 ** 53, -(2 ** 60)]) assert.throws(() => canonicalString(bad), RangeError, String(bad));
});

test("hllRegister: index = top 12 bits, rank = leading zeros of the low 20 bits + 1", () => {
  assert.deepEqual(hllRegister(0), { index: 0, rank: HLL_MAX_RANK });
  assert.deepEqual(hllRegister(0xffffffff), { index: 4095, rank: 1 });
  assert.deepEqual(hllRegister(0x00080000), { index: 0, rank: 1 });
  assert.deepEqual(hllRegister(0xabc00001), { index: 0xabc, rank: 20 });
  assert.deepEqual(hllRegister(0x00100000), { index: 1, rank: HLL_MAX_RANK });
});

test("hllMerge is commutative, associative and idempotent, and merging equals the state of the union", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const rnd = prng(seed);
    const [a, b, c] = [0, 1, 2].map(() => randomItems(rnd, rnd.int(0, 3000), 5000)) as [string[], string[], string[]];
    const [sa, sb, sc] = [hllOf(a), hllOf(b), hllOf(c)];
    const enc = hllEncode;
    assert.deepEqual(enc(merged(sa, sb)), enc(merged(sb, sa)), `seed ${seed}: commutative`);
    assert.deepEqual(enc(merged(merged(sa, sb), sc)), enc(merged(sa, merged(sb, sc))), `seed ${seed}: associative`);
    assert.deepEqual(enc(merged(sa, sa)), enc(sa), `seed ${seed}: idempotent`);
    assert.deepEqual(enc(merged(sa, sb, sc)), enc(hllOf([...a, ...b, ...c])), `seed ${seed}: union`);
    assert.equal(hllEstimate(merged(sa, sb)), hllEstimate(merged(sb, sa)), `seed ${seed}: same state, same estimate`);
  }
});

test("hllEstimate is within 3 standard errors (3 × 1.04/√4096) for 10..100k distinct values, and close to exact for tiny sets", () => {
  const bound = (3 * 1.04) / Math.sqrt(HLL_REGISTERS);
  for (const n of [10, 30, 100, 300, 1000, 3000, 10_000, 30_000, 100_000]) {
    for (const seed of [1, 2]) {
      const s: HllState = new Map();
      // Each value twice: repeats must not count.
      for (let i = 0; i < n; i++) for (let r = 0; r < 2; r++) hllAdd(s, `s${seed}-v${i}`);
      const est = hllEstimate(s);
      assert.ok(Math.abs(est - n) / n <= bound, `n=${n} seed=${seed}: estimate ${est} is off by more than ${bound * 100}%`);
    }
  }
  assert.equal(hllEstimate(new Map()), 0);
  for (const n of [1, 2, 5, 10, 20]) {
    const est = hllEstimate(hllOf(Array.from({ length: n }, (_, i) => `tiny-${i}`)));
    assert.ok(Math.abs(est - n) < 0.1, `n=${n}: linear counting gives ${est}`);
  }
});

test("hllEstimate: the large-range correction is monotone and capped at 2^32 as registers saturate", () => {
  const full = (rank: number): HllState => new Map(Array.from({ length: HLL_REGISTERS }, (_, i) => [i, rank] as [number, number]));
  let last = 0;
  for (let rank = 1; rank <= HLL_MAX_RANK; rank++) {
    const est = hllEstimate(full(rank));
    assert.ok(Number.isFinite(est) && est >= last && est <= 2 ** 32, `rank ${rank}: ${est} after ${last}`);
    last = est;
  }
  assert.ok(hllEstimate(full(18)) < hllEstimate(full(19)), "the correction is still below the cap at rank 19");
  assert.equal(hllEstimate(full(HLL_MAX_RANK)), 2 ** 32);
});

test("hllEncode/hllDecode round-trip as sorted parallel arrays; decode refuses states no add can produce", () => {
  const s = hllOf(randomItems(prng(7), 500, 10_000));
  const arrays = hllEncode(s);
  assert.deepEqual([...arrays.idx], [...arrays.idx].sort((a, b) => a - b));
  assert.deepEqual(hllEncode(hllDecode(arrays)), arrays);
  assert.deepEqual([...hllDecode({ idx: [], rank: [] })], []);
  for (const bad of [
    { idx: [1], rank: [] },
    { idx: [2, 1], rank: [1, 1] },
    { idx: [1, 1], rank: [1, 1] },
    { idx: [4096], rank: [1] },
    { idx: [0], rank: [0] },
    { idx: [0], rank: [22] },
  ]) {
    assert.throws(() => hllDecode(bad), SketchStateError, JSON.stringify(bad));
  }
});

/** The exact q-quantile under the sketch's rank convention: the element at 0-based rank floor(q·(n-1)). */
const exactQuantile = (sorted: readonly number[], q: number): number => sorted[Math.floor(q * (sorted.length - 1))]!;
const QS = [0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];

test(`quantileEstimate: relative error ≤ 2^-${QUANTILE_MANTISSA_BITS + 1} for positive values across magnitudes`, () => {
  const maxRel = 2 ** -(QUANTILE_MANTISSA_BITS + 1);
  for (const seed of [1, 2, 3, 4]) {
    const rnd = prng(seed);
    // Log-uniform over 1e-300..1e300, plus bucket lower bounds (powers of two: the worst case) and integers.
    const xs = Array.from({ length: 3000 }, () => rnd.pick([10 ** (rnd.next() * 600 - 300), 2 ** rnd.int(-1022, 1023), rnd.int(1, 1_000_000), Number.MAX_VALUE]));
    const sorted = [...xs].sort((a, b) => a - b);
    const s = quantilesOf(xs);
    for (const q of [...QS, ...Array.from({ length: 50 }, () => rnd.next())]) {
      const exact = exactQuantile(sorted, q);
      const est = quantileEstimate(s, q)!;
      assert.ok(Math.abs(est - exact) / exact <= maxRel, `seed ${seed} q=${q}: ${est} vs exact ${exact}`);
    }
  }
});

test("quantileEstimate falls in the bucket of the exact quantile for mixed signs, zeros and subnormals", () => {
  for (const seed of [1, 2, 3, 4]) {
    const rnd = prng(seed);
    const xs = Array.from({ length: 2000 }, () => {
      const mag = rnd.pick([10 ** (rnd.next() * 40 - 20), rnd.int(0, 100), 5e-324 * rnd.int(1, 2 ** 52), 0, 1]);
      return rnd.chance(0.5) ? -mag : mag;
    });
    const sorted = [...xs].sort((a, b) => a - b);
    const s = quantilesOf(xs);
    for (const q of [...QS, ...Array.from({ length: 50 }, () => rnd.next())]) {
      const exact = exactQuantile(sorted, q);
      const est = quantileEstimate(s, q)!;
      assert.equal(quantileBucket(est), quantileBucket(exact), `seed ${seed} q=${q}: ${est} vs exact ${exact}`);
    }
  }
  assert.equal(quantileEstimate(quantilesOf([0, -0, 0]), 0.5), 0, "zeros answer 0");
  assert.equal(quantileEstimate(quantilesOf([-3, -2, -1]), 0), quantileEstimate(quantilesOf([-3]), 0.5), "q=0 is the most negative");
});

test("quantile sketch: merge equals the state of the union; encode/decode round-trip; empty, bad q and non-finite values", () => {
  const rnd = prng(11);
  const a = Array.from({ length: 500 }, () => (rnd.next() - 0.5) * 1e6);
  const b = Array.from({ length: 700 }, () => rnd.int(-50, 50));
  const sa = quantilesOf(a);
  quantileMerge(sa, quantilesOf(b));
  assert.deepEqual(quantileEncode(sa), quantileEncode(quantilesOf([...b, ...a])));
  const arrays = quantileEncode(sa);
  assert.deepEqual([...arrays.bucket], [...arrays.bucket].sort((x, y) => x - y));
  assert.deepEqual(quantileEncode(quantileDecode(arrays)), arrays);
  assert.equal(quantileBucket(-0), quantileBucket(0));
  assert.equal(quantileEstimate(new Map(), 0.5), undefined);
  for (const q of [-0.1, 1.1, Number.NaN]) assert.throws(() => quantileEstimate(sa, q), RangeError);
  for (const x of [Number.NaN, Infinity, -Infinity]) assert.throws(() => quantileAdd(sa, x), RangeError);
  const inf = quantileBucket(Number.MAX_VALUE) + 1;
  for (const bad of [
    { bucket: [1], count: [] },
    { bucket: [2, 1], count: [1, 1] },
    { bucket: [1], count: [0] },
    { bucket: [inf], count: [1] },
    { bucket: [2 ** 19], count: [1] },
  ]) {
    assert.throws(() => quantileDecode(bad), SketchStateError, JSON.stringify(bad));
  }
});

test("the packed HLL state (createHllState) holds exactly what a Map of registers holds, from empty to every register set", () => {
  for (const [seed, n, universe] of [[1, 50, 40], [2, 3_000, 2_000], [3, 60_000, 1e9]] as const) {
    const rnd = prng(seed);
    const packed = createHllState();
    const map = new Map<number, number>();
    for (const item of randomItems(rnd, n, universe)) {
      hllAdd(packed, item);
      hllAdd(map, item);
    }
    assert.deepEqual(hllEncode(packed), hllEncode(map), `seed ${seed}`);
    assert.deepEqual([...packed], [...map].sort(([a], [b]) => a - b), `seed ${seed}: entries by register`);
    assert.equal(packed.size, map.size);
    assert.equal(hllEstimate(packed), hllEstimate(map), `seed ${seed}`);
    for (let i = 0; i < HLL_REGISTERS; i += 97) assert.equal(packed.get(i), map.get(i), `seed ${seed}: register ${i}`);
    // Merging either kind into either gives the same state.
    const into = createHllState();
    hllMerge(into, map);
    assert.deepEqual(hllEncode(into), hllEncode(packed));
  }
});

test("the packed quantile state (createQuantileState) holds exactly what a Map of buckets holds, counts beyond 2^31 included", () => {
  for (const [seed, n] of [[1, 20], [2, 5_000], [3, 50_000]] as const) {
    const rnd = prng(seed);
    const packed = createQuantileState();
    const map = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const x = rnd.pick([0, -0, rnd.int(-1e6, 1e6), (rnd.next() - 0.5) * 1e-300, rnd.next() * 1e300, rnd.int(0, 3000)]);
      quantileAdd(packed, x);
      quantileAdd(map, x);
    }
    assert.deepEqual(quantileEncode(packed), quantileEncode(map), `seed ${seed}`);
    assert.equal(packed.size, map.size);
    for (const q of [0, 0.01, 0.5, 0.99, 1]) assert.equal(quantileEstimate(packed, q), quantileEstimate(map, q), `seed ${seed}: q ${q}`);
    // A merged batch count past the small-integer range stays exact.
    const big = quantileDecode({ bucket: [quantileBucket(7)], count: [2 ** 40 + 3] });
    quantileMerge(big, packed);
    assert.equal(big.get(quantileBucket(7)), 2 ** 40 + 3 + (map.get(quantileBucket(7)) ?? 0));
  }
});
