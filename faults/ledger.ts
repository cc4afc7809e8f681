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

interface Entry {
  readonly e: LedgerEvent;
  acked: boolean;
  /** performance.now() of the acknowledgement. */
  ackedAt: number;
  /** Where the stream stored it, when the acknowledgement said (not for a duplicate). */
  at?: { partition: number; seq: number };
  /**
   * An attempt before the acknowledged one ended unknown: it may have landed first, at an earlier
   * position than `at` (a stream leader that changed meanwhile may not have known its id).
   */
  uncertain: boolean;
  /** Copies republished on purpose after the duplicate window (F18): counted until the next batch run dedupes them. */
  copies: number;
}

export class Ledger {
  private n = 0;
  /** Every event published, by id, in publish order. */
  private readonly events = new Map<string, Entry>();
  readonly counts: LedgerCounts = { published: 0, acked: 0, unknownAttempts: 0, unresolved: 0 };

  constructor(private readonly rand: () => number) {}

  private next(): Entry {
    const i = this.n++;
    const key = KEYS[Math.min(KEYS.length - 1, Math.floor(KEYS.length * this.rand() ** 1.5))]!;
    // One in ten is late: its time lies early in the window, below what batch runs already covered.
    const ts = this.rand() < 0.1 ? T0 + Math.floor(this.rand() * 10 * MINUTE) : T0 + Math.floor(this.rand() * EVENT_SPAN_MS);
    const entry: Entry = { e: { id: `ev-${i}`, article_id: key, user_id: `u-${i % 97}`, ts }, acked: false, ackedAt: 0, copies: 0, uncertain: false };
    this.events.set(entry.e.id, entry);
    this.counts.published++;
    return entry;
  }

  /** `id` was acknowledged (by this process's ingest or another producer's). */
  markAcked(id: string, at?: { partition: number; seq: number }): void {
    const entry = this.events.get(id)!;
    if (at) entry.at ??= at;
    if (entry.acked) return;
    entry.acked = true;
    entry.ackedAt = performance.now();
    this.counts.acked++;
  }

  /** Publishes one new event until the stream acknowledges it or `keepTrying()` says stop. */
  async publishOne(ingest: Ingest, keepTrying: () => boolean): Promise<void> {
    await this.publishUntilAcked(ingest, this.next(), keepTrying);
  }

  /**
   * `n` new events handed to another producer (F5's producer process): published in the
   * ledger, acknowledged once that producer says so (markAcked).
   */
  handOff(n: number): LedgerEvent[] {
    return Array.from({ length: n }, () => this.next().e);
  }

  /** Events handed off or published that have no acknowledgement yet. */
  unacked(): LedgerEvent[] {
    return [...this.events.values()].filter((x) => !x.acked).map((x) => x.e);
  }

  /**
   * Publishes `e` (already in the ledger) again with its id until acknowledged: a producer's retry.
   * @returns whether the stream said it held the event already (an earlier attempt landed); undefined when it never answered
   */
  retry(ingest: Ingest, e: LedgerEvent, keepTrying: () => boolean): Promise<boolean | undefined> {
    const entry = this.events.get(e.id)!;
    entry.uncertain = true; // the other producer's attempt may have landed
    return this.publishUntilAcked(ingest, entry, keepTrying);
  }

  private async publishUntilAcked(ingest: Ingest, entry: Entry, keepTrying: () => boolean): Promise<boolean | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        const ack = await ingest.publish("pageviews", entry.e);
        this.markAcked(entry.e.id, ack.duplicate ? undefined : ack);
        return ack.duplicate;
      } catch {
        this.counts.unknownAttempts++;
        entry.uncertain = true;
        if (!keepTrying()) {
          if (!entry.acked) this.counts.unresolved++;
          return undefined;
        }
        // A producer backs off and tries the same id again; the stream drops a copy it already holds.
        await new Promise((r) => setTimeout(r, Math.min(1_000, 50 * 2 ** attempt)));
      }
    }
  }

  /** Every acknowledged event, with the stream position its acknowledgement named (none for a duplicate's). */
  ackedEvents(): { id: string; at?: { partition: number; seq: number } }[] {
    return [...this.events.values()].filter((x) => x.acked).map((x) => ({ id: x.e.id, ...(x.at ? { at: x.at } : {}) }));
  }

  /** The event acknowledged first with its stream position, and when (performance.now()). */
  oldestAcked(): { e: LedgerEvent; ackedAt: number; partition: number; seq: number } | undefined {
    let best: Entry | undefined;
    for (const x of this.events.values()) if (x.acked && x.at && (!best || x.ackedAt < best.ackedAt)) best = x;
    return best && { e: best.e, ackedAt: best.ackedAt, ...best.at! };
  }

  /** A copy of `id` was republished after the duplicate window (F18). */
  addCopy(id: string): void {
    this.events.get(id)!.copies++;
  }

  /** The entries of `key` whose (one-minute) window starts in [fromMs, toMs). */
  private *eventsOf(key: string, fromMs: number, toMs: number): Generator<Entry> {
    for (const x of this.events.values()) {
      const w = x.e.ts - (x.e.ts % MINUTE);
      if (x.e.article_id === key && w >= fromMs && w < toMs) yield x;
    }
  }

  /**
   * Events of `key` whose window starts in [fromMs, toMs) that an answer counted through stream
   * sequence `through(p)` of each partition p must hold: `sure` ones (acknowledged at a known
   * position up to there), and `maybe` ones, whose position the ledger does not know (an unknown
   * publish that may have landed, one acknowledged after an unknown attempt, a retry the stream
   * called a duplicate, a copy republished past the duplicate window).
   */
  countThrough(key: string, fromMs: number, toMs: number, through: (partition: number) => number | undefined): { sure: number; maybe: number } {
    let sure = 0;
    let maybe = 0;
    for (const { at, copies, uncertain } of this.eventsOf(key, fromMs, toMs)) {
      maybe += copies;
      if (!at || uncertain) maybe++;
      else if (at.seq <= (through(at.partition) ?? Number.POSITIVE_INFINITY)) sure++;
    }
    return { sure, maybe };
  }

  /**
   * Events of `key` whose window starts in [fromMs, toMs): acknowledged ones, all published (an
   * unknown may have landed), and copies republished past the duplicate window (counted by the
   * speed layer until the next batch run).
   */
  count(key: string, fromMs: number, toMs: number): { acked: number; published: number; copies: number } {
    let acked = 0;
    let published = 0;
    let copies = 0;
    for (const { acked: ok, copies: c } of this.eventsOf(key, fromMs, toMs)) {
      published++;
      copies += c;
      if (ok) acked++;
    }
    return { acked, published, copies };
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
