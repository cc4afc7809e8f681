/**
 * How lambdactl reaches the gRPC API: the address (the queries' or, for admin commands, the
 * admin API's, which may listen apart), TLS (the CA that signed the serving node's certificate,
 * a client certificate for mutual TLS, the name to check) and the bearer token, each from the
 * first source that has it, as in ./connection.ts: a flag, an environment variable, then
 * `.lambda/local-cluster.json`.
 *
 * The file's TLS and token settings are used only when the address came from the file too: a
 * token of the local cluster is never sent to an address given on the command line.
 *
 * | setting      | flags                     | variables                                                        | file                          |
 * | ------------ | ------------------------- | ---------------------------------------------------------------- | ----------------------------- |
 * | admin address| --admin-grpc              | LAMBDA_GRPC_ADMIN_ADDR                                            | grpcAdmin (else the address)  |
 * | CA           | --tls-ca                  | LAMBDA_GRPC_TLS_CA_FILE                                           | grpcTlsCa                     |
 * | client cert  | --cert, --key             | LAMBDA_GRPC_TLS_CLIENT_CERT_FILE, LAMBDA_GRPC_TLS_CLIENT_KEY_FILE | —                             |
 * | token        | --token, --token-file     | queries: LAMBDA_GRPC_TOKEN(_FILE); admin: LAMBDA_GRPC_ADMIN_TOKEN(_FILE), then the query ones | grpcTokenFile / grpcAdminTokenFile |
 *
 * TLS is on when a CA or a client certificate is given (without a CA, the system's roots check
 * the server). A token is a secret: errors name where it came from, never its value.
 */
import { checkToken, readTokenFile } from "../core/bearer_token.js";
import { ConfigError } from "../core/errors.js";
import { checkAddress, lazyLocalClusterFile, LOCAL_CLUSTER_FILE, resolveGrpcAddress, type ConnectionSources, type LocalClusterFile, type Sourced } from "./connection.js";

/** The API a command calls: the queries (lambda.v1.LambdaService) or the admin API (lambda.v1.AdminService). */
export type GrpcApi = "query" | "admin";

/** The gRPC security flags given on a command line (raw values). */
export interface GrpcSecurityFlagValues {
  readonly adminGrpc?: string;
  readonly tlsCa?: string;
  readonly tlsServerName?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly token?: string;
  readonly tokenFile?: string;
}

/** The flag of each gRPC security setting. */
export const GrpcSecurityFlags = {
  adminGrpc: "--admin-grpc",
  tlsCa: "--tls-ca",
  tlsServerName: "--tls-server-name",
  cert: "--cert",
  key: "--key",
  token: "--token",
  tokenFile: "--token-file",
} as const;

/** The environment variables of the gRPC security settings (the same names the serving node reads, where they mean the same file). */
export const GrpcSecurityEnvVars = {
  adminGrpc: "LAMBDA_GRPC_ADMIN_ADDR",
  tlsCa: "LAMBDA_GRPC_TLS_CA_FILE",
  cert: "LAMBDA_GRPC_TLS_CLIENT_CERT_FILE",
  key: "LAMBDA_GRPC_TLS_CLIENT_KEY_FILE",
  token: "LAMBDA_GRPC_TOKEN",
  tokenFile: "LAMBDA_GRPC_TOKEN_FILE",
  adminToken: "LAMBDA_GRPC_ADMIN_TOKEN",
  adminTokenFile: "LAMBDA_GRPC_ADMIN_TOKEN_FILE",
} as const;

/** TLS settings of a channel: file paths, each with where it came from. */
export interface ClientTls {
  /** CA bundle to verify the server with; null: the system's roots. */
  readonly ca: Sourced<string> | null;
  /** Client certificate and key (mutual TLS); null: none. */
  readonly cert: Sourced<string> | null;
  readonly key: Sourced<string> | null;
  /** The name the server's certificate must carry; null: the address's host. */
  readonly serverName: string | null;
}

/** Everything a channel to one API needs. */
export interface GrpcTarget {
  readonly address: Sourced<string>;
  /** null: plain text. */
  readonly tls: ClientTls | null;
  /** The bearer token to send (a secret: `from` names its source); null: none. */
  readonly token: Sourced<string> | null;
}

/** Where lambdactl looks for gRPC settings. */
export interface GrpcSources extends ConnectionSources {
  readonly security: GrpcSecurityFlagValues;
}

const nonEmpty = (v: string | undefined): v is string => v !== undefined && v !== "";

