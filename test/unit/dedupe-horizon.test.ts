/**
 * The dedupe horizon (src/actors/dedupe_horizon.ts): it answers exactly as the insertion-ordered
 * Set<number> it replaced, evicting the oldest id first at its capacity, whatever the hashes
 * (also hashes that all share one home slot, which makes every probe chain long and every
 * removal shift it back), and it survives its snapshot form (hashes oldest first).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createDedupeHorizon, dedupeHorizonOf } from "../../src/actors/dedupe_horizon.js";
import { idHash } from "../../src/actors/speed_state.js";
import { prng } from "./prng.js";

/** The horizon as the speed actor kept it before: a Set in insertion order, oldest forgotten first. */
class ReferenceHorizon {
  readonly ids = new Set<number>();
  constructor(private readonly capacity: number) {}
  add(h: number): boolean {
    if (this.capacity === 0) return true;
    if (this.ids.has(h)) return false;
    this.ids.add(h);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value as number);
    return true;
  }
}

const TWO_POW_32 = 4294967296;
/** 53-bit hashes from a small space, so ids repeat; `lowBits` fixes the low 32 bits (one home slot for all). */
function hashSource(seed: number, distinct: number, lowBits: number | null): () => number {
  const rnd = prng(seed);
  return () => {
    const n = rnd.int(0, distinct - 1);
    return lowBits === null ? idHash("pageviews", `id-${n}`) : n * TWO_POW_32 + lowBits;
  };
}

test("membership: a remembered hash is held, others are not; add reports whether the hash was new", () => {
  const h = createDedupeHorizon(10);
  assert.equal(h.add(idHash("pageviews", "a")), true);
  assert.equal(h.add(idHash("pageviews", "b")), true);
  assert.equal(h.add(idHash("pageviews", "a")), false, "a is held already");
  assert.equal(h.size, 2);
  assert.equal(h.has(idHash("pageviews", "a")), true);
  assert.equal(h.has(idHash("orders", "a")), false, "same id, other source");
  assert.deepEqual([...h], [idHash("pageviews", "a"), idHash("pageviews", "b")]);
});

test("at its capacity the oldest id goes first, and re-adding a held id does not refresh it", () => {
  const h = createDedupeHorizon(3);
  for (const id of [1, 2, 3, 4]) h.add(id);
  assert.deepEqual([...h], [2, 3, 4], "1 was the oldest");
  assert.equal(h.has(1), false);
  assert.equal(h.add(2), false, "2 is held");
  assert.deepEqual([...h], [2, 3, 4], "a held id keeps its place (as Set.add does)");
  h.add(5);
  assert.deepEqual([...h], [3, 4, 5], "so 2 is still the first to go");
  assert.equal(h.size, 3);
});

test("capacity 0 remembers nothing; a negative capacity is refused", () => {
  const h = createDedupeHorizon(0);
  assert.equal(h.add(7), true);
  assert.equal(h.add(7), true, "nothing is held, so every id is new");
  assert.equal(h.size, 0);
  assert.deepEqual([...h], []);
  assert.throws(() => createDedupeHorizon(-1), /non-negative integer, got -1/);
});

test("random adds answer exactly as the insertion-ordered Set, across growth and eviction", () => {
  // Capacities below, at and above the initial ring (256), so growth and wrap-around both happen;
  // spread hashes, hashes that all share a home slot, and a shared slot at the table's end (wraps).
  const layouts = [null, 12345, TWO_POW_32 - 1] as const;
  for (const capacity of [1, 2, 7, 256, 300, 1_000]) {
    for (const lowBits of layouts) {
      const seed = capacity * 7 + (lowBits ?? 0) % 1000;
      const next = hashSource(seed, capacity * 3 + 5, lowBits);
      const h = createDedupeHorizon(capacity);
      const ref = new ReferenceHorizon(capacity);
      const steps = lowBits === null ? 20 * capacity + 200 : 4 * capacity + 50;
      for (let i = 0; i < steps; i++) {
        const x = next();
        const what = `capacity ${capacity}, low bits ${lowBits}, step ${i}`;
        assert.equal(h.has(x), ref.ids.has(x), `${what}: has`);
        assert.equal(h.add(x), ref.add(x), `${what}: add`);
        assert.equal(h.size, ref.ids.size, `${what}: size`);
      }
      assert.deepEqual([...h], [...ref.ids], `capacity ${capacity}, low bits ${lowBits}: order`);
      for (const x of ref.ids) assert.equal(h.has(x), true);
    }
  }
});

