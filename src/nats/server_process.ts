/**
 * Starts nats-server child processes with JetStream on free ports and store
 * directories, for the local cluster and the test harness: one server, or a
 * cluster of several on loopback with routes between them. It never touches a
 * server that may already run on the default port 4222.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type AddressInfo, type Server } from "node:net";
import { connect } from "@nats-io/transport-node";
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { MissingBinaryError } from "../core/errors.js";
import { natsAuthOptions, type NatsSecurity } from "./connect.js";
import { waitFor } from "../core/wait.js";

export const NATS_SERVER_INSTALL_HINT =
  "install the Debian package `nats-server` (sudo apt-get install nats-server), or set LAMBDA_NATS_URL to a running server";
/** How long a starting nats-server may take to report that it is ready. */
export const NATS_SERVER_START_TIMEOUT_MS = 15_000;

export interface NatsServerProcess {
  /** nats://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  readonly pid: number;
  /** Server version as it reports itself, e.g. "2.9.10". */
  readonly version: string;
  /** Stops the server and removes a store directory this module created. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface NatsServerOptions {
  /** Store directory; a fresh temporary one (removed on close) when absent. */
  storeDir?: string;
  /** PATH to search for the binary. */
  path?: string;
  /** Extra command-line arguments. */
  args?: string[];
  /** Receives the server's log after start (a test looks for permission violations); dropped otherwise. */
  onLog?: (chunk: string) => void;
}

/** Finds nats-server on `path`, then in /usr/sbin (where Debian installs it). */
export function findNatsServer(path = ""): string {
  const dirs = [...path.split(delimiter).filter(Boolean), "/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"];
  for (const d of dirs) {
    const candidate = join(d, "nats-server");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  throw new MissingBinaryError("nats-server", NATS_SERVER_INSTALL_HINT);
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** A nats-server child that reported it is ready, and what it said about itself. */
interface ReadyServer {
  readonly child: ChildProcess;
  readonly port: number;
  /** The route (cluster) port; null without --cluster. */
  readonly clusterPort: number | null;
  readonly version: string;
}

/** Spawns nats-server with `args` and resolves once it accepts clients (and routes, when clustered). */
async function spawnServer(bin: string, args: readonly string[], command: readonly string[] = [], onLog?: (chunk: string) => void): Promise<ReadyServer> {
  // Under a command (ip netns exec), which execs the server: the child's pid is the server's.
  const [file, ...rest] = [...command, bin, ...args];
  const child = spawn(file!, rest, {
    stdio: ["ignore", "ignore", "pipe"],
    // Its own process group: a Ctrl-C in the terminal reaches the parent only,
    // which stops the roles first and the server last.
    detached: true,
  });
  const clustered = args.includes("--cluster");
  let log = "";
  const ready = new Promise<ReadyServer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server did not become ready within ${NATS_SERVER_START_TIMEOUT_MS} ms; its log:\n${log}`)), NATS_SERVER_START_TIMEOUT_MS);
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      log += chunk;
      const port = /Listening for client connections on [^\s]+:(\d+)/.exec(log);
      const route = /Listening for route connections on [^\s]+:(\d+)/.exec(log);
      const version = /Version:\s+(\S+)/.exec(log);
      if (port && (!clustered || route) && /Server is ready/.test(log)) {
        clearTimeout(timer);
        resolve({ child, port: Number(port[1]), clusterPort: route ? Number(route[1]) : null, version: version?.[1] ?? "unknown" });
      }
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited (${code ?? signal}) before it was ready; its log:\n${log}`));
    });
  });
  try {
    const server = await ready;
    // Keep draining stderr so the child never blocks on a full pipe.
    child.stderr!.removeAllListeners("data");
    if (onLog) child.stderr!.on("data", onLog);
    child.stderr!.resume();
    return server;
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
}

/** SIGTERM, then SIGKILL if the server is still running after 5 s; resolves once it exited. */
async function stopServer(child: ChildProcess): Promise<void> {
  child.kill("SIGTERM");
  const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await waitForExit(child);
  clearTimeout(killer);
}