/** The first of (source, value) pairs that has a value. */
function first(...candidates: [from: string, value: string | undefined][]): Sourced<string> | null {
  for (const [from, value] of candidates) if (nonEmpty(value)) return { value, from };
  return null;
}

function address(src: GrpcSources, api: GrpcApi, file: () => LocalClusterFile | null): Sourced<string> {
  const apart = api === "admin" ? first([GrpcSecurityFlags.adminGrpc, src.security.adminGrpc], [GrpcSecurityEnvVars.adminGrpc, src.env[GrpcSecurityEnvVars.adminGrpc]]) : null;
  if (apart) return { value: checkAddress(apart.from, apart.value), from: apart.from };
  const main = resolveGrpcAddress(src);
  const adminInFile = api === "admin" && main.from === LOCAL_CLUSTER_FILE ? file()?.grpcAdmin : undefined;
  return adminInFile ? { value: adminInFile, from: LOCAL_CLUSTER_FILE } : main;
}

function token(src: GrpcSources, api: GrpcApi, fromFile: LocalClusterFile | null): Sourced<string> | null {
  const { security: f, env } = src;
  const E = GrpcSecurityEnvVars;
  if (nonEmpty(f.token) && nonEmpty(f.tokenFile)) throw new ConfigError(GrpcSecurityFlags.token, "(hidden)", `either ${GrpcSecurityFlags.token} or ${GrpcSecurityFlags.tokenFile}, not both`);
  if (nonEmpty(f.token)) return { value: checkToken(GrpcSecurityFlags.token, f.token, "(hidden)"), from: GrpcSecurityFlags.token };
  if (nonEmpty(f.tokenFile)) return { value: readTokenFile(GrpcSecurityFlags.tokenFile, f.tokenFile), from: `${GrpcSecurityFlags.tokenFile} ${f.tokenFile}` };
  const vars: [string, string][] = api === "admin" ? [[E.adminToken, E.adminTokenFile], [E.token, E.tokenFile]] : [[E.token, E.tokenFile]];
  for (const [direct, viaFile] of vars) {
    if (nonEmpty(env[direct])) return { value: checkToken(direct, env[direct], "(hidden)"), from: direct };
    if (nonEmpty(env[viaFile])) return { value: readTokenFile(viaFile, env[viaFile]), from: `${viaFile} ${env[viaFile]}` };
  }
  const path = api === "admin" ? fromFile?.grpcAdminTokenFile : fromFile?.grpcTokenFile;
  return nonEmpty(path) ? { value: readTokenFile(`${LOCAL_CLUSTER_FILE}: ${api === "admin" ? "grpcAdminTokenFile" : "grpcTokenFile"}`, path), from: `${LOCAL_CLUSTER_FILE} (${path})` } : null;
}

function tls(src: GrpcSources, fromFile: LocalClusterFile | null): ClientTls | null {
  const { security: f, env } = src;
  const F = GrpcSecurityFlags;
  const E = GrpcSecurityEnvVars;
  const ca = first([F.tlsCa, f.tlsCa], [E.tlsCa, env[E.tlsCa]], [LOCAL_CLUSTER_FILE, fromFile?.grpcTlsCa]);
  const cert = first([F.cert, f.cert], [E.cert, env[E.cert]]);
  const key = first([F.key, f.key], [E.key, env[E.key]]);
  if (cert && !key) throw new ConfigError(cert.from === F.cert ? F.key : E.key, "", `the private key of the client certificate (${cert.from} ${cert.value})`);
  if (key && !cert) throw new ConfigError(key.from === F.key ? F.cert : E.cert, "", `the client certificate of the key (${key.from} ${key.value})`);
  if (!ca && !cert) {
    if (nonEmpty(f.tlsServerName)) throw new ConfigError(F.tlsServerName, f.tlsServerName, `to come with TLS (${F.tlsCa} or ${F.cert})`);
    return null;
  }
  return { ca, cert, key, serverName: nonEmpty(f.tlsServerName) ? f.tlsServerName : null };
}

/**
 * Resolves the address, TLS and token for calls to `api`.
 * @throws NotConfiguredError, ConfigError (a bad flag, variable or token file; a certificate without its key), LocalClusterFileError, StaleLocalClusterFileError
 */
export function resolveGrpcTarget(src: GrpcSources, api: GrpcApi): GrpcTarget {
  const file = lazyLocalClusterFile(src.cwd);
  const addr = address(src, api, file);
  const fromFile = addr.from === LOCAL_CLUSTER_FILE ? file() : null;
  return { address: addr, tls: tls(src, fromFile), token: token(src, api, fromFile) };
}
