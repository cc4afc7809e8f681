/** The coordinator: membership, partition assignment, batch runs, cuts and the watermark. */
export { createCoordinator, ARCHIVER_TIMEOUT_MS, type Coordinator, type CoordinatorDeps, type CoordinatorOptions } from "./coordinator.js";
export { assignPartitions } from "./assignment.js";
export { RunPhases, type RunPhase, type RunProgress } from "./batch_run.js";
export { RollbackRefusedError } from "./rollback.js";
