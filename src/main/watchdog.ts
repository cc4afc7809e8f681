#!/usr/bin/env node
/**
 * The local cluster's watchdog: a tiny process that stops the processes it
 * watches (nats-server, which is not ours and cannot watch its parent) when the
 * local cluster's main process dies without a clean stop (SIGKILL, OOM). It
 * learns of the death from its IPC channel, which the kernel closes with the
 * parent. A clean stop kills the watchdog first (stopWatchdog), so it never
 * races the orderly shutdown.
 *
 * Started by {@link startWatchdog}; the pids to stop come as `{kind: "watch", pid}` messages.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createJsonLogger } from "../core/logger.js";
import { processAlive } from "../core/pid.js";
import { onParentGone } from "./process.js";

/** After SIGTERM, a watched process still running this long later gets SIGKILL. */
export const WATCHDOG_KILL_AFTER_MS = 5_000;
/** How often the watchdog checks whether a stopped process is gone. */
const POLL_MS = 50;

export interface Watchdog {
  /** Adds a process to stop if the parent dies. */
  watch(pid: number): void;
  /** Ends the watchdog without touching what it watched (a clean stop is under way). Idempotent. */
  stop(): void;
}

const ENTRY = fileURLToPath(import.meta.url);

/** Starts the watchdog process for this process. */
export function startWatchdog(): Watchdog {
  // Its own process group: a Ctrl-C in the terminal must not end it before the clean stop does.
  const child = fork(ENTRY, [], { stdio: ["ignore", "ignore", "inherit", "ipc"], detached: true, execArgv: [] });
  child.unref();
  child.channel?.unref();
  return {
    watch: (pid) => void child.send({ kind: "watch", pid }),
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

function signal(pid: number, s: NodeJS.Signals): void {
  try {
    process.kill(pid, s);
  } catch {
    // already gone: nothing to stop
  }
}

async function stopAll(pids: readonly number[]): Promise<void> {
  for (const pid of pids) signal(pid, "SIGTERM");
  const deadline = Date.now() + WATCHDOG_KILL_AFTER_MS;
  while (pids.some(processAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, POLL_MS));
  for (const pid of pids.filter(processAlive)) signal(pid, "SIGKILL");
}

function runWatchdog(): void {
  const pids: number[] = [];
  process.on("message", (m: unknown) => {
    const msg = m as { kind?: unknown; pid?: unknown };
    if (msg?.kind === "watch" && typeof msg.pid === "number") pids.push(msg.pid);
  });
  onParentGone(() => {
    createJsonLogger("info", { node: "watchdog" }).warn("the local cluster's main process is gone; stopping what it started", { pids });
    void stopAll(pids).then(() => process.exit(0));
  });
}

if (process.argv[1] === ENTRY) runWatchdog();
