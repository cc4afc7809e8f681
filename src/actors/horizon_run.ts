/**
 * A frozen run of the compact dedupe horizon (dedupe_horizon.ts): distinct 53-bit id hashes,
 * each with the generation it arrived in, sorted by hash and packed into ~6.2–6.5 B per id
 * (a Float64Array ring and a hash table took ~15–20 B).
 *
 * A 53-bit hash is high·2^32 + low (high < 2^21). The top `21 - shift` bits of `high` pick a
 * bucket; `starts` says where each bucket's ids begin (4 B per bucket, ~8–16 ids per bucket, so
 * 0.25–0.5 B per id). Each id keeps its low 32 bits (Uint32Array) and, in a Uint16, the `shift`
 * bits of `high` its bucket does not say plus its generation's offset from `genLo`. So every
 * bit of the hash is kept: membership is exact, never "probably" (a false "seen" would drop a
 * real event). A lookup binary-searches one bucket.
 */

const TWO_POW_32 = 4294967296;
/** Bits of a hash above its low 32. */
const HIGH_BITS = 21;
/** Bits of the Uint16 that holds an id's remaining high bits and its generation offset. */
const SIDE_BITS = 16;
/** Ids per bucket, about: 2^3..2^4 (more buckets cost 4 B each, fewer lengthen the search). */
const IDS_PER_BUCKET_LOG2 = 3;

/** Bits needed to write `x` ≥ 0. */
function bitsFor(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

export class FrozenRun {
  private constructor(
    /** Generation of tag 0; the run holds generations genLo..genHi. */
    readonly genLo: number,
    readonly genHi: number,
    private readonly low: Uint32Array,
    private readonly side: Uint16Array,
    private readonly starts: Uint32Array,
    /** Bits of `high` kept in `side`; a hash's bucket is high >>> shift. */
    private readonly shift: number,
    private readonly tagBits: number,
    /** Ids of each generation, genLo first. */
    private readonly perGen: Int32Array,
  ) {}

  /**
   * A run of `hashes` (53-bit non-negative integers, strictly ascending), generation
   * `gens[i]` (in genLo..genHi) for hashes[i], or genLo for all when `gens` is null.
   * @throws RangeError when the hashes are not strictly ascending 53-bit integers, or span too many generations.
   */
  static of(hashes: Float64Array, gens: Int32Array | null, genLo: number, genHi: number): FrozenRun {
    const n = hashes.length;
    const tagBits = bitsFor(genHi - genLo);
    const q = Math.min(HIGH_BITS, Math.max(HIGH_BITS - SIDE_BITS + tagBits, bitsFor(n) - 1 - IDS_PER_BUCKET_LOG2, 0));
    const shift = HIGH_BITS - q;
    if (shift + tagBits > SIDE_BITS) throw new RangeError(`horizon run: ${genHi - genLo + 1} generations do not fit a run`);
    const mask = (1 << shift) - 1;
    const low = new Uint32Array(n);
    const side = new Uint16Array(n);
    const starts = new Uint32Array((1 << q) + 1);
    const perGen = new Int32Array(genHi - genLo + 1);
    let previous = -1;
    for (let i = 0; i < n; i++) {
      const h = hashes[i]!;
      if (!(h > previous) || !Number.isSafeInteger(h)) throw new RangeError(`horizon run: hash ${h} at ${i} is not a 53-bit integer above ${previous}`);
      previous = h;
      const high = Math.floor(h / TWO_POW_32);
      const tag = gens === null ? 0 : gens[i]! - genLo;
      if (tag < 0 || tag > genHi - genLo) throw new RangeError(`horizon run: generation ${gens![i]} outside ${genLo}..${genHi}`);
      perGen[tag]!++;
      starts[(high >>> shift) + 1]!++;
      low[i] = h >>> 0;
      side[i] = ((high & mask) << tagBits) | tag;
    }
    for (let b = 1; b < starts.length; b++) starts[b]! += starts[b - 1]!;
    return new FrozenRun(genLo, genHi, low, side, starts, shift, tagBits, perGen);
  }

  /** Ids held (of every generation, also those the horizon has forgotten). */
  get length(): number {
    return this.low.length;
  }

  /** Ids of generation `gen` here (0 outside genLo..genHi). */
  idsOf(gen: number): number {
    return gen < this.genLo || gen > this.genHi ? 0 : this.perGen[gen - this.genLo]!;
  }

  /** The generation `hash` arrived in, or -1 when it is not here. */
  genOf(hash: number): number {
    const high = Math.floor(hash / TWO_POW_32);
    const lowBits = hash >>> 0;
    const tagBits = this.tagBits;
    const key = high & ((1 << this.shift) - 1);
    const bucket = high >>> this.shift;
    const low = this.low;
    const side = this.side;
    let lo = this.starts[bucket]!;
    const end = this.starts[bucket + 1]!;
    let hi = end;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const k = side[mid]! >>> tagBits;
      if (k < key || (k === key && low[mid]! < lowBits)) lo = mid + 1;
      else hi = mid;
    }
    if (lo < end && side[lo]! >>> tagBits === key && low[lo] === lowBits) return this.genLo + (side[lo]! & ((1 << tagBits) - 1));
    return -1;
  }

  /** The ids, ascending, and the generation of each. */
  decode(): { hashes: Float64Array; gens: Int32Array } {
    const n = this.low.length;
    const hashes = new Float64Array(n);
    const gens = new Int32Array(n);
    const tagMask = (1 << this.tagBits) - 1;
    const starts = this.starts;
    for (let b = 0; b + 1 < starts.length; b++) {
      for (let i = starts[b]!; i < starts[b + 1]!; i++) {
        const s = this.side[i]!;
        hashes[i] = ((b << this.shift) | (s >>> this.tagBits)) * TWO_POW_32 + this.low[i]!;
        gens[i] = this.genLo + (s & tagMask);
      }
    }
    return { hashes, gens };
  }
}

/**
 * One run of the ids of `older` and `newer` (adjacent generations, `older`'s first; `newer` may
 * be null) that are of generation `oldestLive` or later: the horizon has forgotten the others.
 */
export function mergeRuns(older: FrozenRun, newer: FrozenRun | null, oldestLive: number): FrozenRun {
  const a = older.decode();
  const b = newer === null ? { hashes: new Float64Array(0), gens: new Int32Array(0) } : newer.decode();
  const hashes = new Float64Array(a.hashes.length + b.hashes.length);
  const gens = new Int32Array(hashes.length);
  let i = 0;
  let j = 0;
  let k = 0;
  // Forgotten generations are all older than any remembered one, so they sit in `older` alone.
  for (;;) {
    while (i < a.gens.length && a.gens[i]! < oldestLive) i++;
    if (i === a.gens.length) break;
    if (j < b.hashes.length && b.hashes[j]! < a.hashes[i]!) {
      hashes[k] = b.hashes[j]!;
      gens[k++] = b.gens[j++]!;
    } else {
      hashes[k] = a.hashes[i]!;
      gens[k++] = a.gens[i++]!;
    }
  }
  for (; j < b.hashes.length; j++, k++) {
    hashes[k] = b.hashes[j]!;
    gens[k] = b.gens[j]!;
  }
  const genLo = Math.max(oldestLive, older.genLo);
  return FrozenRun.of(hashes.subarray(0, k), gens.subarray(0, k), genLo, Math.max(genLo, (newer ?? older).genHi));
}