/** Starts nats-server on a random free port and resolves once it accepts clients. */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerProcess> {
  const bin = findNatsServer(opts.path);
  const ownDir = opts.storeDir === undefined;
  const storeDir = opts.storeDir ?? mkdtempSync(join(tmpdir(), "lambda-nats-"));
  let info: ReadyServer;
  try {
    // -p -1: the server picks a free port and logs it; no race between probe and bind.
    info = await spawnServer(bin, ["-a", "127.0.0.1", "-p", "-1", "-js", "-sd", storeDir, ...(opts.args ?? [])], [], opts.onLog);
  } catch (err) {
    if (ownDir) rmSync(storeDir, { recursive: true, force: true });
    throw err;
  }
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await stopServer(info.child);
      if (ownDir) rmSync(storeDir, { recursive: true, force: true });
    })());
  return {
    url: `nats://127.0.0.1:${info.port}`,
    port: info.port,
    storeDir,
    pid: info.child.pid!,
    version: info.version,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** One server of a local cluster; a test may kill, pause and restart it. */
export interface NatsClusterNode {
  /** Its server name (and JetStream peer name), e.g. "n2". */
  readonly name: string;
  /** nats://127.0.0.1:<port>; the same after a restart. */
  readonly url: string;
  readonly port: number;
  readonly clusterPort: number;
  readonly storeDir: string;
  /** The pid of the running process; null while it is down. */
  pid(): number | null;
  /** Sends `signal` (SIGKILL by default) and, unless it is SIGSTOP, waits until the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same ports and store directory, with routes to every other node. */
  restart(): Promise<void>;
}

/** A cluster of nats-server processes on loopback, routes between all, JetStream on each. */
export interface NatsClusterProcess {
  /** Client URLs of every node, comma-separated (what LAMBDA_NATS_URL takes). */
  readonly url: string;
  readonly nodes: readonly NatsClusterNode[];
  readonly version: string;
  /** Stops every node and removes the store directories this module created. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface NatsClusterOptions {
  /** How many servers. @default 3 */
  nodes?: number;
  /** Parent of the nodes' store directories (one subdirectory each); a temporary one (removed on close) when absent. */
  storeDir?: string;
  /** PATH to search for the binary. */
  path?: string;
  /** Extra command-line arguments for every node. */
  args?: string[];
  /** Called with each server process as it starts (the local cluster's watchdog watches them). */
  onProcess?: (pid: number) => void;
  /**
   * Where each node listens (default 127.0.0.1) and a command it is started under, by node
   * index: the fault matrix puts nodes in network namespaces (`ip netns exec NS`) to cut them off.
   */
  placement?: (index: number) => { host: string; command?: readonly string[] } | undefined;
  /** How the readiness probe connects, when the servers' config requires TLS or credentials. */
  probeSecurity?: NatsSecurity;
}

/** Cluster name of every local cluster: the store directories remember it. */
const LOCAL_CLUSTER_NAME = "lambda-local";

/** Free TCP ports on loopback, distinct: each is bound at once, then all are released. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<Server>((resolve, reject) => {
      const srv = createServer();
      srv.once("error", reject);
      srv.listen(0, "127.0.0.1", () => resolve(srv));
    })),
  );
  const ports = servers.map((srv) => (srv.address() as AddressInfo).port);
  await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
  return ports;
}

/** Attempts at starting a cluster when a route port picked free was taken before the server bound it. */
const CLUSTER_START_ATTEMPTS = 3;

/**
 * Starts a cluster of nats-server processes on loopback and resolves when every node accepts
 * clients and routes. JetStream in a cluster needs its routes configured before it starts, so
 * the route ports are picked free first (and picked again if one was taken meanwhile); client
 * ports are the servers' own choice. JetStream answers once the nodes have elected a meta
 * leader, a moment later: the roles retry their JetStream calls at start.
 */
export async function startNatsCluster(opts: NatsClusterOptions = {}): Promise<NatsClusterProcess> {
  const bin = findNatsServer(opts.path);
  const count = opts.nodes ?? 3;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`a NATS cluster needs a whole number of nodes >= 1, got ${count}`);
  const ownDir = opts.storeDir === undefined;
  const root = opts.storeDir ?? mkdtempSync(join(tmpdir(), "lambda-nats-cluster-"));
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNodes(bin, count, root, ownDir, await freePorts(count), opts);
    } catch (err) {
      const taken = /address already in use/i.test(String((err as Error).message));
      if (!taken || attempt >= CLUSTER_START_ATTEMPTS) {
        if (ownDir) rmSync(root, { recursive: true, force: true });
        throw err;
      }
    }
  }
}

