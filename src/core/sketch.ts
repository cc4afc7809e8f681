/**
 * Mergeable sketches for approximate metrics: a HyperLogLog for distinct counts
 * and a log-bucket quantile sketch, each with a TypeScript and a ClickHouse SQL
 * side.
 *
 * An answer merges the batch state, which SQL computes over the master data set
 * below the cut, with the speed state, which TypeScript computes over events
 * above it. The merge is only correct when both sides compute the same STATE.
 * That means the same registers or buckets and the same values in each, bit for
 * bit. Then merge(batch, speed) is exactly the state of the union, and the
 * estimate read from it does not depend on where the cut fell. Matching
 * estimates is not enough: two equal estimates from different states do not
 * merge into the right answer. So every step of the state is integer-only or
 * IEEE-exact on both sides: MurmurHash3 over UTF-8 bytes, bit shifts, and the
 * raw bits of a double. Floating-point maths happens only in the estimate,
 * which is computed in TypeScript from the merged state.
 * test/integration/sketch-sql.test.ts checks the equality against chDB.
 */

/** Refuses a sketch state that no add or merge can produce, for example a corrupt batch row. Terminal: retrying decodes the same bytes. */
export class SketchStateError extends Error {
  override readonly name = "SketchStateError";
  constructor(
    /** "hll" or "quantile". */
    readonly sketch: string,
    readonly reason: string,
  ) {
    super(`invalid ${sketch} sketch state: ${reason}`);
  }
}

// ---------------------------------------------------------------- hashing

const encoder = new TextEncoder();
/** Reused UTF-8 buffer, grown on demand: the speed layer hashes once per event. */
let scratch = new Uint8Array(256);

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));

function mixK(k: number): number {
  return Math.imul(rotl(Math.imul(k, 0xcc9e2d51), 15), 0x1b873593);
}

/**
 * MurmurHash3_x86_32 with seed 0 over the UTF-8 bytes of `text`. It equals
 * ClickHouse `murmurHash3_32(s)` for a String `s`. A lone surrogate is hashed
 * as U+FFFD, as TextEncoder encodes it. Such a string never reaches the batch
 * side, because a ClickHouse JSON insert refuses it.
 * @returns an unsigned 32-bit integer
 */
export function murmur3_32(text: string): number {
  if (scratch.length < text.length * 3) scratch = new Uint8Array(text.length * 3);
  const b = scratch;
  const len = encoder.encodeInto(text, b).written;
  const tail = len & ~3;
  let h = 0;
  for (let i = 0; i < tail; i += 4) {
    h ^= mixK(b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24));
    h = (Math.imul(rotl(h, 13), 5) + 0xe6546b64) | 0;
  }
  const rest = len & 3;
  if (rest > 0) {
    let k = b[tail]!;
    if (rest > 1) k |= b[tail + 1]! << 8;
    if (rest > 2) k |= b[tail + 2]! << 16;
    h ^= mixK(k);
  }
  h ^= len;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The text a value is hashed by. It equals ClickHouse `toString(x)` for String,
 * Int64 and Bool columns: a string as it is, an integer in decimal
 * (`String(n)`), and a boolean as "true" or "false".
 * @throws RangeError for a number that is not a safe integer. Ingest refuses
 *   such numbers for int fields. Above 2^53, JS and ClickHouse would also
 *   disagree: `String(2 ** 60)` is "1152921504606847000" in JS, while the Int64
 *   holding 2^60 prints as "1152921504606846976". Floats have no canonical
 *   string either, because ClickHouse writes "1e21" where JS writes "1e+21",
 *   and keeps "-0".
 */
export function canonicalString(v: string | number | boolean): string {
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return v ? "true" : "false";
  if (Number.isSafeInteger(v)) return String(v);
  throw new RangeError(`canonicalString: ${v} is not a safe integer; allowed: strings, booleans, integers within ±(2^53 - 1)`);
}

