/** Connecting to NATS with the options every role uses. */
import { connect, type NatsConnection } from "@nats-io/transport-node";

export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  return connect({
    servers: url,
    name,
    // Keep trying through a server restart instead of failing the role.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  });
}
