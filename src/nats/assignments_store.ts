/**
 * Partition assignments: key `p.<p>` of the assignments bucket names the speed
 * node that owns partition p and the generation of that ownership. The
 * coordinator writes them; speed nodes follow them (starting and stopping
 * actors); serving and status read them.
 */
import type { KV } from "@nats-io/kv";
import type { Logger } from "../core/logger.js";
import type { Assignment } from "../core/records.js";
import { fencedWrite, fields, readValue, stampEpoch, watchValues, type ValueWatch } from "./kv.js";
import { partitionKey } from "./names.js";

export function parseAssignment(v: unknown): Assignment {
  const o = fields.object(v, "assignment");
  return {
    partition: fields.int(o, "partition"),
    node: fields.string(o, "node"),
    generation: fields.int(o, "generation"),
    ...(o.epoch === undefined ? {} : { epoch: fields.int(o, "epoch") }),
  };
}

/** Partition p's assignment, or undefined when it has none yet. @throws MalformedValueError */
export async function readAssignment(kv: KV, p: number): Promise<Assignment | undefined> {
  return (await readValue(kv, partitionKey(p), parseAssignment))?.value;
}

/** The assignments of partitions 0..partitions-1 that have one. */
export async function readAssignments(kv: KV, partitions: number): Promise<Map<number, Assignment>> {
  const out = new Map<number, Assignment>();
  for (let p = 0; p < partitions; p++) {
    const a = await readAssignment(kv, p);
    if (a) out.set(p, a);
  }
  return out;
}

/** Writes `a` unless a newer leader than `a.epoch` wrote the partition's assignment. @throws FencedError */
export async function writeAssignment(kv: KV, a: Assignment): Promise<void> {
  await fencedWrite(kv, partitionKey(a.partition), parseAssignment, a.epoch ?? 0, `the assignment of partition ${a.partition}`, () => a);
}

/** A new leader's stamp on partition p's assignment (owner and generation unchanged). */
export function stampAssignment(kv: KV, p: number, epoch: number): Promise<boolean> {
  return stampEpoch(kv, partitionKey(p), parseAssignment, epoch, `the assignment of partition ${p}`);
}

/** Calls `onAssignment` with every partition's assignment now and at each change, until stopped. */
export function watchAssignments(kv: KV, log: Logger, onAssignment: (a: Assignment) => void): Promise<ValueWatch> {
  return watchValues(kv, { key: "p.*", parse: parseAssignment, what: "assignments", log, onValue: (_k, a) => onAssignment(a) });
}
