/**
 * A process's NATS connection as its metrics and health see it: up or down (from the client's
 * status events), reconnects counted, and a readiness check "nats" that fails while the
 * connection is down or closed.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { ensureError } from "../core/errors.js";
import type { Health } from "../core/health.js";
import type { Logger } from "../core/logger.js";
import type { Metrics } from "../core/metrics.js";
import { redactNatsUrl } from "./connect.js";

/** Follows `nc`'s status until it closes. @returns a function that removes the readiness check */
export function watchNatsConnection(nc: NatsConnection, observe: { metrics?: Metrics; health?: Health }, log: Logger): () => void {
  let down: string | null = null;
  observe.metrics?.natsConnected.set(1);
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        down = `disconnected from ${redactNatsUrl(s.server)}; reconnecting`;
        observe.metrics?.natsConnected.set(0);
      } else if (s.type === "reconnect") {
        down = null;
        observe.metrics?.natsConnected.set(1);
        observe.metrics?.natsReconnects.inc();
      }
    }
  })().catch((err) => log.warn("NATS status events ended; readiness goes on from isClosed() alone", { err: ensureError(err) }));
  void nc.closed().then(() => observe.metrics?.natsConnected.set(0));
  return observe.health?.addCheck("nats", () => (nc.isClosed() ? "the NATS connection is closed" : down)) ?? (() => {});
}
