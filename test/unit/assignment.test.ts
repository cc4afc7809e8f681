/**
 * Partition assignment (src/coordinator/assignment.ts): balanced, sticky (the
 * fewest moves that rebalance), and generations that grow exactly when the
 * owner changes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { assignPartitions } from "../../src/coordinator/assignment.js";
import type { Assignment } from "../../src/core/records.js";
import { prng } from "./prng.js";

const nodeNames = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `node-${String(from + i).padStart(2, "0")}`);
const asMap = (as: readonly Assignment[]) => new Map(as.map((a) => [a.partition, a]));

function loads(as: readonly Assignment[], nodes: readonly string[]): Map<string, number> {
  const l = new Map(nodes.map((n) => [n, 0]));
  for (const a of as) l.set(a.node, (l.get(a.node) ?? 0) + 1);
  return l;
}

function assertWellFormed(as: readonly Assignment[], partitions: number, nodes: readonly string[], what: string) {
  assert.deepEqual(
    as.map((a) => a.partition),
    Array.from({ length: partitions }, (_, p) => p),
    `${what}: one assignment per partition, in order`,
  );
  const live = new Set(nodes);
  for (const a of as) assert.ok(live.has(a.node), `${what}: partition ${a.partition} given to ${JSON.stringify(a.node)}, not a live node`);
  const l = [...loads(as, nodes).values()];
  assert.ok(Math.max(...l) - Math.min(...l) <= 1, `${what}: unbalanced loads ${JSON.stringify(Object.fromEntries(loads(as, nodes)))}`);
}

/** The fewest owner changes that reach a balanced assignment over `nodes` from `previous`. */
function minimumMoves(partitions: number, nodes: readonly string[], previous: ReadonlyMap<number, Assignment>): number {
  const n = nodes.length;
  const base = Math.floor(partitions / n);
  const extra = partitions % n;
  const live = new Set(nodes);
  const held = new Map<string, number>();
  for (const a of previous.values()) if (live.has(a.node)) held.set(a.node, (held.get(a.node) ?? 0) + 1);
  // Each live node can keep up to its target; the `extra` targets of base + 1 go where they keep most.
  let kept = 0;
  let over = 0;
  for (const h of held.values()) {
    kept += Math.min(h, base);
    if (h > base) over++;
  }
  kept += Math.min(extra, over);
  return partitions - kept;
}

function moves(previous: ReadonlyMap<number, Assignment>, next: readonly Assignment[]): number[] {
  return next.filter((a) => (previous.get(a.partition)?.node ?? "") !== a.node).map((a) => a.partition);
}

function assertGenerations(previous: ReadonlyMap<number, Assignment>, next: readonly Assignment[], what: string) {
  for (const a of next) {
    const prev = previous.get(a.partition);
    if (!prev) assert.equal(a.generation, a.node === "" ? 0 : 1, `${what}: first generation of partition ${a.partition}`);
    else if (prev.node === a.node) assert.equal(a.generation, prev.generation, `${what}: partition ${a.partition} kept its owner, so its generation`);
    else assert.equal(a.generation, prev.generation + 1, `${what}: partition ${a.partition} moved ${prev.node}→${a.node}, generation +1`);
  }
}

test("a fresh assignment is balanced for many (partitions, nodes) pairs", () => {
  for (let partitions = 1; partitions <= 40; partitions++) {
    for (let n = 1; n <= 9; n++) {
      const nodes = nodeNames(n);
      const as = assignPartitions(partitions, nodes, new Map());
      assertWellFormed(as, partitions, nodes, `P=${partitions} n=${n}`);
      for (const a of as) assert.equal(a.generation, 1);
    }
  }
});

test("the result depends on the set of live nodes, not their order or repeats", () => {
  const nodes = nodeNames(5);
  const a = assignPartitions(17, nodes, new Map());
  const b = assignPartitions(17, [...nodes].reverse().concat(nodes[2]!, nodes[0]!), new Map());
  assert.deepEqual(b, a);
  assertWellFormed(b, 17, nodes, "with repeats");
});