// ---------------------------------------------------------------- HyperLogLog

/** HLL precision: the top P bits of the hash select the register. */
export const HLL_PRECISION = 12;
/** Number of HLL registers, 2^HLL_PRECISION. */
export const HLL_REGISTERS = 1 << HLL_PRECISION;
const LOW_BITS = 32 - HLL_PRECISION;
const LOW_MASK = (1 << LOW_BITS) - 1;
/** Largest rank: a hash whose low 20 bits are all zero. */
export const HLL_MAX_RANK = LOW_BITS + 1;

/**
 * Sparse HLL state: register index to rank (1..HLL_MAX_RANK); an absent register is 0. The
 * functions here take any such map (a `Map<number, number>` fits); the states they create
 * ({@link createHllState}, {@link hllDecode}) are packed (see PackedHll).
 */
export interface HllState extends Iterable<[index: number, rank: number]> {
  /** Registers set (rank > 0). */
  readonly size: number;
  get(index: number): number | undefined;
  set(index: number, rank: number): unknown;
}

/** Low bits of a packed HLL entry that hold the rank (index << RANK_BITS | rank): ranks go up to HLL_MAX_RANK = 21 < 32. */
const RANK_BITS = 5;
const RANK_MASK = (1 << RANK_BITS) - 1;

/**
 * An HLL state as one array of `index << 5 | rank`, sorted by index. The entries are small
 * integers, which V8 keeps unboxed in the array: ~8–12 B per register against ~40 B in a
 * `Map<number, number>`. The speed layer holds one per (metric, key, window), and as Maps they
 * were a third of its memory per held event (docs/performance.md section 6). Kept sorted, so equal
 * states hold equal arrays and encode in order; a lookup is a binary search (≤ 12 steps), and
 * a new register shifts the entries after it (at most 4096 of them, at most 4096 times).
 */
class PackedHll implements HllState {
  private readonly packed: number[] = [];

  get size(): number {
    return this.packed.length;
  }

  get(index: number): number | undefined {
    const at = this.find(index);
    return at >= 0 ? this.packed[at]! & RANK_MASK : undefined;
  }

  set(index: number, rank: number): this {
    const at = this.find(index);
    const entry = (index << RANK_BITS) | rank;
    if (at >= 0) this.packed[at] = entry;
    else this.packed.splice(~at, 0, entry);
    return this;
  }

  *[Symbol.iterator](): Iterator<[number, number]> {
    for (const entry of this.packed) yield [entry >>> RANK_BITS, entry & RANK_MASK];
  }

  /** The position of register `index`, or ~(where it would go). */
  private find(index: number): number {
    // Entries of register `index` sort from index << RANK_BITS on (rank ≥ 1).
    const at = lowerBound(this.packed, index << RANK_BITS);
    return at < this.packed.length && this.packed[at]! >>> RANK_BITS === index ? at : ~at;
  }
}

/** The first position of ascending `sorted` whose value is ≥ `value` (sorted.length when none). */
function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** An empty HLL state (packed). */
export function createHllState(): HllState {
  return new PackedHll();
}

/** HLL state as ClickHouse `maxMap` returns it: indices sorted ascending, with ranks in parallel. */
export interface HllArrays {
  readonly idx: number[];
  readonly rank: number[];
}

/** The register a 32-bit hash updates: index = top P bits, rank = leading zeros of the low 32-P bits, plus 1. */
export function hllRegister(hash: number): { index: number; rank: number } {
  return { index: hash >>> LOW_BITS, rank: Math.clz32(hash & LOW_MASK) - HLL_PRECISION + 1 };
}

/** Adds a canonical string (see {@link canonicalString}) to `state`, in place. */
export function hllAdd(state: HllState, text: string): void {
  const { index, rank } = hllRegister(murmur3_32(text));
  if ((state.get(index) ?? 0) < rank) state.set(index, rank);
}

