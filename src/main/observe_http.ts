/**
 * The metrics and health listener of a lambda-node process: GET /metrics (Prometheus text),
 * /livez (the process loop answers and no liveness check fails; 503 with one line per failing
 * check otherwise) and /readyz (every readiness check passes; 503 with one line per failing
 * check otherwise). Plain node:http: three fixed paths need no framework.
 * It starts before the roles, so a slow start (serving waiting for the schema) is live but
 * not ready, as Kubernetes probes expect.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { CheckOutcome, Health } from "../core/health.js";
import type { Logger } from "../core/logger.js";
import type { Metrics } from "../core/metrics.js";

export interface ObserveListener {
  /** The port it listens on (the real one when 0 was asked). */
  readonly port: number;
  close(): Promise<void>;
}

/** One line per check, as /livez and /readyz write them: `ok  name` or `FAIL name: why`. */
const checkLines = (checks: readonly CheckOutcome[]) => checks.map((c) => `${c.ok ? "ok  " : "FAIL"} ${c.name}${c.ok ? "" : `: ${c.detail}`}`).join("\n") + "\n";

export async function startObserveListener(host: string, port: number, metrics: Metrics, health: Health, log: Logger): Promise<ObserveListener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const send = (status: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "only GET\n");
    if (path === "/livez") {
      const failing = health.liveness();
      return failing.length === 0 ? send(200, "ok\n") : send(503, checkLines(failing));
    }
    if (path === "/readyz") {
      health.readiness().then(
        (r) => send(r.ready ? 200 : 503, checkLines(r.checks)),
        (err) => send(503, `readiness failed: ${String(err)}\n`),
      );
      return;
    }
    if (path === "/metrics") {
      metrics.scrape().then(
        (text) => send(200, text, metrics.registry.contentType),
        (err) => {
          log.error("metrics scrape failed", { err });
          send(500, `scrape failed: ${String(err)}\n`);
        },
      );
      return;
    }
    send(404, "not found: /metrics, /livez, /readyz\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  if (host !== "127.0.0.1" && host !== "localhost" && host !== "::1") log.info("metrics and health listen beyond loopback (no authentication: keep the port inside the cluster network)", { host, port: actual });
  log.debug("metrics and health listening", { address: `${host}:${actual}`, paths: ["/metrics", "/livez", "/readyz"] });
  return {
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
