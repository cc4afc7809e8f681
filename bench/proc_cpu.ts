/**
 * CPU time spent by the processes of a figure's layout, read from /proc: on two
 * cores a throughput figure is bound by the CPU all its processes spend per
 * event, so this says which process a gap to the baseline comes from.
 * Linux only; elsewhere there is no meter (callers leave the numbers out).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** Processes by the role they play in a figure (several pids are summed). */
export type ProcessRoles = Readonly<Record<string, readonly number[]>>;

/** CPU µs per role since the meter started. */
export type CpuByRole = Record<string, number>;

let ticksPerSecond: number | undefined;
/** The kernel's clock ticks per second (utime and stime are counted in them). */
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100; // Linux's USER_HZ nearly everywhere
    }
  }
  return ticksPerSecond;
}

/** User + system CPU µs of `pid` so far; undefined when it cannot be read (no /proc, process gone). */
export function processCpuMicros(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its end.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
  return Number.isFinite(ticks) ? (ticks * 1e6) / clockTicks() : undefined;
}

/** Starts counting; stop() returns µs per role, or undefined when some process could not be read. */
export function startCpuMeter(roles: ProcessRoles): { stop(): CpuByRole | undefined } {
  const sum = (pids: readonly number[]) => {
    let total = 0;
    for (const pid of pids) {
      const us = processCpuMicros(pid);
      if (us === undefined) return undefined;
      total += us;
    }
    return total;
  };
  const start = Object.entries(roles).map(([role, pids]) => [role, sum(pids)] as const);
  return {
    stop() {
      const out: CpuByRole = {};
      for (const [role, before] of start) {
        const after = sum(roles[role]!);
        if (before === undefined || after === undefined) return undefined;
        out[role] = after - before;
      }
      return out;
    },
  };
}
