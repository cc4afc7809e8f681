/**
 * A NATS server for a test: its own nats-server child (random port, temporary
 * store, removed on dispose), or the server LAMBDA_TEST_NATS_URL points at.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer } from "../../src/nats/server_process.js";

export interface TestNats {
  readonly url: string;
  readonly version: string;
  close(): Promise<void>;
}

export interface TestNatsOptions {
  /** The server's max_payload in bytes (not for an external server). @default nats-server's (1 MiB) */
  maxPayloadBytes?: number;
}

export async function startTestNats(opts: TestNatsOptions = {}): Promise<TestNats> {
  const external = process.env.LAMBDA_TEST_NATS_URL;
  if (external && opts.maxPayloadBytes === undefined) return { url: external, version: "external", close: async () => {} };
  // max_payload has no command-line flag: a config file of one line sets it.
  const dir = opts.maxPayloadBytes === undefined ? undefined : mkdtempSync(join(tmpdir(), "lambda-nats-conf-"));
  if (dir) writeFileSync(join(dir, "nats.conf"), `max_payload: ${opts.maxPayloadBytes}\n`);
  const server = await startNatsServer({ path: process.env.PATH ?? "", args: dir ? ["-c", join(dir, "nats.conf")] : [] });
  return {
    url: server.url,
    version: server.version,
    close: async () => {
      await server.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
