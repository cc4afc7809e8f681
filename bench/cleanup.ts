/**
 * Child processes the bench started, so that Ctrl-C (which skips `finally`
 * blocks) can still stop them: speed nodes run in their own process group and
 * would not get the terminal's signal.
 */
const pids = new Set<number>();

/** Remembers a child process to kill on Ctrl-C. */
export function trackPid(pid: number): void {
  pids.add(pid);
}

/** Forgets a child process that has exited. */
export function untrackPid(pid: number): void {
  pids.delete(pid);
}

/** SIGKILLs every tracked process that is still there. */
export function killTracked(): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  pids.clear();
}
