/**
 * Reading a partition subject through server failures: an ordered consumer
 * with pull settings that notice a lost server within seconds, the log lines
 * of what the client library does about it, a stall check its owner reports
 * (the speed actors flag their answers with it), and a new consumer from the
 * last position read when the stall lasts.
 *
 * nats.js pulls with a 30 s expiry and 15 s idle heartbeats by default, and
 * acts after two missed ones: after a nats-server restart that left answers
 * silently stale for ~40 s. And an ordered consumer is an R1 consumer: when
 * the NATS node holding it dies, the library asks that node for the
 * consumer's info until it comes back (measured on a 3-node cluster: three of
 * four partitions stopped for good). So the stall check below replaces a
 * consumer that stays stalled, from where its reader got to.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { DeliverPolicy, jetstream, type ConsumeOptions, type ConsumerInfo, type ConsumerMessages, type ConsumerNotification, type JsMsg } from "@nats-io/jetstream";
import { ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";

/** Pull requests last this long; the server sends idle heartbeats within them. */
export const CONSUMER_EXPIRES_MS = 5_000;
/** Idle heartbeat of a pull: two missed ones make the library check (and recreate) the consumer. */
export const CONSUMER_IDLE_HEARTBEAT_MS = 1_000;
/** No message for this long while the stream holds some for the consumer: it is stalled. */
export const CONSUMER_STALL_AFTER_MS = 2 * CONSUMER_IDLE_HEARTBEAT_MS;
/**
 * The reader's JetStream API requests (creating its consumer, the stall check's info) give up
 * after this at first, not after the API's 5 s default: after a NATS server died, each request
 * that waited out 5 s held the partition back that long, where asking again soon reaches the
 * new leader (test/e2e/nats-cluster on a loaded machine: speed actors delivered again 17–34 s
 * after the kill, median 18, after up to three 5 s timeouts in a row; 11–27 s, median 11, with
 * this). Creations that keep timing out wait longer, up to CONSUMER_API_TIMEOUT_MAX_MS, so that
 * a slow but working server still gets through.
 */
export const CONSUMER_API_TIMEOUT_MS = 2 * CONSUMER_IDLE_HEARTBEAT_MS;
/** The JetStream API's own default timeout: the longest a creation waits. */
export const CONSUMER_API_TIMEOUT_MAX_MS = 5_000;

/** The pull settings every long-running consumer uses (with its own batch sizes). */
function consumeOptions(batch: { max_messages?: number; threshold_messages?: number } = {}): ConsumeOptions {
  return { ...batch, expires: CONSUMER_EXPIRES_MS, idle_heartbeat: CONSUMER_IDLE_HEARTBEAT_MS } as ConsumeOptions;
}

/** What the library reports that an operator should see; pulls and heartbeats are left out. */
const NOTABLE = new Set<ConsumerNotification["type"]>([
  "heartbeats_missed",
  "consumer_not_found",
  "stream_not_found",
  "consumer_deleted",
  "ordered_consumer_recreated",
  "exceeded_limits",
  "reset",
  "no_responders",
]);

/**
 * Logs the notable status notifications of `messages` until they end (with stop()),
 * calling `onEvent` with each.
 */
function logConsumerStatus(messages: ConsumerMessages, log: Logger, what: string, onEvent?: (n: ConsumerNotification) => void): void {
  void (async () => {
    for await (const n of messages.status()) {
      if (!NOTABLE.has(n.type)) continue;
      onEvent?.(n);
      const fields = { ...n } as Record<string, unknown>;
      if (n.type === "ordered_consumer_recreated") log.info(`${what}: consumer recreated; delivering from where it was`, fields);
      else log.warn(`${what}: consumer ${n.type.replaceAll("_", " ")}`, fields);
    }
  })().catch((err) => log.warn(`${what}: consumer status stream failed; stall checks go on without it`, { err: ensureError(err) }));
}

/** A stall that lasts this long replaces the consumer (the library had its chance to recover it). */
export const CONSUMER_REPLACE_AFTER_MS = 3 * CONSUMER_STALL_AFTER_MS;
/** Longest pause between attempts at creating a consumer while JetStream does not answer. */
const CREATE_RETRY_MAX_MS = 2_000;

export interface PartitionConsumer {
  /** Every message of the subject from the start position on, across replaced consumers, until stop(). */
  readonly messages: AsyncIterable<JsMsg>;
  /** True while the consumer delivers nothing though the stream holds messages for it (or cannot say). */
  stalled(): boolean;
  /**
   * Drops the consumer and what it has delivered but `messages` has not yielded yet, and goes on
   * with a new consumer after `handledSeq()`: for a reader that found the delivered history
   * wrong (the archiver's position check). Messages yielded after this call come from the new one.
   */
  restart(reason: string): void;
  /**
   * How many consumers it has made so far: read right after a message arrives, the number of the
   * consumer that delivered it (the reader asks for the next one before another is made).
   */
  serial(): number;
  /** Ends `messages` (after the message being read) and the checks. Idempotent. */
  stop(): Promise<void>;
}

export interface PartitionConsumerOptions {
  /** Its JetStream requests go through a context of their own, with CONSUMER_API_TIMEOUT_MS. */
  nc: NatsConnection;
  stream: string;
  subject: string;
  /**
   * The last sequence the reader has handled (0: none): a replacement consumer starts after it.
   * Called at start and at each replacement.
   */
  handledSeq: () => number;
  batch?: { max_messages?: number; threshold_messages?: number };
  log: Logger;
  /** Who reads, for log lines ("speed actor", "archiver"). */
  what: string;
}

