#!/usr/bin/env node
/**
 * `npm start`: a whole local cluster in one command. Starts nats-server (a
 * child process on a free port, with a temporary store or the one
 * LAMBDA_NATS_STORE_DIR names; LAMBDA_LOCAL_NATS_NODES=3 starts a cluster of
 * three on loopback) unless LAMBDA_NATS_URL is set, the embedded
 * chDB engine in a temporary directory (or LAMBDA_CHDB_PATH) unless
 * LAMBDA_CLICKHOUSE_URL is set, the coordinator, archiver and serving node in
 * this process, two speed nodes as child processes, and a synthetic page-view
 * feed. It prints where to query and stops everything on Ctrl-C. The gRPC API
 * is on TLS with tokens (local_grpc_secrets.ts), whose files lambdactl finds
 * through `.lambda/local-cluster.json`.
 *
 * After a crash of this process (SIGKILL, OOM) nothing is left running: the
 * speed nodes stop when their IPC channel closes, and a watchdog process stops
 * nats-server. The data stays where the banner said, and the next start finds
 * the stale `.lambda/local-cluster.json`, says how to restart on that data, and
 * replaces the file.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { redactUrl } from "../ch/connection_options.js";
import { readCatalogFile } from "../core/catalog.js";
import { resolveConfig, type ResolvedConfig } from "../core/config.js";
import { ensureError } from "../core/errors.js";
import { createProcessLogger, type Logger } from "../core/logger.js";
import { createIngest } from "../ingest/index.js";
import { createClickGenerator, createOrderGenerator, createPageViewGenerator } from "../ingest/synthetic.js";
import { connectNats, natsSecurityOf, redactNatsUrl, type NatsSecuritySettings } from "../nats/connect.js";
import { namesFor } from "../nats/names.js";
import { startNatsCluster, startNatsServer } from "../nats/server_process.js";
import { isStale, LocalClusterFileError, localClusterFilePath, readLocalClusterFile, removeLocalClusterFile, writeLocalClusterFile } from "../cli/index.js";
import { ConfigError } from "../core/errors.js";
import { logFatalErrors, onShutdownSignal } from "./process.js";
import { startRoles, type RunningRoles } from "./roles.js";
import { startObserveListener } from "./observe_http.js";
import { createMetrics } from "../core/metrics.js";
import { createHealth } from "../core/health.js";
import { natsSecurityEnv, spawnNode, speedNodeEnv, type ChildNode } from "./spawn.js";
import { restartCommand, shellWord, type ClusterData } from "./restart_command.js";
import { startWatchdog } from "./watchdog.js";
import { createLocalGrpcSecrets } from "./local_grpc_secrets.js";
import { createLocalNatsSecrets, type LocalNatsSecrets } from "./local_nats_secrets.js";

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

/** Another local cluster runs in this directory (its file names a live process). */
export class LocalClusterRunningError extends Error {
  override readonly name = "LocalClusterRunningError";
  constructor(
    readonly file: string,
    readonly pid: number,
  ) {
    super(`another local cluster (pid ${pid}) runs in this directory (${file}); stop it first, or start this one in another directory (if pid ${pid} is not a local cluster, delete the file)`);
  }
}

/**
 * Looks at the local cluster file a previous start left in `cwd`: refuses to start beside a
 * live cluster; reports a stale one (its main process died without a clean stop) with where
 * its data is and how to restart on it. The caller then replaces the file.
 * @throws LocalClusterRunningError
 */
function checkPreviousCluster(cwd: string, cfg: ResolvedConfig, log: Logger): void {
  const file = localClusterFilePath(cwd);
  let prev;
  try {
    prev = readLocalClusterFile(cwd);
  } catch (err) {
    if (!(err instanceof LocalClusterFileError)) throw err;
    log.warn("the local cluster file is unreadable; replacing it", { file, err });
    return;
  }
  if (!prev) return;
  if (prev.pid !== undefined && prev.pid !== process.pid && !isStale(prev)) throw new LocalClusterRunningError(file, prev.pid);
  const kept = [prev.natsStoreDir, prev.chdbPath].filter((d): d is string => d !== undefined);
  if (prev.natsStoreDir !== undefined && prev.natsStoreDir === cfg.natsStoreDir) {
    log.warn("found the local cluster file of a cluster that did not stop cleanly; restarting on its NATS store", { file, pid: prev.pid, natsStoreDir: prev.natsStoreDir, chdbPath: prev.chdbPath });
    return;
  }
  log.warn(
    `found a stale local cluster file: the local cluster${prev.pid ? ` (pid ${prev.pid})` : ""} that wrote it did not stop cleanly; ` +
      (kept.length > 0
        ? `its data is kept. To restart on it, stop this one and run: ${restartCommand(prev)} ; to discard it: rm -rf ${kept.map(shellWord).join(" ")}. `
        : "") +
      "Replacing the file.",
    { file, pid: prev.pid, grpc: prev.grpc, natsUrl: prev.natsUrl, natsStoreDir: prev.natsStoreDir, chdbPath: prev.chdbPath },
  );
}

