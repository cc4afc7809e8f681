/**
 * A whole cluster for a test, on real parts: a nats-server child, chDB in a
 * temporary directory, the ClickHouse roles (archiver, coordinator, serving)
 * in this process, and speed nodes as child processes (so a test can SIGKILL
 * one). Each cluster has its own subject prefix and database. close() removes
 * everything, also after a failed assertion.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials } from "@grpc/grpc-js";
import type { NatsConnection } from "@nats-io/transport-node";
import { readCatalogFile, type Catalog } from "../../src/core/catalog.js";
import { resolveConfig, type ConfigOverrides, type ResolvedConfig } from "../../src/core/config.js";
import { createJsonLogger, silentLogger, type Logger } from "../../src/core/logger.js";
import { createSpeedClient, type SpeedClient, type SpeedStatus } from "../../src/actors/index.js";
import { createIngest, type Ingest } from "../../src/ingest/index.js";
import { startRoles, type RunningRoles } from "../../src/main/roles.js";
import { spawnNode, speedNodeEnv, type ChildNode } from "../../src/main/spawn.js";
import { connectNats } from "../../src/nats/connect.js";
import { namesFor, type Names } from "../../src/nats/names.js";
import { partitionHeads } from "../../src/nats/setup.js";
import { LambdaServiceClient } from "../../src/gen/lambda/v1/serving.js";
import { startTestNats, type TestNats } from "./nats.js";
import { waitFor } from "./wait.js";

export interface TestClusterOptions {
  partitions?: number;
  speedNodes?: number;
  /** Extra config for every role. */
  config?: ConfigOverrides;
  /** Where the in-process roles log. @default silent (JSON on stderr with LAMBDA_TEST_LOG) */
  log?: Logger;
  /** The NATS server's max_payload in bytes. @default nats-server's (1 MiB) */
  natsMaxPayloadBytes?: number;
  /** nats-server processes: 3 runs the cluster on a NATS cluster (R3 streams and buckets). @default 1 */
  natsNodes?: number;
}

export interface TestCluster extends AsyncDisposable {
  readonly cfg: ResolvedConfig;
  /** The NATS server(s) the cluster runs on. */
  readonly nats: TestNats;
  readonly names: Names;
  readonly nc: NatsConnection;
  readonly catalog: Catalog;
  readonly roles: RunningRoles;
  readonly ingest: Ingest;
  readonly speed: SpeedClient;
  readonly grpc: LambdaServiceClient;
  readonly speedNodes: Map<string, ChildNode>;
  /** Starts a speed node process and waits until it runs. */
  addSpeedNode(nodeId: string): Promise<ChildNode>;
  /** SIGKILLs a speed node process (no final snapshot, no goodbye) and forgets it. */
  killSpeedNode(nodeId: string): Promise<void>;
  /** Waits until every partition's actor is owned by a live node and has applied the stream head. */
  waitForSpeedCaughtUp(timeoutMs?: number): Promise<SpeedStatus[]>;
  /** Status of every partition's actor. */
  speedStatuses(): Promise<SpeedStatus[]>;
  close(): Promise<void>;
}

const CATALOG = join(process.cwd(), "catalog/catalog.json");
let clusterCounter = 0;

export async function startTestCluster(opts: TestClusterOptions = {}): Promise<TestCluster> {
  const nats = await startTestNats({ maxPayloadBytes: opts.natsMaxPayloadBytes, nodes: opts.natsNodes });
  const dir = mkdtempSync(join(tmpdir(), "lambda-test-"));
  const prefix = `t${process.pid}x${clusterCounter++}`;
  const log: Logger = opts.log ?? (process.env.LAMBDA_TEST_LOG ? createJsonLogger("debug") : silentLogger);
  const cfg = resolveConfig({}, {
    natsUrl: nats.url,
    chdbPath: join(dir, "chdb"),
    database: prefix,
    prefix,
    partitions: opts.partitions ?? 4,
    catalogPath: CATALOG,
    grpcHost: "127.0.0.1",
    grpcPort: 0,
    batchIntervalMs: 0,
    heartbeatIntervalMs: 200,
    nodeTimeoutMs: 1_500,
    snapshotIntervalMs: 200,
    archiverFlushIntervalMs: 50,
    nodeId: `${prefix}-main`,
    ...opts.config,
  });
  const catalogFile = readCatalogFile(cfg.catalogPath);
  const catalog = catalogFile.catalog;
  const names = namesFor(cfg.prefix);
  const nc = await connectNats(nats.url, "test");
  const speedNodes = new Map<string, ChildNode>();
  let roles: RunningRoles | undefined;
  let grpc: LambdaServiceClient | undefined;

  const close = async () => {
    grpc?.close();
    await Promise.all([...speedNodes.values()].map((n) => n.stop()));
    await roles?.close();
    await nc.close();
    await nats.close();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    roles = await startRoles({ ...cfg, roles: ["archiver", "coordinator", "executor", "serving"] }, nc, catalogFile, log);
    grpc = new LambdaServiceClient(roles.serving!.address, credentials.createInsecure());
    const speed = createSpeedClient(nc, names);

    const childEnv = speedNodeEnv(cfg, nats.url, cfg.catalogPath, process.env.LAMBDA_TEST_LOG ? "debug" : "warn");
    const addSpeedNode = async (nodeId: string) => {
      const node = spawnNode(nodeId, childEnv, "inherit");
      speedNodes.set(nodeId, node);
      await node.ready;
      return node;
    };
    const killSpeedNode = async (nodeId: string) => {
      const node = speedNodes.get(nodeId);
      if (!node) throw new Error(`no speed node ${nodeId}; running: ${[...speedNodes.keys()].join(", ")}`);
      await node.kill();
      speedNodes.delete(nodeId);
    };
    for (let i = 0; i < (opts.speedNodes ?? 2); i++) await addSpeedNode(`${prefix}-speed-${i}`);

    const speedStatuses = () => Promise.all(Array.from({ length: cfg.partitions }, (_, p) => speed.status(p, 1_000)));
    const waitForSpeedCaughtUp = (timeoutMs = 30_000) =>
      waitFor(
        "speed actors to apply every partition's stream head",
        async () => {
          const heads = await partitionHeads(nc, names, cfg.partitions);
          const statuses = await speedStatuses();
          const owners = roles!.coordinator!.assignments();
          const behind = statuses.filter(
            (s, p) => !(s.appliedSeq >= heads[p]! && s.generation === owners[p]?.generation && s.node === owners[p]?.node && speedNodes.has(s.node)),
          );
          if (behind.length === 0) return statuses;
          // Thrown, not returned: the deadline's message then says which partitions lag and how.
          const describe = (s: SpeedStatus) =>
            `partition ${s.partition}: applied ${s.appliedSeq} of head ${heads[s.partition]}, ${s.node} gen ${s.generation}${s.stalled ? " (stalled)" : ""} (owner ${owners[s.partition]?.node} gen ${owners[s.partition]?.generation})`;
          throw new Error(behind.map(describe).join("; "));
        },
        { timeoutMs },
      );

    return {
      cfg,
      nats,
      names,
      nc,
      catalog,
      roles,
      ingest: createIngest({ nc, catalog, catalogFeed: roles.catalogFeed, names, partitions: cfg.partitions, log }),
      speed,
      grpc,
      speedNodes,
      addSpeedNode,
      killSpeedNode,
      waitForSpeedCaughtUp,
      speedStatuses,
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (err) {
    await close().catch(() => undefined); // best effort: the start failure is what matters
    throw err;
  }
}

export type { TestNats };
