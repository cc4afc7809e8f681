/**
 * The serving node's gRPC listeners and their security: one grpc-js Server for the queries
 * (lambda.v1.LambdaService) and, on the same port unless it has its own, the admin API
 * (lambda.v1.AdminService); each with the health service and reflection of what it serves.
 * Every listener has the same TLS credentials (tls.ts) and the same access interceptor
 * (access_interceptor.ts). A listener beyond loopback in plain text, or with no access
 * control, is warned about once at start.
 */
import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from "@grpc/grpc-js";
import type { HealthImplementation } from "grpc-health-check";
import type { Metrics } from "../core/metrics.js";
import { callMetricsInterceptor } from "./call_metrics.js";
import type { Logger } from "../core/logger.js";
import { GRPC_TLS_RELOAD_MS } from "../core/config.js";
import { readTokenFile } from "../core/bearer_token.js";
import { accessEnforced, accessPolicy } from "./access.js";
import { accessInterceptor } from "./access_interceptor.js";
import { clientAddress, hostPort, isLoopback } from "./address.js";
import { addReflection } from "./reflection.js";
import { servingTls, type ServingTls } from "./tls.js";

const HEALTH_SERVICE_NAME = "grpc.health.v1.Health";
/** How long a listener may finish the calls in flight on close before they are cut. */
const SHUTDOWN_GRACE_MS = 5_000;

/** Security of the serving node's gRPC listeners; every field off ("") by default. */
export interface ServingSecurityOptions {
  /** PEM certificate chain (LAMBDA_GRPC_TLS_CERT_FILE); with `tlsKeyFile` it switches TLS on. @default "" */
  readonly tlsCertFile?: string;
  /** @default "" */
  readonly tlsKeyFile?: string;
  /** Client CA: client certificates required and verified (LAMBDA_GRPC_TLS_CLIENT_CA_FILE). @default "" */
  readonly tlsClientCaFile?: string;
  /** Re-read period of the TLS files, ms. @default GRPC_TLS_RELOAD_MS */
  readonly tlsReloadMs?: number;
  /** File of the query token (LAMBDA_GRPC_TOKEN_FILE). @default "" */
  readonly tokenFile?: string;
  /** File of the admin token (LAMBDA_GRPC_ADMIN_TOKEN_FILE). @default "" */
  readonly adminTokenFile?: string;
}

/** A service and its implementation, with its full name for health and reflection. */
export interface ServedService {
  readonly name: string;
  readonly definition: ServiceDefinition;
  readonly implementation: UntypedServiceImplementation;
}

/** Where one listener binds. */
export interface ListenAt {
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
}

export interface Listener {
  /** The port it listens on (the real one when 0 was asked). */
  readonly port: number;
  /** host:port for a client on this machine. */
  readonly address: string;
}

export interface Listeners {
  readonly main: Listener;
  /** The admin API's listener: `main` when it has no port of its own. */
  readonly admin: Listener;
  /** Lets calls in flight finish (at most SHUTDOWN_GRACE_MS), then stops listening. */
  shutdown(): Promise<void>;
}

/** The warnings a listener's exposure deserves (none on loopback). Pure. */
export function exposureWarnings(what: string, host: string, tls: boolean, enforced: boolean): string[] {
  if (isLoopback(host)) return [];
  const warnings: string[] = [];
  if (!tls) {
    warnings.push(
      `${what} listens on ${host} in plain text: anyone on the network can read its answers and tokens; ` +
        "set LAMBDA_GRPC_TLS_CERT_FILE and LAMBDA_GRPC_TLS_KEY_FILE, or LAMBDA_GRPC_HOST=127.0.0.1 to serve this machine only",
    );
  }
  if (!enforced) {
    warnings.push(
      `${what} listens on ${host} with no access control: anyone who reaches it may query and call the admin API (RunBatch, Rollback); ` +
        "set LAMBDA_GRPC_TOKEN_FILE and LAMBDA_GRPC_ADMIN_TOKEN_FILE (or a client CA, LAMBDA_GRPC_TLS_CLIENT_CA_FILE)",
    );
  }
  return warnings;
}

function bind(server: Server, at: ListenAt, creds: ServerCredentials): Promise<number> {
  return new Promise<number>((resolve, reject) => server.bindAsync(hostPort(at.host, at.port), creds, (err, p) => (err ? reject(err) : resolve(p))));
}

function shutdownServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}

/**
 * Starts the listeners: `lambda` on `main`, `admin` on `adminAt` (or on `main` when null).
 * @throws ConfigError for unreadable or mismatched TLS or token files (naming the variable and path)
 * @throws Error when an address cannot be bound
 */
export async function startListeners(
  services: { readonly lambda: ServedService; readonly admin: ServedService; readonly health: HealthImplementation },
  at: { readonly main: ListenAt; readonly admin: ListenAt | null },
  security: ServingSecurityOptions,
  log: Logger,
  metrics?: Metrics,
): Promise<Listeners> {
  const clientCa = security.tlsClientCaFile ?? "";
  const policy = accessPolicy(readTokenFile("LAMBDA_GRPC_TOKEN_FILE", security.tokenFile ?? ""), readTokenFile("LAMBDA_GRPC_ADMIN_TOKEN_FILE", security.adminTokenFile ?? ""), clientCa !== "");
  const tls: ServingTls | undefined = security.tlsCertFile
    ? servingTls({ certFile: security.tlsCertFile, keyFile: security.tlsKeyFile ?? "", clientCaFile: clientCa, reloadMs: security.tlsReloadMs ?? GRPC_TLS_RELOAD_MS }, log)
    : undefined;
  const creds = tls?.credentials ?? ServerCredentials.createInsecure();
  // Timing first, so a call the access policy refuses is counted with its code too.
  const interceptors = [...(metrics ? [callMetricsInterceptor(metrics)] : []), accessInterceptor(policy, log)];

  const make = (served: readonly ServedService[]): Server => {
    const server = new Server({ interceptors });
    for (const s of served) server.addService(s.definition, s.implementation);
    services.health.addToServer(server);
    // Reflection serves buf's descriptors as compiled (src/gen/descriptors.ts), not proto-loader's.
    addReflection(server, [...served.map((s) => s.name), HEALTH_SERVICE_NAME]);
    return server;
  };
  const servers: Server[] = [];
  const open = async (what: string, server: Server, where: ListenAt): Promise<Listener> => {
    servers.push(server);
    const port = await bind(server, where, creds);
    for (const w of exposureWarnings(what, where.host, tls !== undefined, accessEnforced(policy))) log.warn(w, { bind: hostPort(where.host, port) });
    return { port, address: clientAddress(where.host, port) };
  };
  try {
    const main = await open("the serving node", make(at.admin ? [services.lambda] : [services.lambda, services.admin]), at.main);
    const admin = at.admin ? await open("the admin API", make([services.admin]), at.admin) : main;
    await tls?.ready();
    log.info("serving node listening", {
      bind: hostPort(at.main.host, main.port),
      address: main.address,
      ...(at.admin ? { adminBind: hostPort(at.admin.host, admin.port), adminAddress: admin.address } : {}),
      tls: tls ? (clientCa ? "mutual" : "on") : "off",
      tokens: [policy.queryToken && "query", policy.adminToken && "admin"].filter(Boolean).join(",") || "none",
    });
    return {
      main,
      admin,
      async shutdown() {
        await Promise.all(servers.map(shutdownServer));
        tls?.stop();
      },
    };
  } catch (err) {
    for (const s of servers) s.forceShutdown();
    tls?.stop();
    throw err;
  }
}
