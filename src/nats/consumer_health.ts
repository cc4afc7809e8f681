/**
 * Keeping a JetStream consumer honest: the pull settings that notice a lost
 * server within seconds, the log lines of what the client library does about
 * it, and a stall check the consumer's owner can report (the speed actors flag
 * their answers with it).
 *
 * nats.js pulls with a 30 s expiry and 15 s idle heartbeats by default, and
 * acts after two missed ones: after a nats-server restart that left answers
 * silently stale for ~40 s. With the settings below a lost consumer is
 * noticed after two missed 1 s heartbeats, and an ordered consumer is
 * recreated by the library from where it was.
 */
import type { ConsumeOptions, ConsumerInfo, ConsumerMessages, ConsumerNotification } from "@nats-io/jetstream";
import { ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";

/** Pull requests last this long; the server sends idle heartbeats within them. */
export const CONSUMER_EXPIRES_MS = 5_000;
/** Idle heartbeat of a pull: two missed ones make the library check (and recreate) the consumer. */
export const CONSUMER_IDLE_HEARTBEAT_MS = 1_000;
/** No message for this long while the stream holds some for the consumer: it is stalled. */
export const CONSUMER_STALL_AFTER_MS = 2 * CONSUMER_IDLE_HEARTBEAT_MS;

/** The pull settings every long-running consumer uses (with its own batch sizes). */
export function consumeOptions(batch: { max_messages?: number; threshold_messages?: number } = {}): ConsumeOptions {
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
export function logConsumerStatus(messages: ConsumerMessages, log: Logger, what: string, onEvent?: (n: ConsumerNotification) => void): void {
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

export interface StallCheck {
  /** True while the consumer delivers nothing though the stream holds messages for it (or cannot say). */
  readonly stalled: () => boolean;
  /** Call on every message delivered: the consumer is alive. */
  delivered(): void;
  stop(): void;
}

/**
 * Checks a consumer that delivered nothing for CONSUMER_STALL_AFTER_MS: caught up (nothing
 * pending) is fine; messages pending, or no answer from JetStream, is a stall until the next
 * delivery or a check that finds it caught up. Logs each change.
 */
export function startStallCheck(info: () => Promise<ConsumerInfo>, log: Logger, what: string): StallCheck {
  let lastProgress = performance.now();
  let stalled = false;
  let checking = false;
  const set = (next: boolean, fields: Record<string, unknown>) => {
    if (next === stalled) return;
    stalled = next;
    if (next) log.warn(`${what}: consumer stalled: nothing delivered for ${CONSUMER_STALL_AFTER_MS} ms though the stream holds messages for it`, fields);
    else log.info(`${what}: consumer delivering again`, fields);
  };
  const timer = setInterval(() => {
    if (checking || performance.now() - lastProgress < CONSUMER_STALL_AFTER_MS) return;
    checking = true;
    info()
      .then(
        (ci) => {
          if (ci.num_pending === 0) {
            lastProgress = performance.now();
            set(false, { pending: 0 });
          } else set(true, { pending: ci.num_pending });
        },
        (err: unknown) => set(true, { err: ensureError(err) }),
      )
      .finally(() => (checking = false));
  }, CONSUMER_IDLE_HEARTBEAT_MS);
  timer.unref();
  return {
    stalled: () => stalled,
    delivered() {
      lastProgress = performance.now();
      if (stalled) set(false, {});
    },
    stop: () => clearInterval(timer),
  };
}
