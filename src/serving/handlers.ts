/**
 * The gRPC handlers: proto requests → queries (query.ts) → proto responses.
 * Every failure goes through toServiceError, the one place errors become
 * gRPC statuses.
 */
import { inSpan } from "../core/tracing.js";
import type { sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import type { Catalog, SourceDef } from "../core/catalog.js";
import { standingOf, standings, type MetricStanding } from "../core/definitions.js";
import { InvalidQueryError } from "../core/errors.js";
import { filterToJson } from "../core/filter.js";
import type { Logger } from "../core/logger.js";
import type { Watermark } from "../core/watermark.js";
import type { KeyAnswer, LambdaServiceServer, MetricInfo, MissingSpeedPart, QueryResponse, Watermark as WatermarkMsg } from "../gen/lambda/v1/serving.js";
import type { KeyResult } from "./merge.js";
import { answerQuery, answerTopK, checkSizes, type QueryDeps, type QueryResult } from "./query.js";
import { refusalOf } from "./request_guard.js";
import { toServiceError } from "./status_codes.js";

export function watermarkToProto(w: Watermark): WatermarkMsg {
  return {
    run: w.run,
    cuts: w.cuts.map((seq, partition) => ({ partition, seq })),
    viewVersion: w.viewVersion,
    coveredFrom: w.coveredFromMs === null ? undefined : new Date(w.coveredFromMs),
    coveredTo: w.coveredToMs === null ? undefined : new Date(w.coveredToMs),
    eventsCovered: w.eventsCovered,
    publishedAt: new Date(w.publishedAtMs),
    coordinator: w.coordinator,
    timings: { barrierMs: w.timings.barrierMs, archiverFlushMs: w.timings.archiverFlushMs, recomputeMs: w.timings.recomputeMs },
  };
}

function timeField(d: Date | undefined, field: string): number {
  if (d === undefined) throw new InvalidQueryError(field, "is required (google.protobuf.Timestamp)");
  const ms = d.getTime();
  if (!Number.isFinite(ms)) throw new InvalidQueryError(field, "is not a valid timestamp");
  return ms;
}

const opt = (v: number | null) => (v === null ? undefined : v);

function keyAnswer(r: KeyResult): KeyAnswer {
  return {
    key: r.key,
    group: { ...r.group },
    total: opt(r.total),
    batchPart: opt(r.batchPart),
    speedPart: opt(r.speedPart),
    events: r.events,
    series: r.series.map((w) => ({ windowStart: new Date(w.windowStartMs), value: opt(w.value), batchPart: opt(w.batchPart), speedPart: opt(w.speedPart), events: w.events })),
  };
}

function provenance(r: QueryResult) {
  return r.partitions.map((p) => ({ partition: p.partition, cutSeq: p.cutSeq, appliedSeq: p.appliedSeq, speedEventsHeld: p.heldEvents, generation: p.generation }));
}

/** Whether the answer is whole, and what it lacks when not. */
function completeness(r: QueryResult): { complete: boolean; missing: MissingSpeedPart[] } {
  return {
    complete: r.missing.length === 0,
    missing: r.missing.map((m) => ({ partition: m.partition, reason: m.reason, countedThroughSeq: m.countedThroughSeq, eventsNotCounted: m.eventsNotCounted ?? undefined, node: m.node, detail: m.detail })),
  };
}

/** A metric as clients see it: the definition in force (or the pending one) and both fingerprints. */
export function metricInfo(s: MetricStanding): MetricInfo {
  const m = (s.inForce ?? s.next)!.metric;
  return {
    name: m.name,
    source: m.source,
    groupBy: [...m.groupBy],
    window: m.window,
    aggregates: m.aggregates.map((a) => ({ name: a.name, kind: a.kind, field: a.field ?? "" })),
    filterJson: m.filter ? JSON.stringify(filterToJson(m.filter)) : "",
    description: m.description,
    definition: s.inForce?.fingerprint ?? "",
    nextDefinition: s.next?.fingerprint ?? "",
  };
}

const sourceFields = (s: SourceDef) => Object.fromEntries(Object.entries(s.fields).map(([n, f]) => [n, `${f.type}${f.optional ? "?" : ""}`]));

/** Runs `work` and answers the call with its result or its error as a gRPC status. */
export function respond<Req, Res>(log: Logger, call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>, work: (req: Req) => Promise<Res> | Res) {
  Promise.resolve()
    .then(() => {
      // Refused on its bytes (request_guard.ts): the decoded request is a placeholder.
      const refusal = refusalOf(call.request);
      if (refusal) throw refusal;
      return work(call.request);
    })
    .then(
      (res) => callback(null, res),
      (err) => callback(toServiceError(err, log)),
    );
}

export interface HandlerDeps extends QueryDeps {
  readonly catalog: Catalog;
  readonly log: Logger;
}

export function lambdaService(deps: HandlerDeps): LambdaServiceServer {
  const { log } = deps;
  return {
    query: (call, cb) =>
      respond(log, call, cb, async (req): Promise<QueryResponse> => {
        const fromMs = timeField(req.from, "from");
        const toMs = timeField(req.to, "to");
        const r = await inSpan("lambda.Query", { "lambda.metric": req.metric }, () => answerQuery(deps, {
          metric: req.metric,
          key: req.key,
          keys: req.keys,
          group: req.group,
          aggregate: req.aggregate,
          quantile: req.quantile,
          series: req.series,
          fromMs,
          toMs,
          strict: req.strict,
        }));
        return {
          metric: r.metric,
          aggregate: r.aggregate,
          from: new Date(fromMs),
          to: new Date(toMs),
          watermarkRun: r.run,
          answers: r.answers.map(keyAnswer),
          partitions: provenance(r),
          speedEventsHeld: r.speedEventsHeld,
          definition: r.definition,
          ...completeness(r),
        };
      }),
    topK: (call, cb) =>
      respond(log, call, cb, async (req) => {
        const r = await inSpan("lambda.TopK", { "lambda.metric": req.metric }, () => answerTopK(deps, {
          metric: req.metric,
          k: req.k,
          aggregate: req.aggregate,
          quantile: req.quantile,
          where: req.where,
          fromMs: timeField(req.from, "from"),
          toMs: timeField(req.to, "to"),
          strict: req.strict,
        }));
        return {
          metric: r.metric,
          aggregate: r.aggregate,
          watermarkRun: r.run,
          entries: r.answers.map(keyAnswer),
          partitions: provenance(r),
          speedEventsHeld: r.speedEventsHeld,
          definition: r.definition,
          ...completeness(r),
        };
      }),
    getWatermark: (call, cb) =>
      respond(log, call, cb, async () => {
        const w = await deps.watermarks.refresh();
        return { present: w !== null, watermark: w ? watermarkToProto(w) : undefined };
      }),
    listMetrics: (call, cb) => respond(log, call, cb, () => ({ metrics: standings(deps.catalog, deps.watermarks.current()).map(metricInfo) })),
    describeMetric: (call, cb) =>
      respond(log, call, cb, (req) => {
        checkSizes("metric", [req.metric]);
        const w = deps.watermarks.current();
        const s = req.metric ? standingOf(deps.catalog, w, req.metric) : null;
        if (!s) throw new InvalidQueryError("metric", `unknown metric ${JSON.stringify(req.metric)}; defined: ${standings(deps.catalog, w).map((x) => x.name).join(", ")}`);
        const source = deps.catalog.sources.get((s.inForce ?? s.next)!.metric.source);
        return { metric: metricInfo(s), sourceFields: source ? sourceFields(source) : {} };
      }),
  };
}
