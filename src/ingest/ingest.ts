/**
 * Ingest: validate → publish → dead-letter. Valid events go to their partition
 * subject with the event id as message id (JetStream drops retried publishes
 * inside its duplicate window); refused events are reported to the caller and
 * kept in the dead-letter stream, never dropped silently.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import type { Catalog } from "../core/catalog.js";
import type { CatalogFeed } from "../nats/catalog_store.js";
import { DeadLetterStages, type DeadLetter } from "../core/dead_letter.js";
import { InvalidEventError, type FieldProblem } from "../core/errors.js";
import { partitionOf, validateEvent, type NormalizedEvent } from "../core/events.js";
import { inFlightWindow } from "../core/in_flight.js";
import type { Logger } from "../core/logger.js";
import { encodeDeadLetter, encodeEvent, eventMsgId } from "../nats/codec.js";
import { createAckPublisher, oversizeBytes, type PubAck } from "./ack_publisher.js";
import type { Metrics } from "../core/metrics.js";
import type { Names } from "../nats/names.js";

/** Publishes kept in flight at once by `publishBatch`. */
export const INGEST_MAX_IN_FLIGHT = 512;

export interface Refusal {
  /** Position in the batch. */
  readonly index: number;
  readonly eventId: string | undefined;
  /** The first problem. */
  readonly field: string;
  readonly reason: string;
  /** Every problem of the event. */
  readonly problems: readonly FieldProblem[];
}

export interface IngestResult {
  /** Events the stream stored. */
  readonly accepted: number;
  /** Events the stream already held (same id inside the duplicate window). */
  readonly duplicates: number;
  readonly refused: readonly Refusal[];
}

export interface Ingest {
  /** Validates and publishes one event. @throws InvalidEventError (after dead-lettering it). */
  publish(source: string, raw: unknown): Promise<{ partition: number; seq: number; duplicate: boolean }>;
  /** Validates a batch; the valid events go in, the refused ones are reported and dead-lettered. */
  publishBatch(source: string, raws: readonly unknown[]): Promise<IngestResult>;
}

export interface IngestDeps {
  nc: NatsConnection;
  /** The catalog at start. */
  catalog: Catalog;
  /** Newer catalog versions (nats/catalog_store): a source added by one is accepted at once. */
  catalogFeed?: CatalogFeed;
  names: Names;
  partitions: number;
  log: Logger;
  /** Counts what was offered by source and outcome (lambda_ingest_events_total). */
  metrics?: Metrics;
}

export type { DeadLetter } from "../core/dead_letter.js";

/**
 * A valid event too large for one NATS message: the server refuses any publish over its
 * max_payload (read from the connection's server info). Terminal, like any invalid event.
 */
export class EventTooLargeError extends InvalidEventError {
  constructor(
    /** The event's largest field, the one to shrink. */
    field: string,
    readonly bytes: number,
    readonly maxPayload: number,
    eventId: string | undefined,
    source: string | undefined,
  ) {
    super(field, `makes the event too large: ${bytes} bytes encoded, over the NATS server's max_payload of ${maxPayload} bytes per message`, eventId, source);
  }
}

/** The name of the event's largest field (by its JSON length); the id when that is larger. */
function largestField(e: NormalizedEvent): string {
  let best = "id";
  let size = e.id.length;
  for (const [name, v] of Object.entries(e.fields)) {
    const n = JSON.stringify(v)?.length ?? 0;
    if (n > size) [best, size] = [name, n];
  }
  return best;
}