/** Merges `from` into `into`, in place, keeping the larger rank per register. It is associative, commutative and idempotent. */
export function hllMerge(into: HllState, from: HllState): void {
  for (const [index, rank] of from) if ((into.get(index) ?? 0) < rank) into.set(index, rank);
}

/**
 * The distinct-count estimate: the standard HLL estimate with alpha_m. Below
 * 2.5m it uses linear counting while some register is empty. Above 2^32/30 it
 * applies the 32-bit large-range correction for hash collisions. It is capped
 * at 2^32, the most distinct values a 32-bit hash can tell apart. Not rounded.
 * It is a pure function of the state: every term 2^-rank is exact in a double,
 * so the sum does not depend on the order of iteration.
 */
export function hllEstimate(state: HllState): number {
  const m = HLL_REGISTERS;
  const empty = m - state.size;
  let sum = empty;
  for (const [, rank] of state) sum += 2 ** -rank;
  const raw = ((0.7213 / (1 + 1.079 / m)) * m * m) / sum;
  if (raw <= 2.5 * m && empty > 0) return m * Math.log(m / empty);
  if (raw <= 2 ** 32 / 30) return raw;
  return Math.min(2 ** 32, -(2 ** 32) * Math.log(Math.max(0, 1 - raw / 2 ** 32)));
}

/** Encodes `state` as sorted parallel arrays, the form ClickHouse `maxMap` returns. */
export function hllEncode(state: HllState): HllArrays {
  const entries = [...state].sort(([a], [b]) => a - b);
  return { idx: entries.map(([i]) => i), rank: entries.map(([, r]) => r) };
}

/**
 * Decodes parallel arrays, for example the two HLL state columns of a batch row.
 * @throws SketchStateError when the arrays differ in length, the indices are not
 *   strictly ascending in 0..4095, or a rank is outside 1..HLL_MAX_RANK.
 */
export function hllDecode(arrays: HllArrays): HllState {
  const { idx, rank } = arrays;
  if (idx.length !== rank.length) throw new SketchStateError("hll", `idx has ${idx.length} entries but rank has ${rank.length}`);
  const state = createHllState();
  idx.forEach((i, n) => {
    const r = rank[n]!;
    if (!Number.isInteger(i) || i < 0 || i >= HLL_REGISTERS || (n > 0 && i <= idx[n - 1]!)) {
      throw new SketchStateError("hll", `idx[${n}] = ${i}; allowed: strictly ascending integers in 0..${HLL_REGISTERS - 1}`);
    }
    if (!Number.isInteger(r) || r < 1 || r > HLL_MAX_RANK) throw new SketchStateError("hll", `rank[${n}] = ${r}; allowed: 1..${HLL_MAX_RANK}`);
    state.set(i, r);
  });
  return state;
}

/**
 * The SQL for the register of a UInt32 hash expression, mirroring
 * {@link hllRegister}. ClickHouse has no count-leading-zeros function, so the
 * bit length of `low` is read from the exponent of a double: 2·low+1 < 2^21
 * converts to Float64 exactly, and its biased exponent is 1023 + bitlength(low).
 * This uses integer operations only, with no log2, and needs no branch for
 * low = 0.
 */
export function hllSqlRegister(hashExpr: string): { index: string; rank: string } {
  const low = `bitAnd(${hashExpr}, ${LOW_MASK})`;
  const exponent = `bitShiftRight(reinterpretAsUInt64(toFloat64(bitOr(bitShiftLeft(${low}, 1), 1))), 52)`;
  return { index: `toUInt16(bitShiftRight(${hashExpr}, ${LOW_BITS}))`, rank: `toUInt8(${1023 + HLL_MAX_RANK} - ${exponent})` };
}

