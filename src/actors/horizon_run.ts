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
 * real event). A lookup searches one bucket.
 */

/** 2^32: a 53-bit hash is high·2^32 + low. */
export const TWO_POW_32 = 4294967296;
/** Bits of a hash above its low 32. */
const HIGH_BITS = 21;
/** Bits of the Uint16 that holds an id's remaining high bits and its generation offset. */
const SIDE_BITS = 16;
/** Ids per bucket, about: 2^3..2^4 (more buckets cost 4 B each, fewer lengthen the search). */
const IDS_PER_BUCKET_LOG2 = 3;
/** A lookup scans at most this many ids in order (after halving a crowded bucket down to it). */
const LINEAR_SEARCH_IDS = 32;

/** Bits needed to write `x` ≥ 0. */
function bitsFor(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

export class FrozenRun {
  /** Made by FrozenRun.of and pack (this module) alone. */
  constructor(
    /** Generation of tag 0; the run holds generations genLo..genHi. */
    readonly genLo: number,
    readonly genHi: number,
    readonly low: Uint32Array,
    readonly side: Uint16Array,
    readonly starts: Uint32Array,
    /** Bits of `high` kept in `side`; a hash's bucket is high >>> shift. */
    readonly shift: number,
    readonly tagBits: number,
    /** Ids of each generation, genLo first. */
    readonly perGen: Int32Array,
  ) {}

  /**
   * A run of `hashes` (distinct 53-bit non-negative integers, in any order), all of generation
   * `gen`. Sorted by bucket (a counting sort) and then within each bucket (~8–16 ids, by
   * insertion): Float64Array.prototype.sort took ~60 ns per id, more than the rest of an add.
   * @throws RangeError when two hashes are equal.
   */
  static of(hashes: Float64Array, gen: number): FrozenRun {
    const n = hashes.length;
    const shape = runShape(n, 0);
    const mask = (1 << shape.shift) - 1;
    const starts = new Uint32Array((1 << shape.q) + 1);
    for (let i = 0; i < n; i++) starts[(Math.floor(hashes[i]! / TWO_POW_32) >>> shape.shift) + 1]!++;
    for (let b = 1; b < starts.length; b++) starts[b]! += starts[b - 1]!;
    const at = starts.slice(0, starts.length - 1);
    const low = new Uint32Array(n);
    const side = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      const h = hashes[i]!;
      const high = Math.floor(h / TWO_POW_32);
      const k = at[high >>> shape.shift]!++;
      low[k] = h >>> 0;
      side[k] = high & mask; // one generation: no tag bits
    }
    for (let b = 0; b + 1 < starts.length; b++) {
      const end = starts[b + 1]!;
      for (let i = starts[b]! + 1; i < end; i++) {
        const s = side[i]!;
        const l = low[i]!;
        const key = s * TWO_POW_32 + l;
        let j = i - 1;
        for (; j >= starts[b]! && side[j]! * TWO_POW_32 + low[j]! > key; j--) {
          side[j + 1] = side[j]!;
          low[j + 1] = low[j]!;
        }
        if (j >= starts[b]! && side[j]! * TWO_POW_32 + low[j]! === key) throw new RangeError(`horizon run: hash ${(b << shape.shift) * TWO_POW_32 + key} twice`);
        side[j + 1] = s;
        low[j + 1] = l;
      }
    }
    return new FrozenRun(gen, gen, low, side, starts, shape.shift, 0, Int32Array.of(n));
  }

  /**
   * One run of the ids of `older` and `newer` (adjacent generations, `older`'s first; `newer`
   * may be null) that are of generation `oldestLive` or later: the horizon has forgotten the
   * others, and they are all in `older` (they are older than any remembered one). Decoded,
   * merged and packed again in plain loops over typed arrays.
   */
  static merge(older: FrozenRun, newer: FrozenRun | null, oldestLive: number): FrozenRun {
    const a = older.decode();
    const b = newer === null ? a : newer.decode();
    const bLength = newer === null ? 0 : b.hashes.length;
    const genLo = Math.max(oldestLive, older.genLo);
    let n = bLength;
    for (let g = genLo; g <= older.genHi; g++) n += older.idsOf(g);
    const hashes = new Float64Array(n);
    const gens = new Int32Array(n);
    const { hashes: aHashes, gens: aGens } = a;
    const { hashes: bHashes, gens: bGens } = b;
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < aHashes.length) {
      if (aGens[i]! < oldestLive) {
        i++;
        continue;
      }
      const h = aHashes[i]!;
      while (j < bLength && bHashes[j]! < h) {
        hashes[k] = bHashes[j]!;
        gens[k++] = bGens[j++]!;
      }
      hashes[k] = h;
      gens[k++] = aGens[i++]!;
    }
    while (j < bLength) {
      hashes[k] = bHashes[j]!;
      gens[k++] = bGens[j++]!;
    }
    return pack(hashes, gens, genLo, Math.max(genLo, (newer ?? older).genHi));
  }

  /** Ids held (of every generation, also those the horizon has forgotten). */
  get length(): number {
    return this.low.length;
  }

  /** Ids of generation `gen` here (0 outside genLo..genHi). */
  idsOf(gen: number): number {
    return gen < this.genLo || gen > this.genHi ? 0 : this.perGen[gen - this.genLo]!;
  }

  /**
   * The generation the hash high·2^32 + lowBits arrived in, or -1 when it is not here (the
   * caller splits the hash once for all runs).
   */
  genOf(high: number, lowBits: number): number {
    const tagBits = this.tagBits;
    const key = high & ((1 << this.shift) - 1);
    const bucket = high >>> this.shift;
    const low = this.low;
    const side = this.side;
    let lo = this.starts[bucket]!;
    const end = this.starts[bucket + 1]!;
    // A crowded bucket (hashes that are not spread) is searched by halves, down to a short stretch.
    let hi = end;
    while (hi - lo > LINEAR_SEARCH_IDS) {
      const mid = (lo + hi) >>> 1;
      const k = side[mid]! >>> tagBits;
      if (k < key || (k === key && low[mid]! < lowBits)) lo = mid + 1;
      else hi = mid;
    }
    // Then in order: the Uint16s of a bucket share a cache line, and keys mostly differ (2^shift
    // keys for ~8-16 ids), so the low bits are read about once.
    for (let i = lo; i < end; i++) {
      const k = side[i]! >>> tagBits;
      if (k < key) continue;
      if (k > key) return -1;
      const l = low[i]!;
      if (l < lowBits) continue;
      return l === lowBits ? this.genLo + (side[i]! & ((1 << tagBits) - 1)) : -1;
    }
    return -1;
  }

  /** The ids, ascending, and the generation of each. */
  decode(): { hashes: Float64Array; gens: Int32Array } {
    const { low, side, starts, shift, tagBits, genLo } = this;
    const hashes = new Float64Array(low.length);
    const gens = new Int32Array(low.length);
    const tagMask = (1 << tagBits) - 1;
    for (let bucket = 0; bucket + 1 < starts.length; bucket++) {
      const top = bucket << shift;
      const end = starts[bucket + 1]!;
      for (let i = starts[bucket]!; i < end; i++) {
        const s = side[i]!;
        hashes[i] = (top | (s >>> tagBits)) * TWO_POW_32 + low[i]!;
        gens[i] = genLo + (s & tagMask);
      }
    }
    return { hashes, gens };
  }
}