async function startNodes(bin: string, count: number, root: string, ownDir: boolean, clusterPorts: readonly number[], opts: NatsClusterOptions): Promise<NatsClusterProcess> {
  const nodes: (NatsClusterNode & { stop(): Promise<void> })[] = [];
  const where = Array.from({ length: count }, (_, i) => ({ host: "127.0.0.1", command: [] as readonly string[], ...opts.placement?.(i) }));
  const argsFor = (i: number, storeDir: string, port: number | "-1") => [
    "-a", where[i]!.host, "-p", String(port), "-js", "-sd", storeDir,
    "--server_name", `n${i + 1}`, "--cluster_name", LOCAL_CLUSTER_NAME, "--cluster", `nats://${where[i]!.host}:${clusterPorts[i]}`,
    ...(count > 1 ? ["--routes", clusterPorts.flatMap((r, j) => (j === i ? [] : [`nats://${where[j]!.host}:${r}`])).join(",")] : []),
    ...(opts.args ?? []),
  ];
  let version = "unknown";
  try {
    for (let i = 0; i < count; i++) {
      const name = `n${i + 1}`;
      const storeDir = join(root, name);
      mkdirSync(storeDir, { recursive: true });
      let server: ReadyServer | null = await spawnServer(bin, argsFor(i, storeDir, "-1"), where[i]!.command);
      opts.onProcess?.(server.child.pid!);
      version = server.version;
      const port = server.port;
      nodes.push({
        name,
        url: `nats://${where[i]!.host}:${port}`,
        port,
        clusterPort: clusterPorts[i]!,
        storeDir,
        pid: () => (server && server.child.exitCode === null && server.child.signalCode === null ? server.child.pid! : null),
        async kill(signal: NodeJS.Signals = "SIGKILL") {
          if (!server) return;
          const child = server.child;
          child.kill(signal);
          if (signal === "SIGSTOP" || signal === "SIGCONT") return;
          await waitForExit(child);
          server = null;
        },
        async restart() {
          if (server) throw new Error(`NATS node ${name} is running (pid ${server.child.pid}); kill it before a restart`);
          server = await spawnServer(bin, argsFor(i, storeDir, port), where[i]!.command);
          opts.onProcess?.(server.child.pid!);
        },
        async stop() {
          if (!server) return;
          // A paused server ignores SIGTERM until continued.
          server.child.kill("SIGCONT");
          await stopServer(server.child);
          server = null;
        },
      });
    }
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw err;
  }
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      if (ownDir) rmSync(root, { recursive: true, force: true });
    })());
  const url = nodes.map((n) => n.url).join(",");
  try {
    await waitForJetStream(url, JETSTREAM_READY_TIMEOUT_MS, opts.probeSecurity);
  } catch (err) {
    await close();
    throw err;
  }
  return { url, nodes, version, close, [Symbol.asyncDispose]: close };
}

/** How long a new cluster may take to elect its JetStream meta leader. */
export const JETSTREAM_READY_TIMEOUT_MS = 30_000;

/**
 * Resolves once JetStream answers an account-info request on `url` (a cluster's nodes elect a
 * meta leader first; until then requests time out or answer 503).
 * @throws Error naming the last answer when the deadline passes (core/wait)
 */
export async function waitForJetStream(url: string, timeoutMs: number, security: NatsSecurity = {}): Promise<void> {
  const nc = await connect({ servers: url.split(","), name: "jetstream readiness probe", ...natsAuthOptions(security) });
  try {
    await waitFor(
      `JetStream on ${url} to answer`,
      async () => {
        const reply = JSON.parse(new TextDecoder().decode((await nc.request("$JS.API.INFO", undefined, { timeout: 1_000 })).data)) as { error?: { description?: string } };
        if (reply.error) throw new Error(reply.error.description ?? JSON.stringify(reply.error));
        return true;
      },
      { timeoutMs, intervalMs: 100 },
    );
  } finally {
    await nc.close();
  }
}
