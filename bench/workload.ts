/**
 * The events every figure publishes: synthetic page views (skewed article
 * popularity, some late event times, no duplicates so every event counts),
 * and the same events as the product puts them on the stream (validated,
 * msgpack-encoded, partitioned, message id = event id) for the raw baselines.
 */
import type { Catalog } from "../src/core/catalog.js";
import { partitionOf, validateEvent } from "../src/core/events.js";
import { createPageViewGenerator, prng, type PageView } from "../src/ingest/synthetic.js";
import { encodeEvent, eventMsgId } from "../src/nats/codec.js";
import type { Names } from "../src/nats/names.js";

/** The source and metric of the shipped catalog that the bench drives. */
export const SOURCE = "pageviews";
export const METRIC = "article_views";
/** Distinct articles (metric keys) of the synthetic feed. */
export const ARTICLES = 200;

/** @throws Error when the catalog lacks what the bench drives. */
export function checkCatalog(catalog: Catalog): void {
  const m = catalog.metrics.get(METRIC);
  if (!catalog.sources.has(SOURCE) || !m || m.source !== SOURCE) {
    throw new Error(`the bench drives source ${SOURCE} and metric ${METRIC}; the catalog defines sources [${[...catalog.sources.keys()]}] and metrics [${[...catalog.metrics.keys()]}]`);
  }
}

/** How makeEvents() varies its events. */
export interface EventOptions {
  /** Makes ids unique across repetitions. */
  idPrefix: string;
  seed: number;
  /** Event times fall in [nowMs − spreadMs, nowMs] (plus the generator's late events). @default 0 */
  spreadMs?: number;
  /** Distinct articles (metric keys), Zipf-distributed. @default ARTICLES */
  keys?: number;
}

/** `count` distinct page views with event times around now. */
export function makeEvents(count: number, opts: EventOptions): PageView[] {
  const next = createPageViewGenerator({ articles: opts.keys ?? ARTICLES, seed: opts.seed, idPrefix: opts.idPrefix, duplicateFraction: 0 });
  const rand = prng(opts.seed ^ 0x5bd1e995);
  const now = Date.now();
  const spread = opts.spreadMs ?? 0;
  return Array.from({ length: count }, () => next(spread > 0 ? now - Math.floor(rand() * spread) : now));
}

/** One event as the product writes it to the stream. */
export interface StreamEvent {
  readonly partition: number;
  readonly subject: string;
  readonly data: Uint8Array;
  readonly msgId: string;
}

/** Validates and encodes exactly as ingest does (the bench pays this before timing the baselines). */
export function toStreamEvents(catalog: Catalog, names: Names, partitions: number, raws: readonly PageView[]): StreamEvent[] {
  const source = catalog.sources.get(SOURCE)!;
  return raws.map((raw) => {
    const e = validateEvent(catalog, SOURCE, raw);
    const partition = partitionOf(source, e, partitions);
    return { partition, subject: names.eventSubject(partition), data: encodeEvent(e), msgId: eventMsgId(SOURCE, e.id) };
  });
}

const probeFields = createPageViewGenerator({ articles: ARTICLES, seed: 99, duplicateFraction: 0, lateFraction: 0 });

/** One event with its own id and key at time `ts`; the other fields as the generator makes them. */
export function probeEvent(id: string, key: string, ts: number): PageView {
  return { ...probeFields(ts), id, article_id: key, ts };
}
