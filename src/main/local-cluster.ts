#!/usr/bin/env node
/**
 * `npm start`: a whole local cluster in one command. Starts nats-server (a
 * child process on a free port with a temporary store) unless LAMBDA_NATS_URL
 * is set, the embedded chDB engine in a temporary directory unless
 * LAMBDA_CLICKHOUSE_URL is set, the coordinator, archiver and serving node in
 * this process, two speed nodes as child processes, and a synthetic page-view
 * feed. It prints where to query and stops everything on Ctrl-C.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readCatalogFile } from "../core/catalog.js";
import { resolveConfig, type ResolvedConfig } from "../core/config.js";
import { ensureError } from "../core/errors.js";
import { createProcessLogger, type Logger } from "../core/logger.js";
import { createIngest } from "../ingest/index.js";
import { createClickGenerator, createOrderGenerator, createPageViewGenerator } from "../ingest/synthetic.js";
import { connectNats } from "../nats/connect.js";
import { namesFor } from "../nats/names.js";
import { startNatsServer, type NatsServerProcess } from "../nats/server_process.js";
import { removeLocalClusterFile, writeLocalClusterFile } from "../cli/index.js";
import { logFatalErrors, onShutdownSignal } from "./process.js";
import { startRoles, type RunningRoles } from "./roles.js";
import { spawnNode, speedNodeEnv, type ChildNode } from "./spawn.js";

/** Speed node processes the local cluster starts. */
export const LOCAL_SPEED_NODES = 2;
/** Batch run interval of the local cluster unless LAMBDA_BATCH_INTERVAL_MS says otherwise. */
export const LOCAL_BATCH_INTERVAL_MS = 20_000;
/** Publishes per feeder tick. */
const FEED_TICK_MS = 100;

/** Share of the synthetic feed per source. */
const FEED_MIX = { pageviews: 0.7, orders: 0.1, clicks: 0.2 } as const;

function startFeeder(publish: (source: string, events: unknown[]) => Promise<unknown>, ratePerS: number, log: Logger): () => Promise<void> {
  if (ratePerS <= 0) return async () => {};
  const run = Date.now().toString(36);
  const seed = Date.now() % 2 ** 31;
  const makers: Record<keyof typeof FEED_MIX, (now: number) => unknown> = {
    pageviews: createPageViewGenerator({ seed, idPrefix: `pv${run}` }),
    orders: createOrderGenerator({ seed, idPrefix: `ord${run}` }),
    clicks: createClickGenerator({ seed }),
  };
  const carry = { pageviews: 0, orders: 0, clicks: 0 };
  let inFlight: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    const now = Date.now();
    for (const source of Object.keys(FEED_MIX) as (keyof typeof FEED_MIX)[]) {
      carry[source] += (ratePerS * FEED_MIX[source] * FEED_TICK_MS) / 1000;
      const n = Math.floor(carry[source]);
      carry[source] -= n;
      if (n === 0) continue;
      const batch = Array.from({ length: n }, () => makers[source](now));
      inFlight = inFlight.then(() => publish(source, batch)).catch((err) => log.warn("synthetic feed publish failed; continuing", { source, err: ensureError(err) }));
    }
  }, FEED_TICK_MS);
  return async () => {
    clearInterval(timer);
    await inFlight;
  };
}

function banner(cfg: ResolvedConfig, grpc: string, natsUrl: string, chdb: string, nodes: ChildNode[]): string {
  const lines = [
    "",
    "Lambda runtime: local cluster is up",
    `  gRPC      ${grpc}    (grpcurl -plaintext ${grpc} list)`,
    `  NATS      ${natsUrl}    prefix ${cfg.prefix}, ${cfg.partitions} partitions`,
    `  ClickHouse ${cfg.clickhouseUrl || `embedded chDB at ${chdb}`}`,
    `  speed     ${nodes.length} nodes (pids ${nodes.map((n) => n.pid).join(", ")})`,
    `  feed      ${cfg.syntheticRate} events/s of page views, orders and clicks (skewed popularity, some late and duplicate events)`,
    `  batch     a run every ${cfg.batchIntervalMs / 1000} s`,
    "",
    "Try, in another terminal:",
    "  npm run lambdactl -- watermark",
    "  npm run lambdactl -- query article_views a-1 --from -30m --to now",
    "  npm run lambdactl -- top article_engagement --aggregate readers --from -1h",
    "  npm run lambdactl -- metrics",
    "",
    "Ctrl-C stops everything.",
    "",
  ];
  return lines.join("\n");
}