/**
 * Consumes `subject` with an ordered consumer and keeps it honest: logs the library's status
 * notifications, checks a consumer that delivered nothing for CONSUMER_STALL_AFTER_MS
 * (caught up is fine; messages pending, or no answer from JetStream, is a stall until the
 * next delivery or a check that finds it caught up), and replaces one stalled for
 * CONSUMER_REPLACE_AFTER_MS with a new consumer after `handledSeq()`. Messages the reader
 * has handled may come again after a replacement only if it handled them after handledSeq
 * was read: readers skip sequences they have seen.
 */
export function consumePartition(o: PartitionConsumerOptions): PartitionConsumer {
  let stopped = false;
  let stalledSince: number | null = null;
  let lastProgress = performance.now();
  let current: { info: () => Promise<ConsumerInfo>; messages: ConsumerMessages } | null = null;
  let replacing = false;
  let restartRequested = false;
  let checking = false;
  let serial = 0;

  const setStalled = (next: boolean, fields: Record<string, unknown>) => {
    if (next === (stalledSince !== null)) return;
    stalledSince = next ? performance.now() : null;
    if (next) o.log.warn(`${o.what}: consumer stalled: nothing delivered for ${CONSUMER_STALL_AFTER_MS} ms though the stream holds messages for it`, fields);
    else o.log.info(`${o.what}: consumer delivering again`, fields);
  };

  const check = async () => {
    if (stopped || checking || !current || performance.now() - lastProgress < CONSUMER_STALL_AFTER_MS) return;
    checking = true;
    try {
      const ci = await current.info();
      if (ci.num_pending === 0) {
        lastProgress = performance.now();
        setStalled(false, { pending: 0 });
        return;
      }
      setStalled(true, { pending: ci.num_pending });
    } catch (err) {
      setStalled(true, { err: ensureError(err) });
    } finally {
      checking = false;
    }
    if (stalledSince !== null && performance.now() - stalledSince >= CONSUMER_REPLACE_AFTER_MS && !replacing) {
      replacing = true;
      o.log.warn(`${o.what}: consumer stalled for ${CONSUMER_REPLACE_AFTER_MS} ms; replacing it`, { after: o.handledSeq() });
      await current?.messages.close().catch(() => undefined); // best effort: ends the iteration below either way
    }
  };
  const timer = setInterval(() => void check(), CONSUMER_IDLE_HEARTBEAT_MS);
  timer.unref();

  async function* read(): AsyncGenerator<JsMsg> {
    for (let failures = 0; !stopped; ) {
      const after = o.handledSeq();
      let messages: ConsumerMessages;
      try {
        // 2 s, 2 s, 4 s, then 5 s per try while creations time out.
        const timeout = Math.min(CONSUMER_API_TIMEOUT_MAX_MS, CONSUMER_API_TIMEOUT_MS * 2 ** Math.max(0, failures - 1));
        const consumer = await jetstream(o.nc, { timeout }).consumers.get(o.stream, {
          filter_subjects: o.subject,
          ...(after > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: after + 1 } : { deliver_policy: DeliverPolicy.All }),
        });
        messages = await consumer.consume(consumeOptions(o.batch));
        serial++;
        current = { info: () => consumer.info(), messages };
        // stop() came while this consumer was being made: it closed the one before, so this one
        // would wait for messages with nobody to end it, and the reader's stop with it. Not
        // awaited: close() resolves only once the messages are iterated to their end.
        if (stopped) {
          void messages.close().catch(() => undefined); // best effort: the consumer is ephemeral
          return;
        }
        logConsumerStatus(messages, o.log, o.what);
      } catch (err) {
        // JetStream does not answer yet (a leader election): try again, flagged as stalled meanwhile.
        failures++;
        setStalled(true, { err: ensureError(err) });
        o.log.warn(`${o.what}: could not create a consumer; trying again`, { after, failures, err: ensureError(err) });
        await new Promise((r) => setTimeout(r, Math.min(CREATE_RETRY_MAX_MS, 100 * 2 ** failures)));
        continue;
      }
      failures = 0;
      lastProgress = performance.now();
      try {
        for await (const m of messages) {
          // Asked to start over: nothing more from this consumer.
          if (restartRequested) break;
          lastProgress = performance.now();
          if (stalledSince !== null) setStalled(false, { seq: m.seq });
          yield m;
        }
      } catch (err) {
        if (stopped) return;
        o.log.warn(`${o.what}: consumer failed; replacing it`, { after: o.handledSeq(), err: ensureError(err) });
        continue;
      }
      if (stopped) return;
      if (restartRequested) {
        await messages.close().catch(() => undefined); // best effort: the consumer is ephemeral
        restartRequested = false;
      } else if (!replacing) {
        throw new Error(`${o.what}: the consumer of ${o.subject} stopped delivering messages`);
      }
      replacing = false;
    }
  }

  return {
    messages: read(),
    stalled: () => stalledSince !== null,
    serial: () => serial,
    restart(reason) {
      if (stopped || restartRequested) return;
      restartRequested = true;
      o.log.warn(`${o.what}: starting over with a new consumer: ${reason}`, { after: o.handledSeq() });
      void current?.messages.close().catch(() => undefined); // ends the iteration below if it waits
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await current?.messages.close().catch(() => undefined); // best effort: the consumer is ephemeral
    },
  };
}
