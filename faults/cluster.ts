/**
 * The fault matrix's cluster: every role its own process, on a 3-node NATS
 * cluster with R3 streams and buckets, so each fault hits one process or one
 * NATS node and the rest carries on.
 *
 *   nats n1..n3         nats-server processes on loopback (src/nats/server_process.ts)
 *   main                archiver, batch executor, serving (they share the chDB directory)
 *   coord-1, coord-2    coordinators (one leads)
 *   speed-1..speed-3    speed nodes
 *
 * With `network` (faults that cut links), each NATS node and each coordinator runs
 * in a network namespace of its own on a bridge (faults/netlab.ts); the other
 * processes reach them through the bridge.
 *
 * With embedded chDB one process owns the data, so serving runs once, beside
 * the archiver (docs/deploy.md): a fault on "main" stops the archiver, the
 * executor and serving together.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials } from "@grpc/grpc-js";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { loadCatalog, type Catalog } from "../src/core/catalog.js";
import { createJsonLogger, silentLogger } from "../src/core/logger.js";
import { createIngest, type Ingest } from "../src/ingest/index.js";
import { spawnNode, type ChildNode } from "../src/main/spawn.js";
import { connectNats } from "../src/nats/connect.js";
import { readLeader } from "../src/nats/leadership.js";
import { namesFor, type Names } from "../src/nats/names.js";
import { startNatsCluster, type NatsClusterNode, type NatsClusterProcess } from "../src/nats/server_process.js";
import { openBuckets, type Buckets } from "../src/nats/setup.js";
import { LambdaServiceClient } from "../src/gen/lambda/v1/serving.js";
import { createNetLab, type LabHost } from "./netlab.js";

/** Timings of the fault cluster: short, so that a fault and its recovery fit in seconds. */
export const FAULT_TIMINGS = {
  heartbeatIntervalMs: 200,
  nodeTimeoutMs: 1_500,
  leaderLeaseMs: 1_500,
  leaderRenewMs: 300,
  snapshotIntervalMs: 500,
  batchIntervalMs: 2_000,
  archiverFlushIntervalMs: 100,
} as const;
export const PARTITIONS = 4;
export const SPEED_NODES = 3;
export const COORDINATORS = 2;

export interface FaultCluster {
  readonly nats: NatsClusterProcess;
  readonly nc: NatsConnection;
  readonly names: Names;
  readonly buckets: Buckets;
  readonly catalog: Catalog;
  readonly ingest: Ingest;
  /** A client of the serving node in "main"; replaced when main restarts. */
  grpc(): LambdaServiceClient;
  /** host:port of that serving node (for lambdactl). */
  grpcAddress(): string;
  /** The roles' log lines so far (level warn and up), every process's file joined; none with `verbose` (they go to stderr). */
  logs(): string;
  /** The directory of the roles' log files, one per node id (removed by close()). */
  readonly logsDir: string;
  /** The chDB data directory (main's). */
  readonly chdbPath: string;
  /** The environment every role process starts with. */
  readonly env: Readonly<Record<string, string>>;
  /** Role processes by node id (main, coord-N, speed-N). */
  readonly processes: Map<string, ChildNode>;
  /** Starts the role process `nodeId` again (after a kill), with the roles its name says and `extraEnv` (e.g. a skewed clock). */
  restart(nodeId: string, extraEnv?: Record<string, string>): Promise<ChildNode>;
  /** The coordinator process that holds the leadership key now. */
  leader(): Promise<ChildNode>;
  /** The NATS node that leads the event stream. */
  streamLeader(): Promise<NatsClusterNode>;
  /**
   * With `network`: the lab hosts of the NATS nodes (by name, n1..n3) and of the coordinators
   * (by node id), each in its own network namespace, to cut off (faults/netlab.ts).
   */
  readonly hosts?: ReadonlyMap<string, LabHost>;
  close(): Promise<void>;
}

