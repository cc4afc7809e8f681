/** The batch layer: the archiver (master dataset) and batch recomputes (batch views). */
export { createArchiver, ArchiverStates, type Archiver, type ArchiverState, type ArchiverDeps, type ArchiverOptions, type ArchiverStats } from "./archiver.js";
export { recomputeViews, dropViewsBefore, type RecomputeRequest, type RecomputeResult } from "./recompute.js";
export { startBatchExecutor, type BatchExecutorDeps, type BatchExecutorOptions } from "./executor.js";
