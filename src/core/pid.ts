/** Whether a process id names a running process on this host. */
import { readFileSync } from "node:fs";

/**
 * True while `pid` runs on this host. A zombie (exited, not yet reaped: an orphan whose
 * new parent does not reap it) counts as gone. Signal 0 checks existence; EPERM means it
 * runs as another user. Where there is no /proc, a zombie reads as running.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The state follows the command name, which is in parentheses and may hold spaces.
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ENOENT";
  }
}
