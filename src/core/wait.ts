/** Waiting for a condition with a named deadline: polling with a limit, never a bare sleep. */

export interface WaitOptions {
  /** @default 20_000 */
  timeoutMs?: number;
  /** Poll period. @default 25 */
  intervalMs?: number;
}

/**
 * Polls `check` until it returns a value other than undefined/false.
 * @throws Error naming `what` and the last error or value seen at the deadline.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, opts: WaitOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 25));
  }
}