/**
 * The layout of a run of `n` ids spanning `genSpan` + 1 generations: 2^q buckets (about
 * 2^IDS_PER_BUCKET_LOG2..2^(IDS_PER_BUCKET_LOG2+1) ids each, and enough that the rest of `high`
 * and the generation tag fit the Uint16).
 * @throws RangeError when the generations do not fit (the horizon keeps runs far below that).
 */
function runShape(n: number, genSpan: number): { q: number; shift: number; tagBits: number } {
  const tagBits = bitsFor(genSpan);
  const q = Math.min(HIGH_BITS, Math.max(HIGH_BITS - SIDE_BITS + tagBits, bitsFor(n) - 1 - IDS_PER_BUCKET_LOG2, 0));
  if (HIGH_BITS - q + tagBits > SIDE_BITS) throw new RangeError(`horizon run: ${genSpan + 1} generations do not fit a run`);
  return { q, shift: HIGH_BITS - q, tagBits };
}

/**
 * A run of `hashes` (strictly ascending) of generations `gens` (each in genLo..genHi).
 * @throws RangeError when a hash is not above the one before (a hash twice would be a bug upstream).
 */
function pack(hashes: Float64Array, gens: Int32Array, genLo: number, genHi: number): FrozenRun {
  const n = hashes.length;
  const { q, shift, tagBits } = runShape(n, genHi - genLo);
  const mask = (1 << shift) - 1;
  const low = new Uint32Array(n);
  const side = new Uint16Array(n);
  const starts = new Uint32Array((1 << q) + 1);
  const perGen = new Int32Array(genHi - genLo + 1);
  let previous = -1;
  for (let i = 0; i < n; i++) {
    const h = hashes[i]!;
    if (!(h > previous)) throw new RangeError(`horizon run: hash ${h} is not above ${previous}`);
    previous = h;
    const high = Math.floor(h / TWO_POW_32);
    const tag = gens[i]! - genLo;
    perGen[tag]!++;
    starts[(high >>> shift) + 1]!++;
    low[i] = h >>> 0;
    side[i] = ((high & mask) << tagBits) | tag;
  }
  for (let b = 1; b < starts.length; b++) starts[b]! += starts[b - 1]!;
  return new FrozenRun(genLo, genHi, low, side, starts, shift, tagBits, perGen);
}
