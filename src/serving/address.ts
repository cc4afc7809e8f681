/**
 * The serving node's two addresses: the one its socket binds (LAMBDA_GRPC_HOST, often the
 * wildcard 0.0.0.0) and the one a client on the same machine dials. A wildcard is not an
 * address to dial, so the client address names the loopback of the same family instead.
 */

/** `host:port`, with an IPv6 literal in brackets as gRPC target strings want it. */
export function hostPort(host: string, port: number): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Where a client on this machine reaches a server bound to `host`:`port`. */
export function clientAddress(host: string, port: number): string {
  if (host === "0.0.0.0" || host === "") return hostPort("127.0.0.1", port);
  if (host === "::" || host === "[::]") return hostPort("::1", port);
  return hostPort(host, port);
}

/** True when `host` only accepts connections from this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h);
}
