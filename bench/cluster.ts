/**
 * A cluster for a figure, started the way the test harness starts one (and
 * `npm start` runs): the ClickHouse roles (archiver, coordinator, serving) in
 * this process sharing one chDB client, speed nodes as `lambda-node` child
 * processes. It reuses the run's nats-server and chDB directory with a prefix
 * and database of its own; close() stops everything and deletes its streams.
 */
import { credentials } from "@grpc/grpc-js";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { readCatalogFile, type Catalog } from "../src/core/catalog.js";
import { resolveConfig, type ConfigOverrides, type ResolvedConfig, type Role } from "../src/core/config.js";
import { createJsonLogger } from "../src/core/logger.js";
import { createSpeedClient, type SpeedClient, type SpeedStatus } from "../src/actors/index.js";
import { createIngest, type Ingest } from "../src/ingest/index.js";
import { startRoles, type RunningRoles } from "../src/main/roles.js";
import { spawnNode, speedNodeEnv, type ChildNode } from "../src/main/spawn.js";
import { connectNats } from "../src/nats/connect.js";
import { namesFor, type Names } from "../src/nats/names.js";
import { partitionHeads } from "../src/nats/setup.js";
import { LambdaServiceClient } from "../src/gen/lambda/v1/serving.js";
import { trackPid, untrackPid } from "./cleanup.js";
import type { BenchEnv } from "./env.js";
import { waitFor } from "./wait.js";

/** How long speed actors may take to catch up with the stream heads. */
export const CATCH_UP_TIMEOUT_MS = 300_000;

/** What a figure's cluster runs. */
export interface BenchClusterOptions {
  /** Roles run in this process. */
  roles: Role[];
  /** `lambda-node` speed processes to start. */
  speedNodes: number;
  prefix: string;
  config?: ConfigOverrides;
}

/** A running cluster; close() stops it and deletes its streams. */
export interface BenchCluster {
  readonly cfg: ResolvedConfig;
  readonly names: Names;
  readonly nc: NatsConnection;
  readonly catalog: Catalog;
  readonly roles: RunningRoles;
  readonly ingest: Ingest;
  readonly speed: SpeedClient;
  /** A client of the serving node; null without the serving role. */
  readonly grpc: LambdaServiceClient | null;
  /** The speed node processes running now. */
  readonly speedNodes: readonly ChildNode[];
  /** Starts one more speed node process and waits until it runs. */
  addSpeedNode(nodeId: string): Promise<ChildNode>;
  /** SIGKILLs a speed node process (no goodbye, no final snapshot) and waits until it is gone. */
  killSpeedNode(node: ChildNode): Promise<void>;
  /** Status of every partition's actor. */
  speedStatuses(): Promise<SpeedStatus[]>;
  /** Waits until every partition's actor has applied its partition's stream head. */
  waitForSpeedCaughtUp(opts?: { timeoutMs?: number; intervalMs?: number }): Promise<SpeedStatus[]>;
  close(): Promise<void>;
}

/**
 * Starts the roles in this process and the speed nodes as children, and waits
 * until every partition's actor answers.
 * @throws when a role or node does not start; what did start is stopped again.
 */
export async function startBenchCluster(env: BenchEnv, opts: BenchClusterOptions): Promise<BenchCluster> {
  const cfg = resolveConfig(
    {},
    {
      natsUrl: env.natsUrl,
      chdbPath: env.chdbPath,
      database: opts.prefix,
      prefix: opts.prefix,
      catalogPath: env.catalogPath,
      grpcHost: "127.0.0.1",
      grpcPort: 0,
      batchIntervalMs: 0,
      heartbeatIntervalMs: 250,
      nodeId: `${opts.prefix}-main`,
      logLevel: "error",
      ...opts.config,
    },
  );
  const log = createJsonLogger(cfg.logLevel, { node: cfg.nodeId });
  const names = namesFor(cfg.prefix);
  const nc = await connectNats(env.natsUrl, `bench ${opts.prefix}`);
  const nodes: ChildNode[] = [];
  let roles: RunningRoles | undefined;
  let grpc: LambdaServiceClient | null = null;

  const close = async () => {
    grpc?.close();
    await Promise.all(nodes.map((n) => n.stop().then(() => untrackPid(n.pid))));
    await roles?.close();
    const jsm = await jetstreamManager(nc);
    for (const s of [names.eventStream, names.deadLetterStream]) await jsm.streams.delete(s).catch(() => undefined); // best effort: frees the server's memory
    await nc.close();
  };

  try {
    roles = await startRoles({ ...cfg, roles: opts.roles }, nc, readCatalogFile(env.catalogPath), log);
    if (roles.serving) grpc = new LambdaServiceClient(roles.serving.address, credentials.createInsecure());
    const childEnv = { ...env.childEnv, ...speedNodeEnv(cfg, env.natsUrl, cfg.catalogPath, "error") };
    const spawnSpeedNode = (nodeId: string) => {
      const node = spawnNode(nodeId, childEnv, "inherit");
      trackPid(node.pid);
      nodes.push(node);
      return node;
    };
    for (let i = 0; i < opts.speedNodes; i++) spawnSpeedNode(`${opts.prefix}-speed-${i}`);
    await Promise.all(nodes.map((n) => n.ready));

    const speed = createSpeedClient(nc, names);
    const speedStatuses = () => Promise.all(Array.from({ length: cfg.partitions }, (_, p) => speed.status(p, 5_000)));
    const waitForSpeedCaughtUp = async (w: { timeoutMs?: number; intervalMs?: number } = {}) => {
      const heads = await partitionHeads(nc, names, cfg.partitions);
      const done = new Map<number, SpeedStatus>();
      await waitFor(
        "speed actors to apply every partition's stream head",
        async () => {
          const todo = heads.flatMap((_, p) => (done.has(p) ? [] : [p]));
          const statuses = await Promise.all(todo.map((p) => speed.status(p, 5_000)));
          for (const [i, s] of statuses.entries()) if (s.appliedSeq >= heads[todo[i]!]!) done.set(todo[i]!, s);
          return done.size === cfg.partitions;
        },
        { timeoutMs: w.timeoutMs ?? CATCH_UP_TIMEOUT_MS, intervalMs: w.intervalMs ?? 25 },
      );
      return heads.map((_, p) => done.get(p)!);
    };
    // Every partition owned and answering before a figure starts measuring.
    if (opts.speedNodes > 0) await waitForSpeedCaughtUp({ timeoutMs: 30_000 });

    return {
      cfg,
      names,
      nc,
      catalog: env.catalog,
      roles,
      ingest: createIngest({ nc, catalog: env.catalog, names, partitions: cfg.partitions, log }),
      speed,
      grpc,
      speedNodes: nodes,
      async addSpeedNode(nodeId) {
        const node = spawnSpeedNode(nodeId);
        await node.ready;
        return node;
      },
      async killSpeedNode(node) {
        await node.kill();
        untrackPid(node.pid);
        nodes.splice(nodes.indexOf(node), 1);
      },
      speedStatuses,
      waitForSpeedCaughtUp,
      close,
    };
  } catch (err) {
    await close().catch(() => undefined); // best effort: the start failure is what matters
    throw err;
  }
}