/** The nats-server processes the local cluster started: one, or a cluster on loopback. */
interface LocalNats {
  /** Client URL, or the nodes' URLs separated by commas. */
  readonly url: string;
  readonly storeDir: string;
  readonly pids: readonly number[];
  close(): Promise<void>;
}

/** Starts `cfg.localNatsNodes` nats-servers (a cluster when more than one), each watched by `watch`. */
async function startLocalNats(cfg: ResolvedConfig, watch: (pid: number) => void, secrets: LocalNatsSecrets): Promise<LocalNats> {
  const storeDir = cfg.natsStoreDir ? resolve(cfg.natsStoreDir) : undefined;
  if (cfg.localNatsNodes > 1) {
    const pids: number[] = [];
    const cluster = await startNatsCluster({
      nodes: cfg.localNatsNodes,
      path: process.env.PATH ?? "",
      args: ["-c", secrets.serverConfigFile],
      probeSecurity: natsSecurityOf(secrets.settings("lambdactl-readonly")),
      ...(storeDir ? { storeDir } : {}),
      onProcess: (pid) => {
        pids.push(pid);
        watch(pid);
      },
    });
    return { url: cluster.url, storeDir: storeDir ?? dirname(cluster.nodes[0]!.storeDir), pids, close: () => cluster.close() };
  }
  const server = await startNatsServer({ path: process.env.PATH ?? "", args: ["-c", secrets.serverConfigFile], ...(storeDir ? { storeDir } : {}) });
  watch(server.pid);
  return { url: server.url, storeDir: server.storeDir, pids: [server.pid], close: () => server.close() };
}

/** What lambdactl needs in the local cluster file to connect as `s` says. */
function lambdactlNats(s: NatsSecuritySettings) {
  return { natsNkeySeedFile: s.natsNkeySeedFile, natsTlsCa: s.natsTlsCaFile, natsInboxPrefix: s.natsInboxPrefix };
}

function banner(cfg: ResolvedConfig, grpc: string, natsUrl: string, nats: LocalNats | undefined, data: ClusterData, temporary: boolean, nodes: ChildNode[], grpcSecretsDir: string, natsSecretsDir: string | undefined, metricsAt: string[]): string {
  const lines = [
    "",
    "Lambda runtime: local cluster is up",
    `  gRPC      ${grpc}    TLS + tokens; CA and token files in ${grpcSecretsDir} (lambdactl reads them from .lambda/local-cluster.json)`,
    `  NATS      ${redactNatsUrl(natsUrl)}    prefix ${cfg.prefix}, ${cfg.partitions} partitions` +
      (nats ? ` (nats-server ${nats.pids.length > 1 ? `cluster of ${nats.pids.length}, pids ${nats.pids.join(", ")}, R${cfg.natsReplicas || Math.min(3, nats.pids.length)}` : `pid ${nats.pids[0]}`}, store ${nats.storeDir})` : "") +
      (natsSecretsDir ? `\n            TLS + one least-privilege nkey user per process; CA, seeds and server config in ${natsSecretsDir}` : ""),
    `  ClickHouse ${cfg.clickhouseUrl ? redactUrl(cfg.clickhouseUrl) : `embedded chDB at ${data.chdbPath}`}`,
    `  speed     ${nodes.length} nodes (pids ${nodes.map((n) => n.pid).join(", ")})`,
    `  feed      ${cfg.syntheticRate} events/s of page views, orders and clicks (skewed popularity, some late and duplicate events)`,
    `  batch     ${cfg.batchIntervalMs > 0 ? `a run every ${cfg.batchIntervalMs / 1000} s` : "on demand only (lambdactl run)"}`,
    `  metrics   /metrics, /livez, /readyz on ${metricsAt.join(", ")}`,
    "",
    "Try, in another terminal:",
    "  npm run lambdactl -- watermark",
    "  npm run lambdactl -- query article_views a-1 --from -30m --to now",
    "  npm run lambdactl -- top article_engagement --aggregate readers --from -1h",
    "  npm run lambdactl -- metrics",
    "",
    temporary ? "Ctrl-C stops everything and removes the temporary NATS store and chDB directory." : "Ctrl-C stops everything; the NATS store and chDB directory stay.",
    "If this process dies without a clean stop (SIGKILL, out of memory), the speed nodes and nats-server",
    "stop with it and the data stays where it is; to restart on it:",
    `  ${restartCommand(data)}`,
    "",
  ];
  return lines.join("\n");
}

