/**
 * A steady background feed (events/s in ticks of 50 ms) so that latency
 * figures are taken on a system that is doing work, not an idle one. Ticks
 * never overlap: a slow publish delays the next one.
 */
import { ensureError } from "../src/core/errors.js";

/** Period of the background feed. */
export const FEED_TICK_MS = 50;

/** A running feed. */
export interface Feed {
  /** Stops ticking and waits for the publish in flight; rejects if a publish failed. */
  stop(): Promise<void>;
  /** Events handed to `publish` so far (a slow publish lowers the rate actually fed). */
  sentEvents(): number;
}

/** @param publish sends the events of one tick (`count` of them, starting at `offset`). */
export function startFeed(ratePerS: number, publish: (offset: number, count: number) => Promise<unknown>): Feed {
  let sent = 0;
  let carry = 0;
  let failure: Error | undefined;
  let inFlight: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    carry += (ratePerS * FEED_TICK_MS) / 1000;
    const n = Math.floor(carry);
    carry -= n;
    const offset = sent;
    sent += n;
    inFlight = inFlight.then(() => (n > 0 && !failure ? publish(offset, n) : undefined)).catch((err) => (failure ??= ensureError(err)));
  }, FEED_TICK_MS);
  return {
    async stop() {
      clearInterval(timer);
      await inFlight;
      if (failure) throw failure;
    },
    sentEvents: () => sent,
  };
}
