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