/**
 * A sketch state built by SQL in two steps, so that each step names its input
 * once. `aggregate` is an aggregate expression over the rows of a GROUP BY: it
 * collects one integer per row where the condition holds (every row when the
 * condition is null: cheaper than a condition that always holds) and sorts them.
 * `columns(name)` turns that sorted array, selected as `name` by an inner
 * query, into the two state columns in their stored form ({@link HllArrays} or
 * {@link QuantileArrays}): an outer query selects them.
 *
 * Why not `maxMap` / `sumMap` over one-element arrays per row: those keep a
 * sorted map per group and build two arrays per row; collecting plain integers
 * and sorting once per group computes the same state 10–60x faster
 * (docs/performance.md). The cost is memory while the query runs: 4 bytes per
 * counted row of the group, where the maps held one entry per register or
 * bucket.
 */
export interface SqlSketchState {
  /** An aggregate expression: the sorted array of one UInt32 per counted row. */
  readonly aggregate: string;
  /** The two state columns, given the name the inner query selected `aggregate` as. */
  columns(sorted: string): [string, string];
}

/** The sorted array of `value` over the rows where `cond` holds, or over every row for null. */
const sortedArraySql = (value: string, cond: string | null) => `arraySort(${cond === null ? `groupArray(${value})` : `groupArrayIf(${value}, ${cond})`})`;

/** Past every packed entry (the largest index is 4095), so the last real entry always ends its register's run. */
const PACKED_END = 0xffffffff;

/**
 * The HLL state of `expr` over the rows where `cond` holds, a SQL expression of
 * type String, Int64 or Bool. It is wrapped in `toString`, which equals
 * {@link canonicalString} for those types (a no-op on String). Not for floats.
 *
 * Each row packs its register as index << 5 | rank into one UInt32. Sorted,
 * the entries of one index are adjacent and the last of them holds its largest
 * rank; keeping those gives what `maxMap([index], [rank])` gives: indices
 * ascending, each with its largest rank. A group where `cond` never holds gets
 * empty arrays.
 * @returns columns of types Array(UInt16) (indices) and Array(UInt8) (ranks)
 */
export function hllSqlState(expr: string, cond: string | null): SqlSketchState {
  const r = hllSqlRegister(`murmurHash3_32(toString(${expr}))`);
  const index = (x: string) => `bitShiftRight(${x}, ${RANK_BITS})`;
  return {
    aggregate: sortedArraySql(`bitOr(bitShiftLeft(toUInt32(${r.index}), ${RANK_BITS}), ${r.rank})`, cond),
    columns(sorted) {
      const last = `arrayFilter((x, next) -> ${index("x")} != ${index("next")}, ${sorted}, arrayShiftLeft(${sorted}, 1, toUInt32(${PACKED_END})))`;
      return [`arrayMap(x -> toUInt16(${index("x")}), ${last})`, `arrayMap(x -> toUInt8(bitAnd(x, ${RANK_MASK})), ${last})`];
    },
  };
}

// ---------------------------------------------------------------- quantiles

/** Mantissa bits kept per bucket: the relative error of the estimate is at most 2^-(M+1), about 0.4%. */
export const QUANTILE_MANTISSA_BITS = 7;
/** Bits dropped from the high 32 bits of a double: bucket = sign(1) | exponent(11) | top M mantissa bits. */
const BUCKET_SHIFT = 32 - 12 - QUANTILE_MANTISSA_BITS;
const SIGN = 1 << (31 - BUCKET_SHIFT);
const EXPONENT_MASK = 0x7ff << QUANTILE_MANTISSA_BITS;

/**
 * Quantile state: bucket id (19 bits) to count of values. The functions here take any such map
 * (a `Map<number, number>` fits); the states they create ({@link createQuantileState},
 * {@link quantileDecode}) are packed (see PackedQuantiles).
 */
export interface QuantileState extends Iterable<[bucket: number, count: number]> {
  /** Buckets holding a value. */
  readonly size: number;
  get(bucket: number): number | undefined;
  set(bucket: number, count: number): unknown;
}

