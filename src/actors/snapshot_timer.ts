/**
 * When a speed actor writes its periodic snapshot. Encoding a snapshot runs on the speed node's
 * event loop, so the actors of a node must not all encode at the same moment: started together,
 * timers of one period fired together, and every query and event of the node waited for all of
 * them (docs/performance.md, section 5). Each partition gets its own slot of the period on the
 * wall clock instead: partition p of P fires at p/P of every period, whichever node runs it and
 * whenever its actor started, so the actors of one node (and the snapshot writes of all nodes)
 * take turns.
 */

/** ms from `nowMs` to the next slot of `partition` (of `partitions`) in a period of `intervalMs`; never 0. */
export function msToSnapshotSlot(nowMs: number, intervalMs: number, partition: number, partitions: number): number {
  const slot = Math.floor((intervalMs * (partition % partitions)) / partitions);
  const wait = (((slot - nowMs) % intervalMs) + intervalMs) % intervalMs;
  return wait === 0 ? intervalMs : wait;
}

export interface SnapshotTimer {
  /** Stops the timer; a fire already running goes on. Idempotent. */
  stop(): void;
}

export interface SnapshotTimerOptions {
  /** Period, ms. */
  readonly intervalMs: number;
  readonly partition: number;
  /** Partitions of the stream: the period is split into this many slots. */
  readonly partitions: number;
}

/** Calls `fire` once in each period, in the partition's slot. The timer does not keep the process alive. */
export function startSnapshotTimer(opts: SnapshotTimerOptions, fire: () => void): SnapshotTimer {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  // Armed anew each time, from the clock: a late fire does not shift the slots after it. A timer
  // that fired a little before its slot by the wall clock must not fire again at that slot.
  const arm = (minimumMs: number) => {
    let wait = msToSnapshotSlot(Date.now(), opts.intervalMs, opts.partition, opts.partitions);
    if (wait < minimumMs) wait += opts.intervalMs;
    timer = setTimeout(() => {
      if (stopped) return;
      arm(opts.intervalMs / 2);
      fire();
    }, wait);
    timer.unref();
  };
  arm(0);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
