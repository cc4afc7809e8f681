/**
 * Partition assignment: pure, balanced and sticky. A partition keeps its owner
 * while that owner is alive and not over its share; the rest go to the nodes
 * with the fewest partitions. The generation grows whenever the owner changes,
 * so a former owner can tell it is stale.
 */
import type { Assignment } from "../core/records.js";

/**
 * @param previous the current assignment of each partition (missing ones have none).
 * @param liveNodes speed nodes considered alive.
 * @returns the new assignment of every partition 0..partitions-1.
 */
export function assignPartitions(partitions: number, liveNodes: readonly string[], previous: ReadonlyMap<number, Assignment>): Assignment[] {
  const nodes = [...new Set(liveNodes)].sort();
  const result: Assignment[] = [];
  if (nodes.length === 0) {
    for (let p = 0; p < partitions; p++) {
      const prev = previous.get(p);
      result.push({ partition: p, node: "", generation: prev && prev.node !== "" ? prev.generation + 1 : (prev?.generation ?? 0) });
    }
    return result;
  }
  const base = Math.floor(partitions / nodes.length);
  let extra = partitions % nodes.length; // this many nodes may hold base + 1
  const load = new Map(nodes.map((n) => [n, 0]));
  const owner = new Array<string>(partitions).fill("");
  const cap = (n: string) => base + (load.get(n)! >= base && extra > 0 ? 1 : 0);
  // Keep owners that are alive, up to their share.
  for (let p = 0; p < partitions; p++) {
    const prev = previous.get(p);
    if (!prev || !load.has(prev.node)) continue;
    const l = load.get(prev.node)!;
    if (l < cap(prev.node)) {
      if (l >= base) extra--;
      load.set(prev.node, l + 1);
      owner[p] = prev.node;
    }
  }
  // Hand the rest to the least loaded nodes.
  for (let p = 0; p < partitions; p++) {
    if (owner[p] !== "") continue;
    let best = nodes[0]!;
    for (const n of nodes) if (load.get(n)! < load.get(best)!) best = n;
    if (load.get(best)! >= base) extra--;
    load.set(best, load.get(best)! + 1);
    owner[p] = best;
  }
  for (let p = 0; p < partitions; p++) {
    const prev = previous.get(p);
    const node = owner[p]!;
    const generation = !prev ? 1 : prev.node === node ? prev.generation : prev.generation + 1;
    result.push({ partition: p, node, generation });
  }
  return result;
}