/**
 * A quantile state as two parallel arrays, buckets ascending: ~16–24 B per bucket against ~40 B
 * in a `Map<number, number>` (see PackedHll for why it matters). Counts stay plain numbers, so
 * merged batch counts beyond 2^31 are kept exactly.
 */
class PackedQuantiles implements QuantileState {
  private readonly buckets: number[] = [];
  private readonly counts: number[] = [];

  get size(): number {
    return this.buckets.length;
  }

  get(bucket: number): number | undefined {
    const at = this.find(bucket);
    return at >= 0 ? this.counts[at] : undefined;
  }

  set(bucket: number, count: number): this {
    const at = this.find(bucket);
    if (at >= 0) this.counts[at] = count;
    else {
      this.buckets.splice(~at, 0, bucket);
      this.counts.splice(~at, 0, count);
    }
    return this;
  }

  *[Symbol.iterator](): Iterator<[number, number]> {
    for (let i = 0; i < this.buckets.length; i++) yield [this.buckets[i]!, this.counts[i]!];
  }

  /** The position of `bucket`, or ~(where it would go). */
  private find(bucket: number): number {
    const at = lowerBound(this.buckets, bucket);
    return this.buckets[at] === bucket ? at : ~at;
  }
}

/** An empty quantile state (packed). */
export function createQuantileState(): QuantileState {
  return new PackedQuantiles();
}

/** Quantile state as ClickHouse `sumMap` returns it: buckets sorted ascending (as unsigned ids), with counts in parallel. */
export interface QuantileArrays {
  readonly bucket: number[];
  readonly count: number[];
}

const bits = new DataView(new ArrayBuffer(8));

/**
 * The bucket of a finite double: its top 1 + 11 + M bits. -0 counts as 0.
 * Non-finite values have no bucket: the catalog refuses them at ingest, so
 * meeting one here is a bug.
 * @throws RangeError for NaN or ±Infinity
 */
export function quantileBucket(x: number): number {
  if (!Number.isFinite(x)) throw new RangeError(`quantileBucket: ${x} is not finite; allowed: finite numbers`);
  bits.setFloat64(0, x === 0 ? 0 : x);
  return bits.getUint32(0) >>> BUCKET_SHIFT;
}

/** Adds a value to `state`, in place. @throws RangeError for non-finite values (see {@link quantileBucket}) */
export function quantileAdd(state: QuantileState, x: number): void {
  const b = quantileBucket(x);
  state.set(b, (state.get(b) ?? 0) + 1);
}

/** Merges `from` into `into`, in place, summing counts per bucket. */
export function quantileMerge(into: QuantileState, from: QuantileState): void {
  for (const [b, c] of from) into.set(b, (into.get(b) ?? 0) + c);
}

/** Encodes `state` as sorted parallel arrays, the form ClickHouse `sumMap` returns. */
export function quantileEncode(state: QuantileState): QuantileArrays {
  const entries = [...state].sort(([a], [b]) => a - b);
  return { bucket: entries.map(([b]) => b), count: entries.map(([, c]) => c) };
}

/**
 * Decodes parallel arrays, for example the two quantile state columns of a batch row.
 * The counts are UInt64: read them as numbers, not as quoted JSON strings.
 * @throws SketchStateError when the arrays differ in length, the buckets are not
 *   strictly ascending ids of finite doubles, or a count is not a positive safe integer.
 */
export function quantileDecode(arrays: QuantileArrays): QuantileState {
  const { bucket, count } = arrays;
  if (bucket.length !== count.length) throw new SketchStateError("quantile", `bucket has ${bucket.length} entries but count has ${count.length}`);
  const state = createQuantileState();
  bucket.forEach((b, n) => {
    const c = count[n]!;
    if (!Number.isInteger(b) || b < 0 || b >= 2 * SIGN || (b & EXPONENT_MASK) === EXPONENT_MASK || (n > 0 && b <= bucket[n - 1]!)) {
      throw new SketchStateError("quantile", `bucket[${n}] = ${b}; allowed: strictly ascending bucket ids of finite doubles`);
    }
    if (!Number.isSafeInteger(c) || c < 1) throw new SketchStateError("quantile", `count[${n}] = ${c}; allowed: positive integers`);
    state.set(b, c);
  });
  return state;
}

