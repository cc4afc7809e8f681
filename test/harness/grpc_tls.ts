/**
 * Secrets for a secure serving node in a test: a throwaway CA (src/main/pki.ts), its serving
 * certificate for the loopback names, client certificates, and the two bearer tokens, written
 * as files (mode 0600) in a directory the test owns; plus clients that use them.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client, credentials, makeGenericClientConstructor, Metadata, type ChannelCredentials, type ServiceError } from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import type { Logger } from "../../src/core/logger.js";
import { createLocalCa, LOOPBACK_HOSTS, type LocalCa, type PemPair } from "../../src/main/pki.js";
import { createServingNode, type ServingNode, type ServingOptions } from "../../src/serving/index.js";
import type { TestCluster } from "./cluster.js";

export interface GrpcSecrets {
  readonly ca: LocalCa;
  /** The CA certificate a client trusts. */
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly queryToken: string;
  readonly adminToken: string;
  readonly tokenFile: string;
  readonly adminTokenFile: string;
}

const secret = (path: string, text: string) => writeFileSync(path, text, { mode: 0o600 });

/** A fresh bearer token: 32 random bytes in hex. */
export const newToken = (): string => randomBytes(32).toString("hex");

/** Writes a CA, a serving certificate for the loopback names and two tokens into `dir`, named `<name>-…`. */
export function writeGrpcSecrets(dir: string, name = "grpc", ca: LocalCa = createLocalCa(`${name} test CA`)): GrpcSecrets {
  const server = ca.issue({ commonName: "serving", hosts: [...LOOPBACK_HOSTS], usage: "server" });
  const s: GrpcSecrets = {
    ca,
    caFile: join(dir, `${name}-ca.pem`),
    certFile: join(dir, `${name}-cert.pem`),
    keyFile: join(dir, `${name}-key.pem`),
    queryToken: newToken(),
    adminToken: newToken(),
    tokenFile: join(dir, `${name}-query.token`),
    adminTokenFile: join(dir, `${name}-admin.token`),
  };
  secret(s.caFile, ca.ca.cert);
  secret(s.certFile, server.cert);
  secret(s.keyFile, server.key);
  secret(s.tokenFile, `${s.queryToken}\n`);
  secret(s.adminTokenFile, `${s.adminToken}\n`);
  return s;
}

/** TLS channel credentials trusting `caPem`, presenting `client` when given. */
export function tlsCredentials(caPem: string, client?: PemPair): ChannelCredentials {
  return client ? credentials.createSsl(Buffer.from(caPem), Buffer.from(client.key), Buffer.from(client.cert)) : credentials.createSsl(Buffer.from(caPem));
}

/** Call metadata carrying `authorization: Bearer <token>` (none for undefined). */
export function bearer(token?: string): Metadata {
  const m = new Metadata();
  if (token !== undefined) m.set("authorization", `Bearer ${token}`);
  return m;
}

/** A grpc.health.v1.Health client. */
export function healthClient(address: string, creds: ChannelCredentials): Client & Record<string, unknown> {
  const Health = makeGenericClientConstructor(healthService, "grpc.health.v1.Health");
  return new Health(address, creds) as Client & Record<string, unknown>;
}

/** Health.Check of the whole server, with a deadline; resolves to its status. */
export function healthCheck(client: Client & Record<string, unknown>, timeoutMs = 5_000): Promise<string> {
  const check = client.check as (req: unknown, md: Metadata, opts: { deadline: number }, cb: (err: ServiceError | null, res: { status: string }) => void) => void;
  return new Promise((resolve, reject) => check.call(client, { service: "" }, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res.status))));
}

/** Another serving node on `cluster`'s NATS and chDB, on a free loopback port, with `extra` options (security, admin listener). */
export function extraServingNode(cluster: TestCluster, nodeId: string, log: Logger, extra: Partial<ServingOptions>): Promise<ServingNode> {
  return createServingNode(
    { nc: cluster.nc, ch: cluster.roles.ch!.client, catalog: cluster.catalog, catalogFeed: cluster.roles.catalogFeed, names: cluster.names, log },
    { host: "127.0.0.1", port: 0, partitions: cluster.cfg.partitions, database: cluster.cfg.database, nodeId, heartbeatIntervalMs: 200, nodeTimeoutMs: 1_500, viewVersionsKept: 3, ...extra },
  );
}