test("adding a node moves the fewest partitions that rebalance, and each only to the new node", () => {
  for (const partitions of [1, 2, 7, 8, 16, 31, 64, 100]) {
    for (let n = 1; n <= 8; n++) {
      const nodes = nodeNames(n);
      const before = asMap(assignPartitions(partitions, nodes, new Map()));
      const grown = [...nodes, "node-new"];
      const after = assignPartitions(partitions, grown, before);
      const what = `P=${partitions}: ${n}→${n + 1} nodes`;
      assertWellFormed(after, partitions, grown, what);
      const moved = moves(before, after);
      assert.equal(moved.length, minimumMoves(partitions, grown, before), `${what}: moved ${moved.length}`);
      assert.equal(moved.length, Math.floor(partitions / (n + 1)), `${what}: the new node takes its share, about P/(n+1)`);
      for (const p of moved) assert.equal(after[p]!.node, "node-new", `${what}: partition ${p} moved between old nodes`);
      assertGenerations(before, after, what);
    }
  }
});

test("removing a node moves only that node's partitions", () => {
  for (const partitions of [1, 3, 8, 16, 31, 64, 100]) {
    for (let n = 2; n <= 8; n++) {
      const nodes = nodeNames(n);
      for (const gone of [nodes[0]!, nodes[n - 1]!, nodes[Math.floor(n / 2)]!]) {
        const before = asMap(assignPartitions(partitions, nodes, new Map()));
        const left = nodes.filter((x) => x !== gone);
        const after = assignPartitions(partitions, left, before);
        const what = `P=${partitions}: ${n} nodes, ${gone} gone`;
        assertWellFormed(after, partitions, left, what);
        const moved = moves(before, after).sort((a, b) => a - b);
        const itsOwn = [...before.values()].filter((a) => a.node === gone).map((a) => a.partition);
        assert.deepEqual(moved, itsOwn, what);
        assertGenerations(before, after, what);
      }
    }
  }
});

test("random membership changes: always balanced, minimal moves, generations grow exactly on a move", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const rnd = prng(seed);
    const partitions = rnd.int(1, 48);
    const pool = nodeNames(10);
    let live = pool.filter(() => rnd.chance(0.5));
    let current: ReadonlyMap<number, Assignment> = new Map();
    for (let step = 0; step < 30; step++) {
      const next = assignPartitions(partitions, live, current);
      const what = `seed ${seed} step ${step}: P=${partitions}, live ${live.join(",") || "(none)"}`;
      if (live.length === 0) {
        assert.ok(next.every((a) => a.node === ""), `${what}: no owner without nodes`);
        assert.equal(next.length, partitions);
      } else {
        assertWellFormed(next, partitions, live, what);
        assert.equal(moves(current, next).length, minimumMoves(partitions, live, current), `${what}: moves`);
      }
      assertGenerations(current, next, what);
      // Assigning again with nothing changed moves nothing.
      assert.deepEqual(assignPartitions(partitions, live, asMap(next)), next, `${what}: stable`);
      current = asMap(next);
      // One to three nodes come or go.
      for (let k = rnd.int(1, 3); k > 0; k--) {
        const node = rnd.pick(pool);
        live = live.includes(node) ? live.filter((x) => x !== node) : [...live, node];
      }
    }
  }
});

test("with no live node every partition gets node \"\" and a former owner sees its generation grow", () => {
  const none = assignPartitions(4, [], new Map());
  assert.deepEqual(none, [0, 1, 2, 3].map((p) => ({ partition: p, node: "", generation: 0 })));
  const owned = asMap(assignPartitions(4, ["a", "b"], asMap(none)));
  assert.deepEqual([...owned.values()].map((a) => a.generation), [1, 1, 1, 1]);
  const orphaned = assignPartitions(4, [], owned);
  assert.deepEqual(orphaned, [0, 1, 2, 3].map((p) => ({ partition: p, node: "", generation: 2 })));
  // Still no node: nothing changes hands, the generation stays.
  assert.deepEqual(assignPartitions(4, [], asMap(orphaned)), orphaned);
  const back = assignPartitions(4, ["a"], asMap(orphaned));
  assert.deepEqual(back, [0, 1, 2, 3].map((p) => ({ partition: p, node: "a", generation: 3 })));
});

test("zero partitions give an empty assignment", () => {
  assert.deepEqual(assignPartitions(0, ["a", "b"], new Map()), []);
  assert.deepEqual(assignPartitions(0, [], new Map()), []);
});
