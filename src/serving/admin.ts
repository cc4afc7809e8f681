/**
 * The operator API (lambda.v1.AdminService): run history, diff, verify,
 * rollback, status, run-now with progress, and a watermark watch. Rollback and
 * run-now are the coordinator's to do; this service asks it over NATS.
 */
import type { ServerWritableStream } from "@grpc/grpc-js";
import type { NatsConnection } from "@nats-io/transport-node";
import type { ClickHouseClient } from "@clickhouse/client";
import type { Catalog } from "../core/catalog.js";
import { InvalidQueryError, PreconditionError, UnavailableError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { RunRecord } from "../core/records.js";
import type { SpeedClient } from "../actors/index.js";
import type { AdminServiceServer, RunBatchRequest, RunBatchResponse, RunInfo, WatchWatermarkRequest, WatchWatermarkResponse } from "../gen/lambda/v1/admin.js";
import { NoLeaderError, requestRollback, requestRun, type RollbackReply } from "../nats/coordinator_control.js";
import type { Names } from "../nats/names.js";
import { listRuns } from "../nats/run_history.js";
import type { Buckets } from "../nats/setup.js";
import { watchWatermark, type WatermarkFollower } from "../nats/watermark_store.js";
import { respond, watermarkToProto } from "./handlers.js";
import { DEFAULT_RUN_LIMIT, diffRuns } from "./runs.js";
import { clusterStatus } from "./status.js";
import { refusalOf } from "./request_guard.js";
import { toServiceError } from "./status_codes.js";
import { verifySeam } from "./verify.js";

/** How long a rollback may take the coordinator (it waits for a run in progress). */
const ROLLBACK_TIMEOUT_MS = 120_000;
/** How long the coordinator has to acknowledge a run request. */
const RUN_ACK_TIMEOUT_MS = 10_000;
/** Pause before asking again while no coordinator leads (a standby taking over). */
const NO_LEADER_RETRY_MS = 250;

export interface AdminDeps {
  readonly nc: NatsConnection;
  readonly ch: ClickHouseClient;
  readonly catalog: Catalog;
  readonly names: Names;
  readonly buckets: Buckets;
  readonly speed: SpeedClient;
  readonly partitions: number;
  readonly database: string;
  readonly viewVersionsKept: number;
  /** Heartbeats older than this show as gone in status (LAMBDA_NODE_TIMEOUT_MS). */
  readonly nodeTimeoutMs: number;
  /** The watermark this node answers at, and the newest one it refused (nats/watermark_store.ts followWatermark). */
  readonly watermarks: Pick<WatermarkFollower, "current" | "refresh" | "refusal">;
  readonly log: Logger;
}

const at = (ms: number | null | undefined) => (ms === null || ms === undefined ? undefined : new Date(ms));

function runInfo(r: RunRecord): RunInfo {
  const w = r.watermark;
  return {
    run: r.run,
    outcome: r.outcome,
    cuts: r.cuts.map((seq, partition) => ({ partition, seq })),
    viewVersion: w?.viewVersion ?? 0,
    eventsCovered: w?.eventsCovered ?? 0,
    coveredFrom: at(w?.coveredFromMs),
    coveredTo: at(w?.coveredToMs),
    startedAt: at(r.startedAtMs),
    finishedAt: at(r.finishedAtMs),
    barrierMs: w?.timings.barrierMs ?? 0,
    archiverFlushMs: w?.timings.archiverFlushMs ?? 0,
    recomputeMs: w?.timings.recomputeMs ?? 0,
    publishMs: r.publishMs ?? 0,
    coordinator: r.coordinator,
    detail: r.detail ?? "",
  };
}

/** Ends a streaming call whose request was refused on its bytes (request_guard.ts) with that error; true if it was. */
function refused(call: ServerWritableStream<unknown, unknown>, log: Logger): boolean {
  const refusal = refusalOf(call.request);
  if (refusal) call.emit("error", toServiceError(refusal, log));
  return refusal !== undefined;
}

/** Streams a batch run's progress from the coordinator to the client; a cancelled call only stops listening. */
function runBatch(deps: AdminDeps, call: ServerWritableStream<RunBatchRequest, RunBatchResponse>) {
  let acknowledged = false;
  let done = false;
  let request: { stop(): void } | undefined;
  let retry: NodeJS.Timeout | undefined;
  const end = () => {
    done = true;
    clearTimeout(timer);
    clearTimeout(retry);
    request?.stop();
  };
  const fail = (err: unknown) => {
    end();
    call.emit("error", toServiceError(err, deps.log));
  };
  const timer = setTimeout(() => {
    if (!acknowledged) fail(new UnavailableError(`no coordinator answered within ${RUN_ACK_TIMEOUT_MS} ms; is one running?`));
  }, RUN_ACK_TIMEOUT_MS);
  const ask = () => {
    request = requestRun(deps.nc, deps.names, (r) => {
      if (done) return;
      if (r instanceof NoLeaderError && !acknowledged) {
        // A standby may be taking over: ask again until the acknowledgement deadline.
        request?.stop();
        retry = setTimeout(ask, NO_LEADER_RETRY_MS);
        return;
      }
      if (r instanceof Error) return fail(r);
      acknowledged = true;
      if (r.kind === "progress") {
        call.write({ run: r.run, phase: r.phase, detail: r.detail, watermark: undefined });
        return;
      }
      end();
      if (r.kind === "published") call.write({ run: r.watermark.run, phase: "done", detail: "", watermark: watermarkToProto(r.watermark) });
      else call.write({ run: 0, phase: "failed", detail: r.error, watermark: undefined });
      call.end();
    });
  };
  ask();
  // A client that detaches (Ctrl-C) stops listening; the run goes on in the coordinator.
  call.on("cancelled", end);
}

/** Writes the watermark now and at every change, until the client goes away. */
async function streamWatermark(deps: AdminDeps, call: ServerWritableStream<WatchWatermarkRequest, WatchWatermarkResponse>) {
  const watch = await watchWatermark(deps.buckets.watermark, deps.log, (w) => call.write(w ? { present: true, watermark: watermarkToProto(w) } : { present: false, watermark: undefined }));
  call.on("cancelled", () => watch.stop());
  const end = await watch.ended;
  if (end.kind === "failed") throw end.error;
}

export function adminService(deps: AdminDeps): AdminServiceServer {
  const { log, buckets } = deps;
  return {
    listRuns: (call, cb) => respond(log, call, cb, async (req) => ({ runs: (await listRuns(buckets, req.limit || DEFAULT_RUN_LIMIT)).map(runInfo) })),
    diffRuns: (call, cb) =>
      respond(log, call, cb, async (req) => {
        const d = await diffRuns(
          { ch: deps.ch, database: deps.database, catalog: deps.catalog, buckets, viewVersionsKept: deps.viewVersionsKept },
          req.fromRun,
          req.toRun,
        );
        return { fromRun: req.fromRun, toRun: req.toRun, partitions: [...d.partitions], metrics: [...d.metrics] };
      }),
    verify: (call, cb) =>
      respond(log, call, cb, async (req) => {
        // The watermark this node answers at: one no batch run published is never verified against.
        const current = await deps.watermarks.refresh();
        if (!current) throw new PreconditionError("no watermark has been published yet: nothing to verify");
        const run = req.run || current.run;
        if (run !== current.run) {
          throw new InvalidQueryError("run", `speed actors hold only what lies above the current watermark (run ${current.run}); verify run ${current.run}, or roll back to ${run} first`);
        }
        const r = await verifySeam(
          { ch: deps.ch, database: deps.database, catalog: deps.catalog, partitions: deps.partitions, speed: deps.speed },
          current,
        );
        return { ...r, partitions: [...r.partitions] };
      }),
    rollback: (call, cb) =>
      respond(log, call, cb, async (req) => {
        let reply: RollbackReply;
        try {
          reply = await requestRollback(deps.nc, deps.names, req.run, ROLLBACK_TIMEOUT_MS);
        } catch (err) {
          throw new UnavailableError("no coordinator answered the rollback; is one running?", { cause: err });
        }
        if (reply.kind === "refused") throw new PreconditionError(reply.reason);
        if (reply.kind === "failed") throw new Error(reply.error);
        return { watermark: watermarkToProto(reply.watermark), rolledBackFrom: reply.from };
      }),
    getStatus: (call, cb) =>
      respond(log, call, cb, async () => {
        const s = await clusterStatus(deps.nc, deps.names, buckets, deps.speed, deps.partitions, deps.nodeTimeoutMs, log);
        // The run this node answers at, not whatever the key holds: a forged value is reported as refused.
        const w = deps.watermarks.current();
        const refusal = deps.watermarks.refusal();
        const leader = s.leader && { id: s.leader.id, epoch: s.leader.epoch, leaseAgeS: s.leader.leaseAgeMs / 1000, leaseS: s.leader.leaseMs / 1000 };
        return {
          members: [...s.members],
          partitions: [...s.partitions],
          nextRunAt: at(s.nextRunAtMs),
          watermarkRun: w?.run ?? 0,
          leader: leader ?? undefined,
          watermarkRefused: refusal ? { run: refusal.run, reason: refusal.reason, at: new Date(refusal.atMs) } : undefined,
        };
      }),
    runBatch: (call) => {
      if (!refused(call, log)) runBatch(deps, call);
    },
    watchWatermark: (call) => {
      if (refused(call, log)) return;
      streamWatermark(deps, call).then(
        () => call.end(),
        (err) => call.emit("error", toServiceError(err, log)),
      );
    },
  };
}
