/**
 * `npm start`'s NATS security: a throwaway CA and a server certificate for the loopback names
 * (TLS on every client connection, and on the routes of a local NATS cluster), and one nkey user
 * per kind of process with the least-privilege permissions of nats/permissions.ts. The server's
 * config holds only public keys; the seeds are files (mode 0600) in a temporary directory (mode
 * 0700). lambdactl gets the admin user's seed through .lambda/local-cluster.json; the read-only
 * user's seed is there for an operator who wants it.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { NATS_SECURITY_FIELDS, type NatsSecuritySettings } from "../nats/connect.js";
import type { Names } from "../nats/names.js";
import { inboxPrefixFor, natsAuthorizationConfig, type NatsPrincipal, type NatsUserSpec } from "../nats/permissions.js";
import { createLocalCa, LOOPBACK_HOSTS } from "./pki.js";

/** The local cluster's NATS users and what each runs. */
const LOCAL_USERS = {
  /** The main process: archiver, coordinator, executor, serving, and the synthetic feed. */
  main: ["archiver", "coordinator", "executor", "serving", "ingest"],
  speed: ["speed"],
  lambdactl: ["lambdactl-admin"],
  "lambdactl-readonly": ["lambdactl"],
} as const satisfies Record<string, readonly NatsPrincipal[]>;
export type LocalNatsUser = keyof typeof LOCAL_USERS;

export interface LocalNatsSecrets {
  /** The nats-server config file: TLS and the users (`-c` it). */
  readonly serverConfigFile: string;
  /** The CA a client verifies the server with. */
  readonly caFile: string;
  /** How each user connects, as the LAMBDA_NATS_* settings of a process. */
  settings(user: LocalNatsUser): NatsSecuritySettings;
  /** The temporary directory; removed by `remove()`. */
  readonly dir: string;
  remove(): void;
}

/** @param clustered the local NATS is a cluster: its routes get TLS too (a single server has none) */
const NONE = Object.fromEntries(NATS_SECURITY_FIELDS.map((f) => [f, ""])) as unknown as NatsSecuritySettings;

export function createLocalNatsSecrets(names: Names, clustered: boolean): LocalNatsSecrets {
  const dir = mkdtempSync(join(tmpdir(), "lambda-nats-secrets-"));
  const write = (name: string, text: string | Uint8Array) => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };
  const ca = createLocalCa("lambda local cluster NATS CA");
  // "both": a node of a local NATS cluster is a client of the others on its routes.
  const server = ca.issue({ commonName: "nats-server (local cluster)", hosts: [...LOOPBACK_HOSTS], usage: "both" });
  const caFile = write("ca.pem", ca.ca.cert);
  const certFile = write("server-cert.pem", server.cert);
  const keyFile = write("server-key.pem", server.key);

  const seeds = new Map<LocalNatsUser, string>();
  const users: NatsUserSpec[] = [];
  for (const [name, principals] of Object.entries(LOCAL_USERS) as [LocalNatsUser, readonly NatsPrincipal[]][]) {
    const kp = createUser();
    seeds.set(name, write(`${name}.nk`, kp.getSeed()));
    users.push({ name, principals, auth: { nkey: kp.getPublicKey() } });
  }
  const tls = `{ cert_file: ${JSON.stringify(certFile)}, key_file: ${JSON.stringify(keyFile)}, ca_file: ${JSON.stringify(caFile)} }`;
  const config = [
    "# Written by npm start (src/main/local_nats_secrets.ts): TLS, and one least-privilege user per kind of process.",
    `tls: ${tls}`,
    // The routes of a local NATS cluster: TLS, and each node checks the other's certificate.
    ...(clustered ? [`cluster: { tls: { cert_file: ${JSON.stringify(certFile)}, key_file: ${JSON.stringify(keyFile)}, ca_file: ${JSON.stringify(caFile)}, verify: true } }`] : []),
    natsAuthorizationConfig(names, users),
  ].join("\n");
  const serverConfigFile = write("nats-server.conf", config);
  return {
    serverConfigFile,
    caFile,
    settings: (user) => ({ ...NONE, natsNkeySeedFile: seeds.get(user)!, natsTlsCaFile: caFile, natsInboxPrefix: inboxPrefixFor(user) }),
    dir,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
