/** Ingest: validate events, publish them to their partitions, dead-letter the refused. */
export { createIngest, EventTooLargeError, INGEST_MAX_IN_FLIGHT, type Ingest, type IngestDeps, type IngestResult, type Refusal, type DeadLetter } from "./ingest.js";
