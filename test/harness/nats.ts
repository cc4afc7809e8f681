/**
 * A NATS server for a test: its own nats-server child (random port, temporary
 * store, removed on dispose), or the server LAMBDA_TEST_NATS_URL points at; or
 * a cluster of nats-server children on loopback.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsCluster, startNatsServer, type NatsClusterNode } from "../../src/nats/server_process.js";

export interface TestNats {
  /** One URL, or the nodes' URLs separated by commas for a cluster. */
  readonly url: string;
  readonly version: string;
  /** The servers of a cluster (to kill, pause, restart); empty for one server. */
  readonly nodes: readonly NatsClusterNode[];
  close(): Promise<void>;
}

export interface TestNatsOptions {
  /** The server's max_payload in bytes (not for an external server). @default nats-server's (1 MiB) */
  maxPayloadBytes?: number;
  /** nats-server processes: 1, or a cluster of several on loopback (never the external server). @default 1 */
  nodes?: number;
}

export async function startTestNats(opts: TestNatsOptions = {}): Promise<TestNats> {
  if ((opts.nodes ?? 1) > 1) {
    if (opts.maxPayloadBytes !== undefined) throw new Error("a test NATS cluster takes nats-server's max_payload");
    const cluster = await startNatsCluster({ nodes: opts.nodes, path: process.env.PATH ?? "" });
    return { url: cluster.url, version: cluster.version, nodes: cluster.nodes, close: () => cluster.close() };
  }
  const external = process.env.LAMBDA_TEST_NATS_URL;
  if (external && opts.maxPayloadBytes === undefined) return { url: external, version: "external", nodes: [], close: async () => {} };
  // max_payload has no command-line flag: a config file of one line sets it.
  const dir = opts.maxPayloadBytes === undefined ? undefined : mkdtempSync(join(tmpdir(), "lambda-nats-conf-"));
  if (dir) writeFileSync(join(dir, "nats.conf"), `max_payload: ${opts.maxPayloadBytes}\n`);
  const server = await startNatsServer({ path: process.env.PATH ?? "", args: dir ? ["-c", join(dir, "nats.conf")] : [] });
  return {
    url: server.url,
    version: server.version,
    nodes: [],
    close: async () => {
      await server.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
