/**
 * A window of operations in flight for one producer loop: it takes a slot
 * before starting an operation, waits when all are taken, and each operation
 * frees its slot when it settles. A count and one waiter: cheaper per
 * operation than racing the set of pending promises, which subscribes to
 * every one of them each time.
 */
export interface InFlightWindow {
  /** Operations in flight. */
  readonly size: number;
  /** Takes a slot: at once (undefined) while one is free, else a promise that resolves once one is. */
  take(): Promise<void> | undefined;
  /** Frees the slot of a settled operation. */
  release(): void;
  /** Resolves once nothing is in flight. */
  drained(): Promise<void>;
}

/** A window of `limit` slots, for one producer (a second waiter would replace the first). */
export function inFlightWindow(limit: number): InFlightWindow {
  let size = 0;
  let wake: (() => void) | undefined;
  const wait = () => new Promise<void>((r) => (wake = r));
  return {
    get size() {
      return size;
    },
    take() {
      if (size < limit) {
        size++;
        return undefined;
      }
      return (async () => {
        while (size >= limit) await wait();
        size++;
      })();
    },
    release() {
      size--;
      const w = wake;
      wake = undefined;
      w?.();
    },
    async drained() {
      while (size > 0) await wait();
    },
  };
}