async function main() {
  const cfg = resolveConfig({ LAMBDA_BATCH_INTERVAL_MS: String(LOCAL_BATCH_INTERVAL_MS), ...process.env });
  const log = createProcessLogger({ level: cfg.logLevel, base: { node: "local" } });
  logFatalErrors(log);
  const catalogPath = resolve(cfg.catalogPath);
  const catalog = readCatalogFile(catalogPath);
  const cleanups: (() => Promise<void> | void)[] = [];
  let stopping = false;
  const cleanup = async () => {
    stopping = true;
    for (const c of cleanups.reverse()) await c();
  };
  try {
    let nats: NatsServerProcess | undefined;
    if (!cfg.natsUrl) {
      nats = await startNatsServer({ path: process.env.PATH ?? "" });
      cleanups.push(() => nats!.close());
    }
    const natsUrl = cfg.natsUrl || nats!.url;
    let chdbPath = cfg.chdbPath;
    if (!cfg.clickhouseUrl && !process.env.LAMBDA_CHDB_PATH) {
      // A fresh stream needs a fresh master dataset: keep them together.
      const dir = mkdtempSync(join(tmpdir(), "lambda-chdb-"));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      chdbPath = dir;
    }
    const nc = await connectNats(natsUrl, "local-cluster");
    cleanups.push(() => nc.close());
    let roles: RunningRoles;
    const mainCfg = { ...cfg, natsUrl, chdbPath, catalogPath, roles: ["archiver", "coordinator", "serving"] as ResolvedConfig["roles"] };
    try {
      roles = await startRoles(mainCfg, nc, catalog, log);
    } catch (err) {
      // The default port may be taken by another cluster: fall back to a free one.
      if (!/EADDRINUSE|No address added/.test(ensureError(err).message) || process.env.LAMBDA_GRPC_PORT) throw err;
      log.warn("gRPC port taken; using a free port instead (set LAMBDA_GRPC_PORT to choose)", { port: cfg.grpcPort });
      roles = await startRoles({ ...mainCfg, grpcPort: 0 }, nc, catalog, log);
    }
    cleanups.push(() => roles.close());

    const childEnv = speedNodeEnv(cfg, natsUrl, catalogPath, cfg.logLevel);
    const nodes: ChildNode[] = [];
    for (let i = 1; i <= LOCAL_SPEED_NODES; i++) {
      const node = spawnNode(`speed-${i}`, childEnv);
      nodes.push(node);
      cleanups.push(() => node.stop());
    }
    await Promise.all(nodes.map((n) => n.ready));

    const ingest = createIngest({ nc, catalog: roles.catalogFeed.current(), catalogFeed: roles.catalogFeed, names: namesFor(cfg.prefix), partitions: cfg.partitions, log });
    const stopFeeder = startFeeder((source, batch) => ingest.publishBatch(source, batch), cfg.syntheticRate, log);
    cleanups.push(stopFeeder);

    const grpc = roles.serving!.address;
    writeLocalClusterFile(process.cwd(), { grpc, natsUrl, prefix: cfg.prefix, partitions: cfg.partitions, catalog: catalogPath });
    cleanups.push(() => removeLocalClusterFile(process.cwd()));
    process.stdout.write(banner(cfg, grpc, natsUrl, chdbPath, nodes));
    onShutdownSignal(log, cleanup);
    for (const n of nodes) {
      void n.exited.then((how) => {
        if (!stopping) log.warn("a speed node exited; its partitions move to the other node", { node: n.nodeId, how });
      });
    }
  } catch (err) {
    await cleanup().catch(() => undefined); // best effort: the start failure is the message
    throw err;
  }
}

main().catch((err) => {
  // A log line like every other (the config, hence the level, may be what failed).
  createProcessLogger({ base: { node: "local", component: "local-cluster" } }).error("start failed", { err });
  process.exit(1);
});
