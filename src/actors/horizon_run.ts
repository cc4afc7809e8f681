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
  /** Made by RunBuilder; its parts are read by RunCursor (this module), nothing else. */
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
   * others, and they are all in `older` (they are older than any remembered one). One pass,
   * reading both runs in hash order.
   */
  static merge(older: FrozenRun, newer: FrozenRun | null, oldestLive: number): FrozenRun {
    const genLo = Math.max(oldestLive, older.genLo);
    let n = newer === null ? 0 : newer.length;
    for (let g = genLo; g <= older.genHi; g++) n += older.idsOf(g);
    const out = new RunBuilder(n, genLo, Math.max(genLo, (newer ?? older).genHi));
    const a = new RunCursor(older, oldestLive);
    const b = new RunCursor(newer, 0);
    while (a.more && b.more) {
      if (b.hash < a.hash) {
        out.push(b.hash, b.gen);
        b.next();
      } else {
        out.push(a.hash, a.gen);
        a.next();
      }
    }
    for (; a.more; a.next()) out.push(a.hash, a.gen);
    for (; b.more; b.next()) out.push(b.hash, b.gen);
    return out.finish();
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
    const hashes = new Float64Array(this.length);
    const gens = new Int32Array(this.length);
    let k = 0;
    for (const c = new RunCursor(this, 0); c.more; c.next(), k++) {
      hashes[k] = c.hash;
      gens[k] = c.gen;
    }
    return { hashes, gens };
  }
}

/** The ids of a run in hash order, skipping those of generations before `oldestLive`. */
class RunCursor {
  /** False once past the last id. */
  more = true;
  hash = 0;
  gen = 0;
  private i = -1;
  private bucket = 0;
  private readonly low: Uint32Array;
  private readonly side: Uint16Array;
  private readonly starts: Uint32Array;
  private readonly shift: number;
  private readonly tagBits: number;
  private readonly genLo: number;

  constructor(
    run: FrozenRun | null,
    private readonly oldestLive: number,
  ) {
    this.low = run?.low ?? new Uint32Array(0);
    this.side = run?.side ?? new Uint16Array(0);
    this.starts = run?.starts ?? new Uint32Array(1);
    this.shift = run?.shift ?? 0;
    this.tagBits = run?.tagBits ?? 0;
    this.genLo = run?.genLo ?? 0;
    this.next();
  }

  next(): void {
    const tagMask = (1 << this.tagBits) - 1;
    for (;;) {
      const i = ++this.i;
      if (i >= this.low.length) {
        this.more = false;
        return;
      }
      while (this.starts[this.bucket + 1]! <= i) this.bucket++;
      const s = this.side[i]!;
      const gen = this.genLo + (s & tagMask);
      if (gen < this.oldestLive) continue;
      this.gen = gen;
      this.hash = ((this.bucket << this.shift) | (s >>> this.tagBits)) * TWO_POW_32 + this.low[i]!;
      return;
    }
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

/** Writes `n` ids, ascending, into a run of generations genLo..genHi. */
class RunBuilder {
  private readonly low: Uint32Array;
  private readonly side: Uint16Array;
  private readonly starts: Uint32Array;
  private readonly perGen: Int32Array;
  private readonly shift: number;
  private readonly tagBits: number;
  private k = 0;
  private previous = -1;

  constructor(
    private readonly n: number,
    private readonly genLo: number,
    private readonly genHi: number,
  ) {
    const shape = runShape(n, genHi - genLo);
    this.shift = shape.shift;
    this.tagBits = shape.tagBits;
    this.low = new Uint32Array(n);
    this.side = new Uint16Array(n);
    this.starts = new Uint32Array((1 << shape.q) + 1);
    this.perGen = new Int32Array(genHi - genLo + 1);
  }

  /** @throws RangeError when `h` is not above the last one, or `gen` is outside the run's. */
  push(h: number, gen: number): void {
    if (!(h > this.previous)) throw new RangeError(`horizon run: hash ${h} is not above ${this.previous}`);
    const tag = gen - this.genLo;
    if (!(tag >= 0 && gen <= this.genHi) || this.k === this.n) throw new RangeError(`horizon run: id ${this.k} of generation ${gen} outside ${this.n} ids of ${this.genLo}..${this.genHi}`);
    this.previous = h;
    const high = Math.floor(h / TWO_POW_32);
    this.perGen[tag]!++;
    this.starts[(high >>> this.shift) + 1]!++;
    this.low[this.k] = h >>> 0;
    this.side[this.k++] = ((high & ((1 << this.shift) - 1)) << this.tagBits) | tag;
  }

  finish(): FrozenRun {
    if (this.k !== this.n) throw new Error(`horizon run: ${this.k} of ${this.n} ids written`);
    const starts = this.starts;
    for (let b = 1; b < starts.length; b++) starts[b]! += starts[b - 1]!;
    return new FrozenRun(this.genLo, this.genHi, this.low, this.side, starts, this.shift, this.tagBits, this.perGen);
  }
}
