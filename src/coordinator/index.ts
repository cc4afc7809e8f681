/** The coordinator: membership, partition assignment, batch runs, cuts and the watermark. */
export { createCoordinator, ARCHIVER_TIMEOUT_MS, QUEUED_PHASE, type QueuedDetail, type Coordinator, type CoordinatorDeps, type CoordinatorOptions, type RunNowReply, type RollbackReply } from "./coordinator.js";
export { assignPartitions } from "./assignment.js";
export { readWatermark, WatermarkConflictError } from "./watermark_store.js";
export { RunPhases, ArchiverTimeoutError, type RunPhase, type RunProgress } from "./batch_run.js";
export { RollbackRefusedError } from "./rollback.js";
