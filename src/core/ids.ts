/**
 * Branded ids: numbers that are easy to confuse (a partition, a run, a stream
 * sequence, an assignment generation) get their own types, each with a parser
 * that says what it expected.
 */

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A partition of the event stream, 0 ≤ p < partitions. */
export type PartitionId = Brand<number, "PartitionId">;
/** A batch run number; runs start at 1 and only move forward. */
export type RunNumber = Brand<number, "RunNumber">;
/** A JetStream stream sequence (1-based; 0 means "before the first message"). */
export type StreamSeq = Brand<number, "StreamSeq">;
/** Assignment generation of a partition; it grows each time the owner changes. */
export type Generation = Brand<number, "Generation">;

function nonNegativeInt(value: unknown, what: string): number {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
    throw new TypeError(`${what}: expected a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return n;
}

export function parsePartitionId(value: unknown, partitions?: number): PartitionId {
  const n = nonNegativeInt(value, "partition");
  if (partitions !== undefined && n >= partitions) {
    throw new RangeError(`partition: expected 0..${partitions - 1}, got ${n}`);
  }
  return n as PartitionId;
}

export function parseRunNumber(value: unknown): RunNumber {
  return nonNegativeInt(value, "run") as RunNumber;
}

export function parseStreamSeq(value: unknown): StreamSeq {
  return nonNegativeInt(value, "stream sequence") as StreamSeq;
}

export function parseGeneration(value: unknown): Generation {
  return nonNegativeInt(value, "generation") as Generation;
}
