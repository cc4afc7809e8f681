/**
 * The dedupe horizon: the hashes of the `capacity` most recently remembered
 * event ids (speed_state.ts idHash), oldest first, with a membership test.
 *
 * Why not a `Set<number>`: the hashes are 53-bit, so V8 boxes each one in a
 * heap number behind the set's entry; that was ~43 B per id, and the horizon
 * stays after a watermark by design (docs/performance.md section 6). Here the
 * ids live in two typed arrays, ~14–19 B per id:
 * - a ring of the hashes in insertion order (Float64Array, 8 B per id; a
 *   53-bit integer is exact in a double), which says which id leaves first;
 * - an open-addressing table (Int32Array, linear probing, load ≤ 0.6, 4 B per
 *   slot) of ring positions + 1, found from the hash's low 32 bits, which
 *   answers `has` in ~2–4 probes. Removal shifts the probe chain back, so there
 *   are no tombstones and probe chains stay short however long the actor runs.
 * Both grow by doubling up to `capacity` as ids arrive: an actor that has seen
 * few ids holds little. Memory is bounded by `capacity` (at most
 * 8 + 4 / 0.6 ≈ 15 B per id once full, plus a constant).
 *
 * Semantics are those of the insertion-ordered set it replaces: adding a hash
 * already held changes nothing (it keeps its place); adding a new one when
 * `capacity` are held forgets the oldest first.
 */

/** Table slots per held id at most: 1 / MAX_LOAD. Lower load means shorter probe chains on a miss (every new event is one). */
const MAX_LOAD = 0.6;
/** Ring length an empty horizon starts with (grown by doubling). */
const INITIAL_RING = 256;
const TWO_POW_32 = 4294967296;

/** The recently seen id hashes of one speed actor, bounded by count. */
export interface DedupeHorizon extends Iterable<number> {
  /** The most ids remembered; 0 remembers none. */
  readonly capacity: number;
  /** Ids remembered now (≤ capacity). */
  readonly size: number;
  has(hash: number): boolean;
  /**
   * Remembers `hash` as the newest id unless it is held already (then nothing changes); forgets
   * the oldest when full. One lookup for the speed actor's "seen? else remember".
   * @returns false when `hash` was held already
   */
  add(hash: number): boolean;
  /** The hashes, oldest first (a copy). */
  toFloat64Array(): Float64Array;
}

/**
 * An empty horizon of `capacity` ids.
 * @throws RangeError when capacity is not a non-negative safe integer.
 */
export function createDedupeHorizon(capacity: number): DedupeHorizon {
  if (!Number.isSafeInteger(capacity) || capacity < 0) throw new RangeError(`dedupe horizon capacity: expected a non-negative integer, got ${capacity}`);
  return new RingHorizon(capacity);
}

/** A horizon of `capacity` ids holding the newest of `hashes` (given oldest first), as a snapshot restores it. */
export function dedupeHorizonOf(hashes: Iterable<number>, capacity: number): DedupeHorizon {
  const horizon = createDedupeHorizon(capacity);
  for (const h of hashes) horizon.add(h);
  return horizon;
}

class RingHorizon implements DedupeHorizon {
  /** Hashes in insertion order; the oldest at `head`. */
  private ring: Float64Array;
  private head = 0;
  private count = 0;
  /** Ring position + 1 of the id homed near each slot; 0 is empty. */
  private table: Int32Array;

  constructor(readonly capacity: number) {
    const ringLength = Math.min(capacity, INITIAL_RING);
    this.ring = new Float64Array(ringLength);
    this.table = new Int32Array(tableLength(ringLength));
  }

  get size(): number {
    return this.count;
  }

  has(hash: number): boolean {
    return this.slotOf(hash) >= 0;
  }

  add(hash: number): boolean {
    if (this.capacity === 0) return true;
    if (this.slotOf(hash) >= 0) return false;
    if (this.count === this.capacity) this.forgetOldest();
    else if (this.count === this.ring.length) this.grow();
    const pos = (this.head + this.count) % this.ring.length;
    this.ring[pos] = hash;
    this.count++;
    const table = this.table;
    let i = home(hash, table.length);
    while (table[i] !== 0) i = i + 1 === table.length ? 0 : i + 1;
    table[i] = pos + 1;
    return true;
  }

  toFloat64Array(): Float64Array {
    const out = new Float64Array(this.count);
    for (let k = 0; k < this.count; k++) out[k] = this.ring[(this.head + k) % this.ring.length]!;
    return out;
  }

  *[Symbol.iterator](): Iterator<number> {
    yield* this.toFloat64Array();
  }

  /** The table slot holding `hash`, or -1. */
  private slotOf(hash: number): number {
    const table = this.table;
    const ring = this.ring;
    let i = home(hash, table.length);
    for (;;) {
      const entry = table[i]!;
      if (entry === 0) return -1;
      if (ring[entry - 1] === hash) return i;
      i = i + 1 === table.length ? 0 : i + 1;
    }
  }

  private forgetOldest(): void {
    const table = this.table;
    let hole = this.slotOf(this.ring[this.head]!);
    this.head = (this.head + 1) % this.ring.length;
    this.count--;
    // Backward-shift deletion: move up every later entry of the probe chain whose home does not
    // lie in (hole, j], so each stays reachable from its home without tombstones.
    let j = hole;
    for (;;) {
      j = j + 1 === table.length ? 0 : j + 1;
      const entry = table[j]!;
      if (entry === 0) break;
      const k = home(this.ring[entry - 1]!, table.length);
      const reachable = hole <= j ? hole < k && k <= j : hole < k || k <= j;
      if (reachable) continue;
      table[hole] = entry;
      hole = j;
    }
    table[hole] = 0;
  }

  /** Doubles the ring (up to capacity), laying the ids out from position 0, and rebuilds the table. */
  private grow(): void {
    const ids = this.toFloat64Array();
    const ringLength = Math.min(this.capacity, Math.max(1, this.ring.length * 2));
    this.ring = new Float64Array(ringLength);
    this.ring.set(ids);
    this.head = 0;
    const table = (this.table = new Int32Array(tableLength(ringLength)));
    for (let pos = 0; pos < ids.length; pos++) {
      let i = home(ids[pos]!, table.length);
      while (table[i] !== 0) i = i + 1 === table.length ? 0 : i + 1;
      table[i] = pos + 1;
    }
  }
}

/** Slots for a ring of `ringLength` ids: load ≤ MAX_LOAD, and at least one slot always empty so probes end. */
function tableLength(ringLength: number): number {
  return Math.max(ringLength + 1, Math.ceil(ringLength / MAX_LOAD));
}

/**
 * The home slot of a hash: its low 32 bits (well mixed by idHash) as a fraction of 2^32, scaled to
 * the table's length, so the table need not be a power of two. The fraction is below
 * 1 - 2^-32, far more than a rounding step below 1, so the slot is always < length.
 */
function home(hash: number, length: number): number {
  return Math.floor(((hash >>> 0) / TWO_POW_32) * length);
}