test("snapshot form: the hashes oldest first restore the same horizon; a smaller capacity keeps the newest", () => {
  const h = createDedupeHorizon(500);
  const next = hashSource(3, 2_000, null);
  for (let i = 0; i < 1_700; i++) h.add(next());
  const hashes = h.toFloat64Array();
  assert.equal(hashes.length, 500);
  const restored = dedupeHorizonOf(hashes, 500);
  assert.deepEqual([...restored], [...h]);
  // Both go on alike.
  for (let i = 0; i < 600; i++) {
    const x = next();
    assert.equal(restored.add(x), h.add(x), `step ${i}`);
  }
  assert.deepEqual([...restored], [...h]);
  const smaller = dedupeHorizonOf(h.toFloat64Array(), 3);
  assert.deepEqual([...smaller], [...h].slice(-3));
});

/**
 * The compact horizon's promise (dedupe_horizon.ts CompactHorizon): ids arrive in generations of
 * `generationIds`; the oldest whole generation is forgotten as soon as the rest holds `capacity`
 * ids; its snapshot lists generations oldest first, a frozen one by hash, the newest as it came.
 */
class GenerationReference {
  private readonly ids: number[] = [];
  private readonly gens: number[] = [];
  private readonly held = new Set<number>();
  private gen = 0;
  private inGen = 0;
  constructor(
    private readonly capacity: number,
    private readonly generationIds: number,
  ) {}
  get size(): number {
    return this.held.size;
  }
  has(h: number): boolean {
    return this.held.has(h);
  }
  add(h: number): boolean {
    if (this.held.has(h)) return false;
    this.ids.push(h);
    this.gens.push(this.gen);
    this.held.add(h);
    if (++this.inGen === this.generationIds) {
      this.gen++;
      this.inGen = 0;
    }
    for (;;) {
      const oldest = this.gens[0]!;
      if (oldest === this.gen) break; // only frozen generations are forgotten
      let n = 0;
      while (this.gens[n] === oldest) n++;
      if (this.held.size - n < this.capacity) break;
      for (const x of this.ids.splice(0, n)) this.held.delete(x);
      this.gens.splice(0, n);
    }
    return true;
  }
  toArray(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.ids.length; ) {
      let j = i;
      while (j < this.ids.length && this.gens[j] === this.gens[i]) j++;
      const gen = this.ids.slice(i, j);
      out.push(...(this.gens[i] === this.gen ? gen : gen.sort((a, b) => a - b)));
      i = j;
    }
    return out;
  }
}

/** 53-bit hashes that cover the range's edges: 0, 2^53 - 1, and both sides of 2^32. */
const EDGE_HASHES = [0, 1, TWO_POW_32 - 1, TWO_POW_32, TWO_POW_32 + 1, 2 ** 53 - 1, 2 ** 53 - 2, 2 ** 52, 2 ** 52 - 1];

