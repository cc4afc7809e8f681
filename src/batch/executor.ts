/**
 * The batch executor: runs the recompute SQL of a batch run where ClickHouse is
 * reachable, for the leading coordinator, which asks over NATS
 * (nats/executor_control.ts). In the embedded default it lives in the process
 * that owns chDB, so coordinators are light processes that fail over freely.
 * A request whose leader epoch is not the current leader's is refused: a
 * deposed coordinator computes nothing. Requests run one at a time.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { ClickHouseClient } from "@clickhouse/client";
import type { KV } from "@nats-io/kv";
import { catalogFingerprint } from "../core/catalog.js";
import { closeable, type Closeable } from "../core/lifecycle.js";
import type { Logger } from "../core/logger.js";
import { SINGLE_LAYOUT, type ChLayout } from "../ch/layout.js";
import { ensureSchema } from "../ch/schema.js";
import type { CatalogFeed } from "../nats/catalog_store.js";
import { startHeartbeat } from "../nats/members.js";
import { serveExecutorRequests, type ExecutorRequest, type RecomputeDone } from "../nats/executor_control.js";
import { readLeader } from "../nats/leadership.js";
import type { Names } from "../nats/names.js";
import { dropViewsBefore, recomputeViews } from "./recompute.js";

export interface BatchExecutorDeps {
  readonly nc: NatsConnection;
  readonly ch: ClickHouseClient;
  readonly catalogFeed: CatalogFeed;
  readonly names: Names;
  /** The coordinator bucket (its `leader` key says which epoch leads). */
  readonly coordinatorKv: KV;
  /** Where it heartbeats as `executor.<nodeId>`, so operators see it in `lambdactl status`. */
  readonly membersKv: KV;
  readonly log: Logger;
}

/** Options of {@link startBatchExecutor}. */
export interface BatchExecutorOptions {
  readonly database: string;
  readonly nodeId: string;
  /** Heartbeat period, in ms. */
  readonly heartbeatIntervalMs: number;
  /** Where the tables live: one server (or chDB), or a cluster (ch/layout.ts). @default one server */
  readonly layout?: ChLayout;
}

export async function startBatchExecutor(deps: BatchExecutorDeps, opts: BatchExecutorOptions): Promise<Closeable> {
  const layout = opts.layout ?? SINGLE_LAYOUT;
  const log = deps.log.child({ component: "batch-executor" });
  let queue: Promise<unknown> = Promise.resolve();
  /** What it works on now, for its heartbeat's state: "run 7", "dropping views", or "" when idle. */
  let working = "";
  /**
   * The fingerprint of the catalog whose schema this executor last ensured, or "". Ensuring it
   * takes ~25 statements (6 of them reads of system.columns), 40–260 ms of every run on a busy
   * chDB, for tables that are there since the previous run. A failed run forgets it, so the run
   * after a table went missing creates it again.
   */
  let schemaOf = "";

  /** Why `req` may not run (a stale epoch), or null. */
  const staleEpoch = async (req: ExecutorRequest): Promise<string | null> => {
    const leader = (await readLeader(deps.coordinatorKv))?.value;
    if (leader && leader.holder !== "" && leader.epoch === req.epoch) return null;
    return `request of leader epoch ${req.epoch}, but ${leader ? (leader.holder ? `coordinator ${leader.holder} leads with epoch ${leader.epoch}` : `the leader of epoch ${leader.epoch} released the lead`) : "no coordinator leads"}`;
  };

  const run = async (req: ExecutorRequest, progress: (step: string, done: number, total: number) => void): Promise<RecomputeDone | { refused: string }> => {
    const stale = await staleEpoch(req);
    if (stale) {
      log.warn("refused a batch request from a coordinator that no longer leads", { request: req.kind, reason: stale });
      return { refused: stale };
    }
    let catalog = deps.catalogFeed.current();
    if (req.kind === "drop_views") {
      await dropViewsBefore(deps.ch, catalog, opts.database, req.keepFrom, layout);
      return { eventsCovered: 0, coveredFromMs: null, coveredToMs: null };
    }
    // The coordinator may have adopted a catalog version this process has not seen yet.
    if (catalogFingerprint(catalog) !== req.catalogFingerprint) catalog = await deps.catalogFeed.refresh();
    if (catalogFingerprint(catalog) !== req.catalogFingerprint) {
      return { refused: `the coordinator computes with catalog ${req.catalogFingerprint}, this executor has ${catalogFingerprint(catalog)} (version ${deps.catalogFeed.version()})` };
    }
    if (schemaOf !== req.catalogFingerprint) {
      await ensureSchema(deps.ch, opts.database, catalog, layout);
      schemaOf = req.catalogFingerprint;
    }
    const t0 = performance.now();
    working = `run ${req.run}`;
    const r = await recomputeViews(deps.ch, catalog, opts.database, { run: req.run, cuts: req.cuts, onStep: progress }, layout)
      .catch((err: unknown) => {
        schemaOf = "";
        throw err;
      })
      .finally(() => (working = ""));
    log.info("batch views recomputed", { run: req.run, epoch: req.epoch, eventsCovered: r.eventsCovered, ms: Math.round(performance.now() - t0) });
    return { eventsCovered: r.eventsCovered, coveredFromMs: r.coveredFromMs, coveredToMs: r.coveredToMs };
  };

  const sub = serveExecutorRequests(deps.nc, deps.names, log, (req, progress) => {
    const r = queue.then(() => run(req, progress));
    queue = r.catch(() => undefined);
    return r;
  });
  const heartbeat = await startHeartbeat(deps.membersKv, "executor", opts.nodeId, opts.heartbeatIntervalMs, log, () => ({ state: working }));
  log.info("batch executor running");
  return closeable(async () => {
    sub.unsubscribe();
    await queue;
    await heartbeat.stop();
    log.info("batch executor closed");
  });
}
