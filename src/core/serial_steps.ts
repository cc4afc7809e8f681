/**
 * Work that must happen one step at a time and in order (a speed node's assignment changes,
 * actor stops and restarts), with what a bare promise chain lacks: a step that fails is logged
 * and the next one still runs, and a step that runs too long is reported (logged, and visible
 * to health through stuck()) instead of silently holding up every step queued behind it.
 *
 * A stuck step is never abandoned: the next step could then start what it has not finished
 * stopping (a second actor for one partition). Reporting it is what an operator can act on.
 */
import { ensureError } from "./errors.js";
import type { Logger } from "./logger.js";

export interface SerialSteps {
  /** Queues `step` behind every step queued before it. @returns once it has run; never rejects */
  queue(what: string, step: () => Promise<void>): Promise<void>;
  /** Resolves once every step queued so far has run. */
  drained(): Promise<void>;
  /** The step running now; null when none runs. */
  running(): RunningStep | null;
  /** The running step once it has run for `stuckAfterMs` or longer; null otherwise. */
  stuck(): RunningStep | null;
}

export interface RunningStep {
  /** What the step does, as queued ("stop the actor of partition 3"). */
  readonly what: string;
  readonly runningMs: number;
  /** Steps queued behind it. */
  readonly waiting: number;
}

export interface SerialStepsOptions {
  log: Logger;
  /** Whose steps, for log lines ("speed node"). */
  owner: string;
  /** A step running this long is reported. */
  stuckAfterMs: number;
}

export function createSerialSteps(o: SerialStepsOptions): SerialSteps {
  let tail: Promise<void> = Promise.resolve();
  let queued = 0;
  let running: { what: string; startedMono: number } | null = null;
  const runningMs = (r: { startedMono: number }) => Math.round(performance.now() - r.startedMono);
  const current = (): RunningStep | null => running && { what: running.what, runningMs: runningMs(running), waiting: queued - 1 };

  const run = async (what: string, step: () => Promise<void>) => {
    const started = { what, startedMono: performance.now() };
    running = started;
    let reported = false;
    const timer = setTimeout(() => {
      reported = true;
      o.log.error(`${o.owner}: "${what}" has run for ${o.stuckAfterMs} ms; the changes queued behind it wait`, { waiting: current()?.waiting ?? 0 });
    }, o.stuckAfterMs);
    timer.unref();
    try {
      await step();
    } catch (err) {
      o.log.error(`${o.owner}: "${what}" failed; going on with the next change`, { err: ensureError(err) });
    } finally {
      clearTimeout(timer);
      if (reported) o.log.warn(`${o.owner}: "${what}" finished after ${runningMs(started)} ms`);
      running = null;
      queued--;
    }
  };

  return {
    queue(what, step) {
      queued++;
      tail = tail.then(() => run(what, step));
      return tail;
    },
    drained: () => tail,
    running: current,
    stuck() {
      const r = current();
      return r && r.runningMs >= o.stuckAfterMs ? r : null;
    },
  };
}