export function createIngest(deps: IngestDeps): Ingest {
  const js: JetStreamClient = jetstream(deps.nc);
  const log = deps.log.child({ component: "ingest" });

  const catalog = () => deps.catalogFeed?.current() ?? deps.catalog;

  const acks = createAckPublisher(deps.nc);
  const subjects = Array.from({ length: deps.partitions }, (_, p) => deps.names.eventSubject(p));
  /** The server's limit now (it may change on a reconnect); undefined while not connected. */
  const maxPayload = () => deps.nc.info?.max_payload;
  /** Encodes a valid event for its partition, or refuses it when it is over max_payload. */
  const prepare = (e: NormalizedEvent) => {
    const source = catalog().sources.get(e.source)!;
    const p = partitionOf(source, e, deps.partitions);
    const data = encodeEvent(e);
    const msgId = eventMsgId(e.source, e.id);
    const limit = maxPayload();
    const over = limit === undefined ? undefined : oversizeBytes(data, msgId, limit);
    if (over !== undefined) return new EventTooLargeError(largestField(e), over, limit!, e.id, e.source);
    return { p, data, msgId };
  };
  const toStream = ({ p, data, msgId }: { p: number; data: Uint8Array; msgId: string }) => acks.publish(subjects[p]!, data, msgId).then((ack) => ({ p, ack }));

  const deadLetter = async (source: string, raw: unknown, err: InvalidEventError) => {
    const record: DeadLetter = {
      stage: DeadLetterStages.ingest,
      source,
      raw,
      field: err.field,
      reason: err.reason,
      problems: err.problems,
      eventId: err.eventId ?? null,
      partition: null,
      seq: null,
      refusedAt: new Date().toISOString(),
    };
    await js.publish(deps.names.deadLetterSubject, encodeDeadLetter(record, maxPayload()));
  };

  const check = (source: string, raw: unknown): NormalizedEvent | InvalidEventError => {
    try {
      return validateEvent(catalog(), source, raw);
    } catch (err) {
      if (err instanceof InvalidEventError) return err;
      throw err;
    }
  };
  /**
   * A validator for one call. The first refusal reads the newest stored catalog (a source or field
   * added a moment ago, that this process has not seen yet) and is checked again; later refusals
   * of the call are checked against what that read found, so a batch of bad events costs one read.
   * Valid events return at once, not as a promise.
   */
  const validator = () => {
    let refreshed = false;
    return (source: string, raw: unknown): NormalizedEvent | InvalidEventError | Promise<NormalizedEvent | InvalidEventError> => {
      const v = check(source, raw);
      const feed = deps.catalogFeed;
      if (!(v instanceof InvalidEventError) || !feed || refreshed) return v;
      refreshed = true;
      const before = feed.version();
      return feed.refresh().then(() => (feed.version() === before ? v : check(source, raw)));
    };
  };

  /** Counts outcomes of `source`; a source the catalog does not know is counted as "unknown", so callers cannot grow the label set. */
  const count = (source: string, outcome: "accepted" | "duplicate" | "refused", n = 1) => {
    if (!deps.metrics || n === 0) return;
    const known = (deps.catalogFeed?.current() ?? deps.catalog).sources.has(source);
    deps.metrics.ingestEvents.inc({ source: known ? source : "unknown", outcome }, n);
  };

  return {
    async publish(source, raw) {
      const checked = validator()(source, raw);
      const v = checked instanceof Promise ? await checked : checked;
      const ready = v instanceof InvalidEventError ? v : prepare(v);
      if (ready instanceof InvalidEventError) {
        count(source, "refused");
        await deadLetter(source, raw, ready);
        throw ready;
      }
      const { p, ack } = await toStream(ready);
      count(source, ack.duplicate ? "duplicate" : "accepted");
      return { partition: p, seq: ack.seq, duplicate: ack.duplicate };
    },

    async publishBatch(source, raws) {
      const refused: Refusal[] = [];
      let accepted = 0;
      let duplicates = 0;
      let failure: Error | undefined;
      const validate = validator();
      // Not a Set raced per event: Promise.race over a full window subscribes to every
      // publish in it, 512 reactions per event sent.
      const window = inFlightWindow(INGEST_MAX_IN_FLIGHT);
      // A callback per publish, not a promise: promises and their reactions per event were a
      // visible share of the publishing process's time and garbage.
      const onAck = (err: Error | undefined, ack?: PubAck) => {
        if (err) failure ??= err;
        else if (ack!.duplicate) duplicates++;
        else accepted++;
        window.release();
      };
      for (let i = 0; i < raws.length && !failure; i++) {
        const raw = raws[i];
        const checked = validate(source, raw);
        // Only a refusal waits (for a look at a newer catalog); valid events go on without a turn of the event loop.
        const valid = checked instanceof Promise ? await checked : checked;
        // An event over the server's max_payload is refused like an invalid one, not sent to fail the batch.
        const v = valid instanceof InvalidEventError ? valid : prepare(valid);
        if (v instanceof InvalidEventError) {
          refused.push({ index: i, eventId: v.eventId, field: v.field, reason: v.reason, problems: v.problems });
          await deadLetter(source, raw, v);
          continue;
        }
        const slot = window.take();
        if (slot) await slot;
        acks.publishWith(subjects[v.p]!, v.data, v.msgId, onAck);
      }
      await window.drained();
      count(source, "accepted", accepted);
      count(source, "duplicate", duplicates);
      count(source, "refused", refused.length);
      if (failure) {
        log.error("ingest batch stopped on a publish failure; events after it were not sent", { err: failure, accepted });
        throw new Error(`publish failed after ${accepted} accepted events: ${failure.message}`, { cause: failure });
      }
      if (refused.length > 0) log.warn("events refused and dead-lettered; see the dead-letter stream", { refused: refused.length });
      return { accepted, duplicates, refused };
    },
  };
}
