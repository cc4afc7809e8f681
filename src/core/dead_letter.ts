/**
 * The dead-letter record: what a layer refused and why. Ingest writes the
 * events it refuses (stage "ingest"); the archiver writes the stream records
 * both layers skip (stage "stream") and the rows ClickHouse refuses (stage
 * "archive"). One shape for all, so one reader reads them all.
 */
import type { FieldProblem } from "./errors.js";

export const DeadLetterStages = {
  /** Refused by ingest: it never reached the stream. */
  ingest: "ingest",
  /** On a partition subject but not a valid event record: skipped by the archiver and the speed actors alike. */
  stream: "stream",
  /** A valid event ClickHouse refused to store: left out of the master dataset. */
  archive: "archive",
} as const;
export type DeadLetterStage = (typeof DeadLetterStages)[keyof typeof DeadLetterStages];

export interface DeadLetter {
  readonly stage: DeadLetterStage;
  /** The source named, when one was. */
  readonly source: string | null;
  /** What was refused: the producer's event, the decoded record, or the bytes when they were not msgpack. */
  readonly raw: unknown;
  /** The first problem (kept for readers of the single-field shape). */
  readonly field: string;
  readonly reason: string;
  /** Every problem found. */
  readonly problems: readonly FieldProblem[];
  readonly eventId: string | null;
  /** Stream position of a skipped or refused record (stages "stream" and "archive"); null at ingest. */
  readonly partition: number | null;
  readonly seq: number | null;
  readonly refusedAt: string;
  /**
   * Set when the whole record would not fit in one NATS message: `raw` is then the first part
   * of the raw value's JSON text, and this the UTF-8 length of the whole text.
   */
  readonly rawTruncatedFrom?: number;
}

/** Message id of a dead letter for a stream position: a replay inside the duplicate window writes it once. */
export const deadLetterMsgId = (stage: DeadLetterStage, partition: number, seq: number) => `dead:${stage}:${partition}:${seq}`;
