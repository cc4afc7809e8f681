/**
 * `npm start`'s gRPC secrets: a throwaway CA, a serving certificate for the loopback names
 * and two bearer tokens (query and admin), written as files (mode 0600) in a temporary
 * directory (mode 0700) that only this user can read. The serving node runs with them, and
 * lambdactl finds their paths in .lambda/local-cluster.json. What the operator configured
 * (LAMBDA_GRPC_TLS_CERT_FILE, LAMBDA_GRPC_TOKEN_FILE, ...) is kept; only what is unset is made.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ResolvedConfig } from "../core/config.js";
import { createLocalCa, LOOPBACK_HOSTS } from "./pki.js";

/** Bytes of randomness in a generated token (written as hex). */
const TOKEN_BYTES = 32;

/** The settings the local cluster's serving node runs with, and what lambdactl needs. */
export interface LocalGrpcSecrets {
  /** Config fields for the serving node: TLS files and token files. */
  readonly config: Pick<ResolvedConfig, "grpcTlsCertFile" | "grpcTlsKeyFile" | "grpcTokenFile" | "grpcAdminTokenFile">;
  /** The CA a client trusts; when the operator brought the certificate, LAMBDA_GRPC_TLS_CA_FILE's, else absent (lambdactl then needs --tls-ca). */
  readonly caFile?: string;
  /** The temporary directory; removed by `remove()`. */
  readonly dir: string;
  /** Removes the directory and everything in it. */
  remove(): void;
}

/** Makes what `cfg` leaves unset. */
export function createLocalGrpcSecrets(cfg: ResolvedConfig): LocalGrpcSecrets {
  const dir = mkdtempSync(join(tmpdir(), "lambda-grpc-"));
  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };
  const token = (name: string) => write(name, `${randomBytes(TOKEN_BYTES).toString("hex")}\n`);
  let tls: { grpcTlsCertFile: string; grpcTlsKeyFile: string; caFile?: string } = { grpcTlsCertFile: cfg.grpcTlsCertFile, grpcTlsKeyFile: cfg.grpcTlsKeyFile };
  if (!cfg.grpcTlsCertFile) {
    const ca = createLocalCa("lambda local cluster CA");
    const server = ca.issue({ commonName: "lambda serving (local cluster)", hosts: [...LOOPBACK_HOSTS], usage: "server" });
    tls = { grpcTlsCertFile: write("serving-cert.pem", server.cert), grpcTlsKeyFile: write("serving-key.pem", server.key), caFile: write("ca.pem", ca.ca.cert) };
  }
  return {
    config: {
      grpcTlsCertFile: tls.grpcTlsCertFile,
      grpcTlsKeyFile: tls.grpcTlsKeyFile,
      grpcTokenFile: cfg.grpcTokenFile || token("query.token"),
      grpcAdminTokenFile: cfg.grpcAdminTokenFile || token("admin.token"),
    },
    // An operator's own certificate: lambdactl trusts the CA LAMBDA_GRPC_TLS_CA_FILE names, if any.
    ...(tls.caFile || cfg.grpcTlsCaFile ? { caFile: tls.caFile ?? cfg.grpcTlsCaFile } : {}),
    dir,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
