/**
 * A NATS server for a test: its own nats-server child (random port, temporary
 * store, removed on dispose), or the server LAMBDA_TEST_NATS_URL points at.
 */
import { startNatsServer } from "../../src/nats/server_process.js";

export interface TestNats {
  readonly url: string;
  readonly version: string;
  close(): Promise<void>;
}

export async function startTestNats(): Promise<TestNats> {
  const external = process.env.LAMBDA_TEST_NATS_URL;
  if (external) return { url: external, version: "external", close: async () => {} };
  const server = await startNatsServer({ path: process.env.PATH ?? "" });
  return { url: server.url, version: server.version, close: () => server.close() };
}
