/** Connecting to NATS with the options every role uses. */
import { connect, type NatsConnection } from "@nats-io/transport-node";

/** A NATS server list that does not parse: names the entry. */
export class NatsUrlError extends Error {
  override readonly name = "NatsUrlError";
  constructor(
    readonly url: string,
    readonly entry: string,
    reason: string,
  ) {
    super(`NATS URL ${JSON.stringify(entry)}${url === entry ? "" : ` (in ${JSON.stringify(url)})`} ${reason}; expected nats://host:port (or tls://, or host:port), several separated by commas`);
  }
}

const SCHEMES = new Set(["nats:", "tls:", "ws:", "wss:"]);

/**
 * The servers of a NATS URL list: one URL or several separated by commas (any nodes of a
 * cluster: the client learns the others from them and reconnects to another when its server
 * goes). A bare host:port means nats://host:port.
 * @throws NatsUrlError naming the entry that does not parse
 */
export function natsServers(url: string): string[] {
  const entries = url.split(",").map((e) => e.trim());
  if (entries.every((e) => e === "")) throw new NatsUrlError(url, url, "is empty");
  return entries.map((entry) => {
    if (entry === "") throw new NatsUrlError(url, entry, "is an empty entry");
    const full = /^[a-z]+:\/\//i.test(entry) ? entry : `nats://${entry}`;
    let u: URL;
    try {
      u = new URL(full);
    } catch {
      throw new NatsUrlError(url, entry, "is not a URL");
    }
    if (!SCHEMES.has(u.protocol)) throw new NatsUrlError(url, entry, `has scheme ${u.protocol.slice(0, -1)}`);
    if (u.hostname === "") throw new NatsUrlError(url, entry, "has no host");
    return full;
  });
}

/**
 * How often a client pings its server; two pings without an answer and it moves to another
 * node. nats.js pings every 2 minutes by default: a paused or cut-off server then held a
 * serving node's answers for minutes (the fault matrix's F12).
 */
export const NATS_PING_INTERVAL_MS = 5_000;

/** @throws NatsUrlError for a malformed URL list; the connection errors of nats.js */
export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  return connect({
    servers: natsServers(url),
    name,
    // Keep trying through a server restart instead of failing the role.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: NATS_PING_INTERVAL_MS,
    maxPingOut: 2,
  });
}
