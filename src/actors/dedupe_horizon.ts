/**
 * The dedupe horizon: the hashes of the most recently remembered event ids
 * (speed_state.ts idHash), oldest first, with a membership test.
 *
 * Why not a `Set<number>`: the hashes are 53-bit, so V8 boxes each one in a
 * heap number behind the set's entry; that was ~43 B per id, and the horizon
 * stays after a watermark by design (docs/performance.md section 6). There are
 * two forms, both exact over the 53-bit hashes (a false "seen" would drop a real
 * event):
 * - RingHorizon, for capacities below 8 generations (8192 ids by default), and
 *   the newest generation of the compact form: ~14–19 B per id in two typed arrays,
 *   - a ring of the hashes in insertion order (Float64Array, 8 B per id; a
 *     53-bit integer is exact in a double), which says which id leaves first;
 *   - an open-addressing table (Int32Array, linear probing, load ≤ 0.6, 4 B per
 *     slot) of ring positions + 1, found from the hash's low 32 bits, which
 *     answers `has` in ~2–4 probes. Removal shifts the probe chain back, so there
 *     are no tombstones and probe chains stay short however long the actor runs.
 *   Both grow by doubling up to `capacity` as ids arrive: an actor that has seen
 *   few ids holds little. Its semantics are those of the insertion-ordered set it
 *   replaces: adding a hash already held changes nothing (it keeps its place);
 *   adding a new one when `capacity` are held forgets the oldest first.
 * - CompactHorizon (below), for larger capacities (the default 100k): ids older
 *   than the newest generation sit in sorted packed runs at ~6.2–6.5 B per id, and
 *   are forgotten a whole generation at a time, so it holds the newest `capacity`
 *   ids it accepted and at most one generation more.
 */

import { FrozenRun, TWO_POW_32 } from "./horizon_run.js";

/** Table slots per held id at most: 1 / MAX_LOAD. Lower load means shorter probe chains on a miss (every new event is one). */
const MAX_LOAD = 0.6;
/** Ring length an empty horizon starts with (grown by doubling). */
const INITIAL_RING = 256;
/** Ids per generation of the compact horizon, at least (see generationIdsFor). */
const GENERATION_IDS = 1024;
/** Generations a compact horizon of any capacity spans, about: more makes bigger generations instead. */
const MAX_GENERATIONS = 256;
/** Capacities below this many generations keep the exact ring (at most ~140 KB). */
const COMPACT_FROM_GENERATIONS = 8;

/** Ids per generation for a horizon of `capacity` ids. */
function generationIdsFor(capacity: number): number {
  return Math.max(GENERATION_IDS, Math.ceil(capacity / MAX_GENERATIONS));
}

/** The recently seen id hashes of one speed actor, bounded by count. */
export interface DedupeHorizon extends Iterable<number> {
  /** The ids remembered at least, once that many were accepted; 0 remembers none. */
  readonly capacity: number;
  /** Ids remembered now (≤ capacity for the ring; < capacity + one generation for the compact form). */
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
 * An empty horizon of `capacity` ids; `generationIds` sets the compact form's generation (tests
 * set it small to exercise that form at small capacities).
 * @throws RangeError when capacity is not a non-negative safe integer.
 */
export function createDedupeHorizon(capacity: number, generationIds = generationIdsFor(capacity)): DedupeHorizon {
  if (!Number.isSafeInteger(capacity) || capacity < 0) throw new RangeError(`dedupe horizon capacity: expected a non-negative integer, got ${capacity}`);
  if (!Number.isSafeInteger(generationIds) || generationIds < 1) throw new RangeError(`dedupe horizon generation: expected a positive integer, got ${generationIds}`);
  return capacity < COMPACT_FROM_GENERATIONS * generationIds ? new RingHorizon(capacity) : new CompactHorizon(capacity, generationIds);
}

/**
 * A horizon of `capacity` ids holding the newest of `hashes` (given oldest first, as
 * toFloat64Array wrote them), as a snapshot restores it. It keeps the newest
 * capacity + generationIds - 1 of them (all a horizon of the same capacity held), so the
 * restored horizon holds every id the snapshotted one promised to hold.
 */
