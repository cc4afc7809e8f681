/** Process plumbing shared by the entry points: signals and a hard stop deadline. */
import type { Logger } from "../core/logger.js";

/** After SIGTERM/SIGINT, a process that has not stopped by then exits anyway. */
export const SHUTDOWN_DEADLINE_MS = 15_000;

/**
 * Runs `stop` on the first SIGINT/SIGTERM; a second signal or the deadline exits at once.
 * @returns a function that starts the same clean stop for another reason (e.g. the parent
 *   process is gone); it does nothing once a stop is under way.
 */
export function onShutdownSignal(log: Logger, stop: () => Promise<void>): (reason: string) => void {
  let stopping = false;
  const begin = (why: Record<string, string>) => {
    stopping = true;
    log.info("stopping", why);
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
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn("second signal: exiting without a clean stop", { signal });
      process.exit(130);
    }
    begin({ signal });
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return (reason) => {
    if (!stopping) begin({ reason });
  };
}

/**
 * A child started with an IPC channel (spawn.ts, the watchdog) calls `onGone` when that
 * channel closes: the parent exited, however it died (SIGKILL and OOM included), since the
 * kernel closes the channel with the process. Does nothing in a process without a channel.
 */
export function onParentGone(onGone: () => void): void {
  if (!process.send) return;
  if (!process.connected) return onGone(); // it went while this process was starting
  process.once("disconnect", onGone);
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
