/**
 * A gRPC channel as a {@link GrpcTarget} describes it: plain text or TLS (the CA, a client
 * certificate, the name to check), and the bearer token as call metadata.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { checkServerIdentity } from "node:tls";
import { credentials, Metadata, type ChannelCredentials, type ChannelOptions } from "@grpc/grpc-js";
import { ConfigError } from "../core/errors.js";
import type { Sourced } from "./connection.js";
import type { GrpcTarget } from "./grpc_target.js";

export interface GrpcChannel {
  readonly credentials: ChannelCredentials;
  readonly options: ChannelOptions;
  /** Metadata for one call: the bearer token, if any. */
  metadata(): Metadata;
}

function readPem(file: Sourced<string>, what: string): Buffer {
  try {
    return readFileSync(file.value);
  } catch (err) {
    throw new ConfigError(file.from, file.value, `a readable PEM ${what} file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** The host of `host:port` (an IPv6 literal without its brackets). */
const hostOf = (address: string): string => address.slice(0, address.lastIndexOf(":")).replace(/^\[|\]$/g, "");

/**
 * The channel settings of `target`.
 * @throws ConfigError when a TLS file cannot be read (naming where its path came from)
 */
export function grpcChannel(target: GrpcTarget): GrpcChannel {
  const metadata = () => {
    const m = new Metadata();
    if (target.token) m.set("authorization", `Bearer ${target.token.value}`);
    return m;
  };
  const t = target.tls;
  if (!t) return { credentials: credentials.createInsecure(), options: {}, metadata };
  const ca = t.ca ? readPem(t.ca, "CA certificate") : null;
  const key = t.key ? readPem(t.key, "private key") : null;
  const cert = t.cert ? readPem(t.cert, "certificate") : null;
  const host = hostOf(target.address.value);
  if (t.serverName) {
    // grpc-js sends this name (SNI) and checks the certificate against it.
    return { credentials: credentials.createSsl(ca, key, cert), options: { "grpc.ssl_target_name_override": t.serverName }, metadata };
  }
  if (isIP(host)) {
    // grpc-js would send the IP as the TLS server name, which RFC 6066 forbids and Node warns
    // about on stderr (DEP0123). Send a placeholder name instead and check the certificate
    // against the IP itself, as a client dialling the IP must.
    const checkIp = (_name: string, peer: Parameters<typeof checkServerIdentity>[1]) => checkServerIdentity(host, peer);
    return { credentials: credentials.createSsl(ca, key, cert, { checkServerIdentity: checkIp }), options: { "grpc.ssl_target_name_override": "localhost" }, metadata };
  }
  return { credentials: credentials.createSsl(ca, key, cert), options: {}, metadata };
}
