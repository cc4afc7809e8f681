/**
 * The merge at a watermark, pure: batch part (batch view N) plus speed parts
 * (the actors' segments above cut N), and the provenance of the answer.
 */

export interface PartitionPart {
  readonly partition: number;
  readonly cutSeq: number;
  readonly appliedSeq: number;
  readonly value: number;
  readonly heldEvents: number;
  readonly generation: number;
}

export interface MergedAnswer {
  readonly run: number;
  readonly batchPart: number;
  readonly speedPart: number;
  readonly total: number;
  readonly partitions: readonly PartitionPart[];
}

export function mergeAtWatermark(run: number, batchPart: number, parts: readonly PartitionPart[]): MergedAnswer {
  let speedPart = 0;
  for (const p of parts) speedPart += p.value;
  return { run, batchPart, speedPart, total: batchPart + speedPart, partitions: parts };
}
