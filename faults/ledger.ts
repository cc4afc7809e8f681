/**
 * The producer and its ledger: events published through the project's ingest
 * library, each publish's outcome written down (acknowledged, or unknown: a
 * timeout or a lost connection), an unknown publish retried with the same id
 * as a real producer does. The ledger is the independent truth the checker
 * recounts from; it shares no code with the runtime's aggregation.
 */
import type { Ingest } from "../src/ingest/index.js";

const MINUTE = 60_000;
/** Event times lie in a fixed two-hour window; ranges of the checker cover it and parts of it. */
export const T0 = Date.UTC(2026, 11, 1, 8, 0, 0);
export const EVENT_SPAN_MS = 120 * MINUTE;
export const KEYS = Array.from({ length: 24 }, (_, i) => `a-${i + 1}`);

export interface LedgerEvent {
  readonly id: string;
  readonly article_id: string;
  readonly user_id: string;
  readonly ts: number;
}

export interface LedgerCounts {
  /** Events the producer published (each id once, however many attempts). */
  published: number;
  /** Events the stream acknowledged (at the first attempt or a retry). */
  acked: number;
  /** Attempts that ended without an answer and were retried with the same id. */
  unknownAttempts: number;
  /** Events still without an acknowledgement when the producer stopped. */
  unresolved: number;
}

export class Ledger {
  private n = 0;
  /** Every event published, by id; `acked` once the stream said so. */
  private readonly events = new Map<string, { e: LedgerEvent; acked: boolean }>();
  readonly counts: LedgerCounts = { published: 0, acked: 0, unknownAttempts: 0, unresolved: 0 };

  constructor(private readonly rand: () => number) {}

  private next(): LedgerEvent {
    const i = this.n++;
    const key = KEYS[Math.min(KEYS.length - 1, Math.floor(KEYS.length * this.rand() ** 1.5))]!;
    // One in ten is late: its time lies early in the window, below what batch runs already covered.
    const ts = this.rand() < 0.1 ? T0 + Math.floor(this.rand() * 10 * MINUTE) : T0 + Math.floor(this.rand() * EVENT_SPAN_MS);
    return { id: `ev-${i}`, article_id: key, user_id: `u-${i % 97}`, ts };
  }

  /** Publishes one new event until the stream acknowledges it or `keepTrying()` says stop. */
  async publishOne(ingest: Ingest, keepTrying: () => boolean): Promise<void> {
    const e = this.next();
    const entry = { e, acked: false };
    this.events.set(e.id, entry);
    this.counts.published++;
    for (let attempt = 0; ; attempt++) {
      try {
        await ingest.publish("pageviews", e);
        entry.acked = true;
        this.counts.acked++;
        return;
      } catch {
        this.counts.unknownAttempts++;
        if (!keepTrying()) {
          this.counts.unresolved++;
          return;
        }
        // A producer backs off and tries the same id again; the stream drops a copy it already holds.
        await new Promise((r) => setTimeout(r, Math.min(1_000, 50 * 2 ** attempt)));
      }
    }
  }

  /** Events of `key` whose window starts in [fromMs, toMs): acknowledged ones, and all published (an unknown may have landed). */
  count(key: string, fromMs: number, toMs: number): { acked: number; published: number } {
    let acked = 0;
    let published = 0;
    for (const { e, acked: ok } of this.events.values()) {
      const w = e.ts - (e.ts % MINUTE);
      if (e.article_id !== key || w < fromMs || w >= toMs) continue;
      published++;
      if (ok) acked++;
    }
    return { acked, published };
  }
}

/** Publishes with `concurrency` producers until stopped; stop() waits for what is in flight (retries end at `retryUntil`). */
export function startProducer(ingest: Ingest, ledger: Ledger, concurrency: number, ratePerProducerPerS: number) {
  let stopping = false;
  let retryUntil = Number.POSITIVE_INFINITY;
  const loops = Array.from({ length: concurrency }, async () => {
    while (!stopping) {
      const started = performance.now();
      await ledger.publishOne(ingest, () => Date.now() < retryUntil);
      const pause = 1_000 / ratePerProducerPerS - (performance.now() - started);
      if (pause > 0) await new Promise((r) => setTimeout(r, pause));
    }
  });
  return {
    /** Stops publishing new events; unknown ones are retried for up to `retryMs` more. */
    async stop(retryMs: number) {
      stopping = true;
      retryUntil = Date.now() + retryMs;
      await Promise.all(loops);
    },
  };
}