export function dedupeHorizonOf(hashes: ArrayLike<number>, capacity: number, generationIds = generationIdsFor(capacity)): DedupeHorizon {
  const horizon = createDedupeHorizon(capacity, generationIds);
  const keep = horizon instanceof CompactHorizon ? capacity + generationIds - 1 : capacity;
  for (let i = Math.max(0, hashes.length - keep); i < hashes.length; i++) horizon.add(hashes[i]!);
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
    this.insert(hash);
    return true;
  }

  /** Remembers `hash`, which is not held (the caller looked), as the newest id; forgets the oldest when full. */
  insert(hash: number): void {
    if (this.count === this.capacity) this.forgetOldest();
    else if (this.count === this.ring.length) this.grow();
    const pos = (this.head + this.count) % this.ring.length;
    this.ring[pos] = hash;
    this.count++;
    const table = this.table;
    let i = home(hash, table.length);
    while (table[i] !== 0) i = i + 1 === table.length ? 0 : i + 1;
    table[i] = pos + 1;
  }

  /** Forgets every id, keeping the arrays at their size (the compact horizon's newest generation is refilled at once). */
  clear(): void {
    this.head = 0;
    this.count = 0;
    this.table.fill(0);
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

/**
 * The horizon of a large capacity, compact: the newest generation (up to `generationIds` ids) in
 * a RingHorizon, and older generations frozen into sorted runs (horizon_run.ts, ~6.2–6.5 B per id
 * instead of ~15–20). When the newest generation fills, it is sorted into a run of its own, and
 * the newest two runs merge while the older is no longer than the newer (a binary counter: at
 * most ~log2(capacity / generationIds) + 1 runs, mostly 2–4 at 100k ids, which a miss searches
 * one by one; an id is rewritten about that many times, ~8 ids per add once full). Runs hold
 * adjacent generations, oldest first. The price is the add: ~2.5x the ring's alone once 100k ids
 * are held (+~230 ns, under a tenth of the speed actor's applyRecord per event).
 *
 * Forgetting is by whole generation, oldest first: the oldest generation goes as soon as the
 * rest holds `capacity` ids. So once `capacity` ids arrived the horizon holds the newest
 * `capacity` ids and at most generationIds - 1 more (all of one generation), never fewer — a
 * relaxation of "exactly the newest capacity" that only ever remembers more. A forgotten
 * generation stays in the oldest run's bytes, marked dead by `oldestLive`, until the run is
 * merged, rewritten (once over half of it is dead) or dropped (once all of it is).
 * toFloat64Array lists generations oldest first, each frozen one by hash (its insertion order
 * is not kept), the newest in insertion order.
 */
class CompactHorizon implements DedupeHorizon {
  /** The newest generation, in insertion order. */
  private readonly recent: RingHorizon;
  /** Frozen generations oldest first, adjacent: runs[i].genHi + 1 === runs[i + 1].genLo. */
  private readonly runs: FrozenRun[] = [];
  /** Ids of each remembered frozen generation, oldest (`oldestLive`) first. */
  private readonly genIds: number[] = [];
  /** The oldest generation remembered; older ones in runs[0] are dead. */
  private oldestLive = 0;
  /** Generation of `recent`. */
  private recentGen = 0;
  /** Ids remembered in frozen generations. */
  private frozenIds = 0;

  constructor(
    readonly capacity: number,
    private readonly generationIds: number,
  ) {
    this.recent = new RingHorizon(generationIds);
  }

  get size(): number {
    return this.frozenIds + this.recent.size;
  }

  has(hash: number): boolean {
    return this.recent.has(hash) || this.frozenHas(hash);
  }

  add(hash: number): boolean {
    if (this.recent.has(hash) || this.frozenHas(hash)) return false;
    // Runs keep hashes bit by bit (horizon_run.ts); anything else would be rounded into a false "seen".
    if (!Number.isSafeInteger(hash) || hash < 0) throw new RangeError(`dedupe horizon: ${hash} is not a 53-bit id hash`);
    this.recent.insert(hash);
    if (this.recent.size === this.generationIds) this.freeze();
    while (this.genIds.length > 0 && this.size - this.genIds[0]! >= this.capacity) this.forgetOldestGeneration();
    return true;
  }

  toFloat64Array(): Float64Array {
    const out = new Float64Array(this.size);
    let k = 0;
    for (const run of this.runs) {
      // Counting sort by generation: a run's ids come out by hash.
      const { hashes, gens } = run.decode();
      const first = Math.max(run.genLo, this.oldestLive);
      const at = new Int32Array(run.genHi - first + 2);
      for (let g = first; g <= run.genHi; g++) at[g - first + 1] = at[g - first]! + run.idsOf(g);
      const live = at[at.length - 1]!;
      for (let i = 0; i < hashes.length; i++) if (gens[i]! >= first) out[k + at[gens[i]! - first]!++] = hashes[i]!;
      k += live;
    }
    out.set(this.recent.toFloat64Array(), k);
    return out;
  }

  *[Symbol.iterator](): Iterator<number> {
    yield* this.toFloat64Array();
  }

  /** Whether a remembered frozen generation holds `hash` (newest runs first: repeats are mostly recent). */
  private frozenHas(hash: number): boolean {
    const runs = this.runs;
    const high = Math.floor(hash / TWO_POW_32);
    const low = hash >>> 0;
    for (let i = runs.length - 1; i >= 0; i--) if (runs[i]!.genOf(high, low) >= this.oldestLive) return true;
    return false;
  }

  /** Freezes the full newest generation into a run (FrozenRun.of sorts it) and starts the next one. */
  private freeze(): void {
    const hashes = this.recent.toFloat64Array();
    const gen = this.recentGen++;
    this.runs.push(FrozenRun.of(hashes, gen));
    this.genIds.push(hashes.length);
    this.frozenIds += hashes.length;
    this.recent.clear();
    const runs = this.runs;
    while (runs.length >= 2 && runs[runs.length - 2]!.length <= runs[runs.length - 1]!.length) {
      const newer = runs.pop()!;
      const older = runs.pop()!;
      runs.push(FrozenRun.merge(older, newer, this.oldestLive));
    }
  }

  private forgetOldestGeneration(): void {
    this.frozenIds -= this.genIds.shift()!;
    this.oldestLive++;
    const first = this.runs[0]!;
    if (first.genHi < this.oldestLive) {
      this.runs.shift();
      return;
    }
    let dead = 0;
    for (let g = first.genLo; g < this.oldestLive; g++) dead += first.idsOf(g);
    if (2 * dead > first.length) this.runs[0] = FrozenRun.merge(first, null, this.oldestLive);
  }
}