/** Orders buckets by the values they hold: with the sign bit set, a larger id is more negative. */
const orderKey = (b: number): number => (b & SIGN ? -(b & (SIGN - 1)) - 1 : b);

/**
 * The value that stands for a bucket: the midpoint of its bounds. Within one
 * binade the mapping from bits to value is linear, so the midpoint is the
 * bucket's bits with the next mantissa bit set. It is exact and cannot overflow.
 * Bucket 0, which holds +0 and subnormals below 2^-1029, answers 0.
 */
function bucketValue(b: number): number {
  if (b === 0) return 0;
  bits.setUint32(0, ((b << BUCKET_SHIFT) | (1 << (BUCKET_SHIFT - 1))) >>> 0);
  bits.setUint32(4, 0);
  return bits.getFloat64(0);
}

/**
 * The q-quantile estimate. It takes the value at 0-based rank
 * floor(q · (n - 1)) in sorted order and returns the midpoint of that value's
 * bucket. For |x| ≥ 2^-1022 its relative error is at most 2^-(M+1). For
 * subnormals the absolute error is below 2^-1029.
 * @param q - the quantile, in 0..1 (0.5 is the lower median)
 * @returns undefined for an empty state
 * @throws RangeError when q is outside 0..1
 */
export function quantileEstimate(state: QuantileState, q: number): number | undefined {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantileEstimate: q = ${q}; allowed: 0..1`);
  let n = 0;
  for (const [, c] of state) n += c;
  if (n === 0) return undefined;
  const rank = Math.floor(q * (n - 1));
  const ordered = [...state].sort(([a], [b]) => orderKey(a) - orderKey(b));
  let seen = 0;
  for (const [b, c] of ordered) {
    seen += c;
    if (seen > rank) return bucketValue(b);
  }
  throw new Error("unreachable: the rank is below the total count");
}

/**
 * The SQL for the bucket of a numeric expression, mirroring {@link quantileBucket}:
 * the top 1 + 11 + M bits of the double. `-0` is mapped to `0` with `if(x = 0, 0, x)`.
 * @returns a UInt32 expression
 */
export function quantileSqlBucket(expr: string): string {
  const x = `toFloat64(${expr})`;
  return `toUInt32(bitShiftRight(reinterpretAsUInt64(if(${x} = 0, toFloat64(0), ${x})), ${64 - 12 - QUANTILE_MANTISSA_BITS}))`;
}

/**
 * The quantile state of `expr`, a numeric SQL expression, over the rows where
 * `cond` holds (see {@link SqlSketchState}). Sorted, the buckets of the group
 * form runs: the distinct buckets are the runs, and each count is the distance
 * from its run's start to the next one's. That is what `sumMap([bucket], [1])`
 * gives: buckets ascending (as unsigned ids), each with its count. A group
 * where `cond` never holds gets empty arrays.
 * @returns columns of types Array(UInt32) (buckets) and Array(UInt64) (counts)
 */
export function quantileSqlState(expr: string, cond: string | null): SqlSketchState {
  return {
    aggregate: sortedArraySql(quantileSqlBucket(expr), cond),
    columns(sorted) {
      const starts = `arrayFilter((i, x, prev) -> i = 1 OR x != prev, arrayEnumerate(${sorted}), ${sorted}, arrayShiftRight(${sorted}, 1))`;
      return [`arrayCompact(${sorted})`, `arrayMap(d -> toUInt64(d), arrayPopFront(arrayDifference(arrayPushBack(${starts}, length(${sorted}) + 1))))`];
    },
  };
}
