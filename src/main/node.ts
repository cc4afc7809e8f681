#!/usr/bin/env node
/**
 * `lambda-node`: runs the roles LAMBDA_ROLES names (archiver, coordinator,
 * serving, speed) against LAMBDA_NATS_URL. The Kubernetes workloads and the
 * local cluster's speed nodes run this entry.
 */
import { readCatalogFile } from "../core/catalog.js";
import { resolveConfig } from "../core/config.js";
import { ConfigError } from "../core/errors.js";
import { createProcessLogger } from "../core/logger.js";
import { connectNats, natsSecurityOf } from "../nats/connect.js";
import { logFatalErrors, onParentGone, onShutdownSignal } from "./process.js";
import { startRoles } from "./roles.js";
import { createMetrics } from "../core/metrics.js";
import { createHealth } from "../core/health.js";
import { startObserveListener } from "./observe_http.js";

async function main() {
  const cfg = resolveConfig(process.env);
  const log = createProcessLogger({ level: cfg.logLevel, base: { node: cfg.nodeId } });
  logFatalErrors(log);
  if (!cfg.natsUrl) throw new ConfigError("LAMBDA_NATS_URL", "", "the URL of a NATS server with JetStream (e.g. nats://127.0.0.1:4222)");
  const catalog = readCatalogFile(cfg.catalogPath);
  // Up before the roles: a slow start (serving waits for the schema) is live, not yet ready.
  const observe = { metrics: createMetrics(), health: createHealth() };
  let starting = true;
  const stopStartingCheck = observe.health.addCheck("start", () => (starting ? `starting ${cfg.roles.join(", ")}` : null));
  const listener = await startObserveListener(cfg.metricsHost, cfg.metricsPort, observe.metrics, observe.health, log);
  const nc = await connectNats(cfg.natsUrl, `lambda-node ${cfg.nodeId} (${cfg.roles.join(",")})`, natsSecurityOf(cfg));
  const roles = await startRoles(cfg, nc, catalog, log, observe);
  starting = false;
  stopStartingCheck();
  log.info("node started", { roles: cfg.roles, grpc: roles.serving?.address, metrics: `${cfg.metricsHost}:${listener.port}` });
  // Tell a parent process (the local cluster, tests) that start-up is done.
  if (process.connected) process.send?.({ kind: "ready", grpc: roles.serving?.address ?? null, metricsPort: listener.port });
  const shutdown = onShutdownSignal(log, async () => {
    await roles.close();
    await nc.drain();
    await listener.close();
  });
  // A node the local cluster (or a test) started must not outlive it as an orphan.
  onParentGone(() => shutdown("the parent process is gone"));
}

main().catch((err) => {
  // A log line like every other (the config, hence the level, may be what failed).
  createProcessLogger({ base: { component: "lambda-node" } }).error("start failed", { err });
  process.exit(2);
});