const rolesOf = (nodeId: string) => (nodeId === "main" ? "archiver,executor,serving" : nodeId.startsWith("coord") ? "coordinator" : "speed");

/** A tmpfs of `mb` MiB mounted at `dir` (created); returns how to unmount it. */
function mountTmpfs(dir: string, mb: number): () => void {
  mkdirSync(dir, { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${mb}m`, "tmpfs", dir]);
  return () => {
    try {
      execFileSync("umount", ["-l", dir]);
    } catch {
      // not mounted any more
    }
  };
}

/** Small file systems for the stores, to fill (F13, F14): needs root. */
export interface StoreDisks {
  /** Size of a tmpfs for the chDB data directory, MiB. */
  readonly chdbMb?: number;
  /** Size of a tmpfs for each NATS node's store directory, MiB. */
  readonly natsMb?: number;
}

/**
 * @param opts.env settings a fault needs besides FAULT_TIMINGS (LAMBDA_* variables, e.g. a short
 *   duplicate window), for every role process.
 * @param opts.network NATS nodes and coordinators in network namespaces (faults/netlab.ts).
 * @param opts.disks stores on small tmpfs mounts.
 */
export async function startFaultCluster(catalogPath: string, opts: { verbose: boolean; env?: Record<string, string>; network?: boolean; disks?: StoreDisks }): Promise<FaultCluster> {
  const dir = mkdtempSync(join(tmpdir(), "lambda-faults-"));
  const unmounts: (() => void)[] = [];
  let lab: ReturnType<typeof createNetLab> | undefined;
  const undoSetup = () => {
    lab?.close();
    for (const u of unmounts) u();
    rmSync(dir, { recursive: true, force: true });
  };
  const hosts = new Map<string, LabHost>();
  let nats: NatsClusterProcess;
  try {
    if (opts.disks?.chdbMb) unmounts.push(mountTmpfs(join(dir, "chdb"), opts.disks.chdbMb));
    if (opts.disks?.natsMb) for (const n of ["n1", "n2", "n3"]) unmounts.push(mountTmpfs(join(dir, "nats", n), opts.disks.natsMb));
    lab = opts.network ? createNetLab() : undefined;
    if (lab) for (const name of ["n1", "n2", "n3", ...Array.from({ length: COORDINATORS }, (_, i) => `coord-${i + 1}`)]) hosts.set(name, lab.addHost(name));
    nats = await startNatsCluster({
      nodes: 3,
      path: process.env.PATH ?? "",
      storeDir: join(dir, "nats"),
      placement: (i) => {
        const host = hosts.get(`n${i + 1}`);
        return host && { host: host.ip, command: host.command };
      },
    });
  } catch (err) {
    undoSetup();
    throw err;
  }
  const prefix = `f${process.pid}x${Date.now() % 100_000}`;
  const names = namesFor(prefix);
  const env = {
    LAMBDA_NATS_URL: nats.url,
    LAMBDA_PREFIX: prefix,
    LAMBDA_DATABASE: prefix,
    LAMBDA_PARTITIONS: String(PARTITIONS),
    LAMBDA_CATALOG: catalogPath,
    LAMBDA_CHDB_PATH: join(dir, "chdb"),
    LAMBDA_GRPC_HOST: "127.0.0.1",
    LAMBDA_GRPC_PORT: "0",
    LAMBDA_LOG_LEVEL: opts.verbose ? "info" : "warn",
    LAMBDA_HEARTBEAT_INTERVAL_MS: String(FAULT_TIMINGS.heartbeatIntervalMs),
    LAMBDA_NODE_TIMEOUT_MS: String(FAULT_TIMINGS.nodeTimeoutMs),
    LAMBDA_LEADER_LEASE_MS: String(FAULT_TIMINGS.leaderLeaseMs),
    LAMBDA_LEADER_RENEW_MS: String(FAULT_TIMINGS.leaderRenewMs),
    LAMBDA_SNAPSHOT_INTERVAL_MS: String(FAULT_TIMINGS.snapshotIntervalMs),
    LAMBDA_BATCH_INTERVAL_MS: String(FAULT_TIMINGS.batchIntervalMs),
    LAMBDA_ARCHIVER_FLUSH_INTERVAL_MS: String(FAULT_TIMINGS.archiverFlushIntervalMs),
    ...opts.env,
  };
  const processes = new Map<string, ChildNode>();
  let grpc: LambdaServiceClient | undefined;
  let grpcAddress = "";
  let nc: NatsConnection | undefined;
  const logsDir = join(dir, "logs");
  mkdirSync(logsDir);
  const spawnRole = async (nodeId: string, extraEnv: Record<string, string> = {}) => {
    // Each process's lines go to a file of its node id (a restart appends to it).
    const fd = opts.verbose ? undefined : openSync(join(logsDir, `${nodeId}.log`), "a");
    let child: ChildNode;
    try {
      child = spawnNode(nodeId, { ...env, ...extraEnv, LAMBDA_ROLES: rolesOf(nodeId) }, fd ?? "inherit", hosts.get(nodeId)?.command);
    } finally {
      if (fd !== undefined) closeSync(fd); // the child holds its own copy
    }
    processes.set(nodeId, child);
    const ready = await child.ready;
    if (nodeId === "main") {
      grpc?.close();
      grpcAddress = ready.grpc!;
      grpc = new LambdaServiceClient(grpcAddress, credentials.createInsecure());
    }
    return child;
  };
  const close = async () => {
    grpc?.close();
    // Continue paused processes first: a stopped process ignores SIGTERM.
    for (const p of processes.values()) {
      try {
        process.kill(p.pid, "SIGCONT");
      } catch {
        // already gone
      }
    }
    await Promise.all([...processes.values()].map((p) => p.stop()));
    await nc?.close();
    await nats.close();
    lab?.close();
    for (const u of unmounts) u();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // main first: it creates the streams and buckets with their replicas, and the schema.
    await spawnRole("main");
    for (let i = 1; i <= COORDINATORS; i++) await spawnRole(`coord-${i}`);
    for (let i = 1; i <= SPEED_NODES; i++) await spawnRole(`speed-${i}`);
    nc = await connectNats(nats.url, "fault matrix");
    const buckets = await openBuckets(nc, names);
    const catalog = loadCatalog(catalogPath);
    const log = opts.verbose ? createJsonLogger("warn", { node: "faults" }) : silentLogger;
    return {
      nats,
      nc,
      names,
      buckets,
      catalog,
      ingest: createIngest({ nc, catalog, names, partitions: PARTITIONS, log }),
      grpc: () => grpc!,
      grpcAddress: () => grpcAddress,
      chdbPath: env.LAMBDA_CHDB_PATH,
      env,
      logsDir,
      logs: () => readdirSync(logsDir).map((f) => readFileSync(join(logsDir, f), "utf8")).join(""),
      ...(lab ? { hosts } : {}),
      processes,
      restart: spawnRole,
      async leader() {
        const l = await readLeader(buckets.coordinator);
        const p = l && l.value.holder ? processes.get(l.value.holder) : undefined;
        if (!p) throw new Error(`no coordinator process leads (leadership key: ${JSON.stringify(l?.value)})`);
        return p;
      },
      async streamLeader() {
        const info = await (await jetstreamManager(nc!)).streams.info(names.eventStream);
        const node = nats.nodes.find((n) => n.name === info.cluster?.leader);
        if (!node) throw new Error(`the event stream has no leader among ${nats.nodes.map((n) => n.name).join(", ")} (${info.cluster?.leader})`);
        return node;
      },
      close,
    };
  } catch (err) {
    await close().catch(() => undefined); // best effort: the start failure is what matters
    throw err;
  }
}