async function main() {
  const cfg = resolveConfig({ LAMBDA_BATCH_INTERVAL_MS: String(LOCAL_BATCH_INTERVAL_MS), ...process.env });
  const log = createProcessLogger({ level: cfg.logLevel, base: { node: "local" } });
  logFatalErrors(log);
  if (cfg.natsStoreDir && cfg.natsUrl) throw new ConfigError("LAMBDA_NATS_STORE_DIR", cfg.natsStoreDir, "to be unset when LAMBDA_NATS_URL is set (a store dir is for the nats-server npm start starts)");
  if (cfg.localNatsNodes > 1 && cfg.natsUrl) throw new ConfigError("LAMBDA_LOCAL_NATS_NODES", cfg.localNatsNodes, "to be unset when LAMBDA_NATS_URL is set (it is how many nats-servers npm start starts)");
  if (cfg.natsStoreDir && !cfg.clickhouseUrl && !process.env.LAMBDA_CHDB_PATH) {
    throw new ConfigError("LAMBDA_CHDB_PATH", "", "the chDB directory that belongs with LAMBDA_NATS_STORE_DIR (a kept stream needs the master dataset archived from it)");
  }
  checkPreviousCluster(process.cwd(), cfg, log);
  const catalogPath = resolve(cfg.catalogPath);
  const catalog = readCatalogFile(catalogPath);
  const cleanups: (() => Promise<void> | void)[] = [];
  let stopping = false;
  const cleanup = async () => {
    stopping = true;
    for (const c of cleanups.reverse()) await c();
  };
  try {
    let nats: LocalNats | undefined;
    // Stops nats-server (not ours: it cannot watch us) if this process dies without a clean stop.
    const watchdog = startWatchdog();
    cleanups.push(() => watchdog.stop());
    // Secure by default: the nats-server npm start runs takes TLS and least-privilege users only.
    let natsSecrets: LocalNatsSecrets | undefined;
    if (!cfg.natsUrl) {
      if (cfg.natsStoreDir) mkdirSync(cfg.natsStoreDir, { recursive: true });
      natsSecrets = createLocalNatsSecrets(namesFor(cfg.prefix), cfg.localNatsNodes > 1);
      cleanups.push(() => natsSecrets!.remove());
      nats = await startLocalNats(cfg, (pid) => watchdog.watch(pid), natsSecrets);
      cleanups.push(() => nats!.close());
    }
    const natsUrl = cfg.natsUrl || nats!.url;
    // A server the operator named: the credentials the operator gave (LAMBDA_NATS_*).
    const mainNats = natsSecurityOf(natsSecrets ? natsSecrets.settings("main") : cfg);
    let chdbPath = resolve(cfg.chdbPath);
    if (!cfg.clickhouseUrl && !process.env.LAMBDA_CHDB_PATH) {
      // A fresh stream needs a fresh master dataset: keep them together.
      const dir = mkdtempSync(join(tmpdir(), "lambda-chdb-"));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      chdbPath = dir;
    }
    const nc = await connectNats(natsUrl, "local-cluster", mainNats);
    cleanups.push(() => nc.close());
    // Secure by default: TLS and tokens on the gRPC API, made for this run.
    const grpcSecrets = createLocalGrpcSecrets(cfg);
    cleanups.push(() => grpcSecrets.remove());
    let roles: RunningRoles;
    const mainCfg = { ...cfg, ...grpcSecrets.config, natsUrl, chdbPath, catalogPath, roles: ["archiver", "coordinator", "executor", "serving"] as ResolvedConfig["roles"] };
    const observe = { metrics: createMetrics(), health: createHealth() };
    const metricsListener = await startObserveListener(cfg.metricsHost, cfg.metricsPort, observe.metrics, observe.health, log).catch((err) => {
      // The default port may be taken by another cluster: fall back to a free one.
      if (!/EADDRINUSE/.test(ensureError(err).message) || process.env.LAMBDA_METRICS_PORT) throw err;
      log.warn("metrics port taken; using a free port instead (set LAMBDA_METRICS_PORT to choose)", { port: cfg.metricsPort });
      return startObserveListener(cfg.metricsHost, 0, observe.metrics, observe.health, log);
    });
    cleanups.push(() => metricsListener.close());
    try {
      roles = await startRoles(mainCfg, nc, catalog, log, observe);
    } catch (err) {
      // The default port may be taken by another cluster: fall back to a free one.
      if (!/EADDRINUSE|No address added/.test(ensureError(err).message) || process.env.LAMBDA_GRPC_PORT) throw err;
      log.warn("gRPC port taken; using a free port instead (set LAMBDA_GRPC_PORT to choose)", { port: cfg.grpcPort });
      roles = await startRoles({ ...mainCfg, grpcPort: 0 }, nc, catalog, log, observe);
    }
    cleanups.push(() => roles.close());

    const childEnv = { ...speedNodeEnv(cfg, natsUrl, catalogPath, cfg.logLevel), ...natsSecurityEnv(natsSecrets ? natsSecrets.settings("speed") : cfg) };
    const nodes: ChildNode[] = [];
    for (let i = 1; i <= LOCAL_SPEED_NODES; i++) {
      const node = spawnNode(`speed-${i}`, childEnv);
      watchdog.watch(node.pid); // they also stop by themselves when this process goes (spawn.ts)
      nodes.push(node);
      cleanups.push(() => node.stop());
    }
    const started = await Promise.all(nodes.map((n) => n.ready));
    const metricsAt = [`${cfg.metricsHost}:${metricsListener.port} (this process)`, ...started.map((r, i) => `${cfg.metricsHost}:${r.metricsPort} (${nodes[i]!.nodeId})`)];

    const ingest = createIngest({ nc, catalog: roles.catalogFeed.current(), catalogFeed: roles.catalogFeed, names: namesFor(cfg.prefix), partitions: cfg.partitions, log, metrics: observe.metrics });
    const stopFeeder = startFeeder((source, batch) => ingest.publishBatch(source, batch), cfg.syntheticRate, log);
    cleanups.push(stopFeeder);

    const grpc = roles.serving!.address;
    const data: ClusterData = {
      natsUrl,
      ...(nats ? { natsStoreDir: nats.storeDir, ...(nats.pids.length > 1 ? { natsNodes: nats.pids.length } : {}) } : {}),
      ...(cfg.clickhouseUrl ? {} : { chdbPath }),
      prefix: cfg.prefix,
      partitions: cfg.partitions,
      database: cfg.database,
    };
    writeLocalClusterFile(process.cwd(), {
      grpc,
      natsUrl,
      prefix: cfg.prefix,
      partitions: cfg.partitions,
      catalog: catalogPath,
      pid: process.pid,
      ...(data.natsStoreDir ? { natsStoreDir: data.natsStoreDir } : {}),
      ...(data.natsNodes ? { natsNodes: data.natsNodes } : {}),
      ...(data.chdbPath ? { chdbPath: data.chdbPath } : {}),
      ...(roles.serving!.adminAddress !== grpc ? { grpcAdmin: roles.serving!.adminAddress } : {}),
      ...(grpcSecrets.caFile ? { grpcTlsCa: grpcSecrets.caFile } : {}),
      grpcTokenFile: grpcSecrets.config.grpcTokenFile,
      grpcAdminTokenFile: grpcSecrets.config.grpcAdminTokenFile,
      ...(natsSecrets ? lambdactlNats(natsSecrets.settings("lambdactl")) : {}),
    });
    cleanups.push(() => removeLocalClusterFile(process.cwd()));
    const temporary = !cfg.natsStoreDir && !process.env.LAMBDA_CHDB_PATH;
    process.stdout.write(banner(cfg, grpc, natsUrl, nats, data, temporary, nodes, grpcSecrets.dir, natsSecrets?.dir, metricsAt));
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
