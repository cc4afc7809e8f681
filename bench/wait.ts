/** Waiting for a condition with a named deadline: the bench never sleeps to synchronise. */
import { waitFor as waitForCore, type WaitOptions } from "../src/core/wait.js";

export type { WaitOptions };

/** src/core/wait.ts waitFor with the bench's defaults: 60 s deadline, 10 ms resolution (it ends measurements). */
export function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, opts: WaitOptions = {}): Promise<T> {
  return waitForCore(what, check, { timeoutMs: 60_000, intervalMs: 10, ...opts });
}
