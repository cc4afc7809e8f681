/** Process plumbing shared by the entry points: signals and a hard stop deadline. */
import type { Logger } from "../core/logger.js";

/** After SIGTERM/SIGINT, a process that has not stopped by then exits anyway. */
export const SHUTDOWN_DEADLINE_MS = 15_000;

/** Runs `stop` on the first SIGINT/SIGTERM; a second signal or the deadline exits at once. */
export function onShutdownSignal(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn("second signal: exiting without a clean stop", { signal });
      process.exit(130);
    }
    stopping = true;
    log.info("stopping", { signal });
    const deadline = setTimeout(() => {
      log.error("clean stop took too long; exiting", { deadlineMs: SHUTDOWN_DEADLINE_MS });
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    stop().then(
      () => process.exit(0),
      (err) => {
        log.error("stop failed", { err });
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}

/**
 * Logs an uncaught exception or an unhandled rejection as one error line and exits 1,
 * instead of Node printing a raw stack: every line a role writes stays a log line.
 */
export function logFatalErrors(log: Logger): void {
  process.on("uncaughtException", (err, origin) => {
    log.error(origin === "unhandledRejection" ? "unhandled rejection; exiting" : "uncaught exception; exiting", { err });
    process.exit(1);
  });
}
