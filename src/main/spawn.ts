/**
 * Starts `lambda-node` (main/node.ts) as a child process, for the local cluster
 * and the test harness: speed nodes are separate processes, as in production.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { envVarFor, type ResolvedConfig } from "../core/config.js";
import { NATS_SECURITY_FIELDS, type NatsSecuritySettings } from "../nats/connect.js";

/** How long a child node may take to report that it started. */
export const NODE_START_TIMEOUT_MS = 30_000;

export interface ChildNode {
  readonly pid: number;
  readonly nodeId: string;
  /** Resolves when the child reported it started (with its serving node's address, if it runs one); rejects if it exited first. */
  /** Resolves once the node started its roles: its gRPC address (serving) and metrics port. */
  readonly ready: Promise<{ grpc: string | null; metricsPort: number | null }>;
  /** Resolves with the exit code or signal once the process is gone. */
  readonly exited: Promise<number | NodeJS.Signals>;
  /** Sends SIGTERM (clean stop) and waits for the exit. */
  stop(): Promise<void>;
  /** Sends SIGKILL (a crash) and waits for the exit. */
  kill(): Promise<void>;
}

/** The LAMBDA_* variables a speed-node child needs to join the cluster `cfg` describes. */
export function speedNodeEnv(cfg: ResolvedConfig, natsUrl: string, catalogPath: string, logLevel: string): Record<string, string> {
  return {
    LAMBDA_NATS_URL: natsUrl,
    LAMBDA_PREFIX: cfg.prefix,
    LAMBDA_PARTITIONS: String(cfg.partitions),
    LAMBDA_CATALOG: catalogPath,
    LAMBDA_ROLES: "speed",
    LAMBDA_LOG_LEVEL: logLevel,
    LAMBDA_HEARTBEAT_INTERVAL_MS: String(cfg.heartbeatIntervalMs),
    LAMBDA_SNAPSHOT_INTERVAL_MS: String(cfg.snapshotIntervalMs),
    LAMBDA_DEDUPE_HORIZON_IDS: String(cfg.dedupeHorizonIds),
  };
}

/** The LAMBDA_NATS_* variables that carry `s` to a child (the set ones only). */
export function natsSecurityEnv(s: NatsSecuritySettings): Record<string, string> {
  return Object.fromEntries(NATS_SECURITY_FIELDS.filter((f) => s[f] !== "").map((f) => [envVarFor(f)!, s[f]]));
}

const NODE_ENTRY = fileURLToPath(new URL("./node.js", import.meta.url));

/**
 * @param env LAMBDA_* variables for the child (merged over the parent's PATH/HOME only).
 * @param output where the child's stdout and stderr go: "inherit", "ignore", or an open file descriptor.
 * @param command a command node runs under, which execs it (the fault matrix's `ip netns exec NS`);
 *   the IPC channel passes through it.
 */
export function spawnNode(nodeId: string, env: Record<string, string>, output: "inherit" | "ignore" | number = "inherit", command: readonly string[] = []): ChildNode {
  const child: ChildProcess = fork(NODE_ENTRY, [], {
    // Many nodes on one machine: each takes a free metrics port unless told one.
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", LAMBDA_METRICS_PORT: "0", ...env, LAMBDA_NODE_ID: nodeId },
    stdio: ["ignore", output, output, "ipc"],
    ...(command.length > 0 ? { execPath: command[0], execArgv: [...command.slice(1), process.execPath, "--enable-source-maps"] } : { execArgv: ["--enable-source-maps"] }),
    // Its own process group: the parent decides the stop order on Ctrl-C.
    detached: true,
  });
  const exited = new Promise<number | NodeJS.Signals>((resolve) => child.once("exit", (code, signal) => resolve(signal ?? code ?? 0)));
  const ready = new Promise<{ grpc: string | null; metricsPort: number | null }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${nodeId} did not start within ${NODE_START_TIMEOUT_MS} ms`)), NODE_START_TIMEOUT_MS);
    child.on("message", (m: unknown) => {
      const msg = m as { kind?: string; grpc?: unknown; metricsPort?: unknown };
      if (msg?.kind === "ready") {
        clearTimeout(timer);
        resolve({ grpc: typeof msg.grpc === "string" ? msg.grpc : null, metricsPort: typeof msg.metricsPort === "number" ? msg.metricsPort : null });
      }
    });
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`node ${nodeId} exited (${how}) before it was ready`));
    });
  });
  ready.catch(() => undefined); // observed by callers that await it; avoid an unhandled rejection otherwise
  const signal = async (s: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(s);
    await exited;
  };
  return { pid: child.pid!, nodeId, ready, exited, stop: () => signal("SIGTERM"), kill: () => signal("SIGKILL") };
}