test("compact horizon: random adds answer as the generation model; it holds the newest `capacity` ids it accepted, and at most one generation more", () => {
  // Hashes spread over 53 bits, hashes that share their low 32 bits (they differ only in the
  // high bits a run's bucket is chosen by), and hashes below 2^40 (all in a run's first bucket).
  const sources: Array<[string, (seed: number, distinct: number) => () => number]> = [
    ["spread", (seed, distinct) => hashSource(seed, distinct, null)],
    ["shared low bits", (seed, distinct) => hashSource(seed, distinct, 12345)],
    ["below 2^40", (seed, distinct) => { const rnd = prng(seed); return () => rnd.int(0, distinct - 1) * 97; }],
    ["edges and spread", (seed, distinct) => { const rnd = prng(seed); const spread = hashSource(seed, distinct, null); return () => (rnd.chance(0.05) ? rnd.pick(EDGE_HASHES) : spread()); }],
  ];
  for (const [capacity, generationIds] of [[8, 1], [16, 2], [40, 5], [64, 8], [100, 7], [1_000, 16], [3_000, 64]] as const) {
    for (const [name, source] of sources) {
      const what = `capacity ${capacity}, generations of ${generationIds}, ${name}`;
      const h = createDedupeHorizon(capacity, generationIds);
      assert.equal(h.constructor.name, "CompactHorizon", what);
      const model = new GenerationReference(capacity, generationIds);
      const accepted: number[] = [];
      const next = source(capacity * 31 + generationIds, capacity * 3 + 5);
      const steps = 30 * capacity + 300;
      for (let i = 0; i < steps; i++) {
        const x = next();
        assert.equal(h.has(x), model.has(x), `${what}, step ${i}: has`);
        const added = h.add(x);
        assert.equal(added, model.add(x), `${what}, step ${i}: add`);
        if (added) accepted.push(x);
        assert.equal(h.size, model.size, `${what}, step ${i}: size`);
        assert.ok(h.size <= capacity + generationIds - 1, `${what}, step ${i}: at most one generation over`);
        assert.ok(h.size >= Math.min(capacity, accepted.length), `${what}, step ${i}: at least capacity once that many came`);
        // A copy that comes within `capacity` accepted ids of its original is dropped.
        if (i % 97 === 0) for (const id of accepted.slice(-capacity)) assert.equal(h.has(id), true, `${what}, step ${i}: the newest capacity accepted ids are held`);
      }
      assert.deepEqual([...h], model.toArray(), `${what}: snapshot order`);
    }
  }
});

test("compact horizon with generations of one id is the exact insertion-ordered set", () => {
  const h = createDedupeHorizon(8, 1);
  const ref = new ReferenceHorizon(8);
  const next = hashSource(9, 30, null);
  for (let i = 0; i < 2_000; i++) {
    const x = next();
    assert.equal(h.add(x), ref.add(x), `step ${i}`);
    assert.deepEqual([...h], [...ref.ids], `step ${i}: order`);
  }
});

test("compact horizon: its snapshot form restores every id it held, and both go on alike", () => {
  const capacity = 2_000;
  const h = createDedupeHorizon(capacity, 64);
  const next = hashSource(5, 9_000, null);
  for (let i = 0; i < 7_777; i++) h.add(next());
  const hashes = h.toFloat64Array();
  assert.ok(hashes.length > capacity, "one generation over capacity, so the restore must keep more than `capacity`");
  const restored = dedupeHorizonOf(hashes, capacity, 64);
  assert.deepEqual(new Set(restored), new Set(h), "the same ids");
  // Frozen generations are whole (forgotten whole), so the restore groups the ids as they were: both go on alike.
  for (let i = 0; i < 5_000; i++) {
    const x = next();
    assert.equal(restored.add(x), h.add(x), `step ${i}`);
  }
  assert.deepEqual([...restored], [...h]);
  // A horizon of the old size restored into a smaller one keeps the newest ids (as snapshot.ts restores after a shrink).
  const smaller = dedupeHorizonOf(h.toFloat64Array(), 3);
  assert.deepEqual([...smaller], [...h].slice(-3));
});

test("compact horizon: a hash that is not a 53-bit integer is refused, not rounded into a false \"seen\"", () => {
  const h = createDedupeHorizon(64, 8);
  for (const bad of [0.5, -1, 2 ** 53, NaN]) assert.throws(() => h.add(bad), /not a 53-bit id hash/, String(bad));
  assert.equal(h.size, 0);
});

test("the default capacity is compact; small capacities keep the exact ring", () => {
  assert.equal(createDedupeHorizon(100_000).constructor.name, "CompactHorizon");
  assert.equal(createDedupeHorizon(8_191).constructor.name, "RingHorizon");
  assert.throws(() => createDedupeHorizon(10, 0), /positive integer, got 0/);
});
