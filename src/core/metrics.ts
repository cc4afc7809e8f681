/**
 * The Prometheus metrics of one process: every instrument the roles update, in one registry
 * that the process's metrics listener (main/observe_http.ts) serves. Roles take it as an
 * optional dependency (tests that do not look at metrics pass none).
 *
 * Names follow Prometheus conventions: a `lambda_` namespace, units in the name (`_seconds`,
 * `_records`, `_bytes`), `_total` on counters, and bounded label sets only: partition (the
 * partition count), source (the catalog's sources), method, code, phase, outcome. Never a key,
 * an event id or a run number as a label.
 *
 * Gauges that mirror a role's own state (a speed actor's applied sequence, the archiver's heads)
 * are read when Prometheus scrapes, through collectors the roles register, from the same
 * functions `lambdactl status` reads: the two cannot disagree by construction.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Health } from "./health.js";
import type { Watermark } from "./watermark.js";

/** What a role reports to: its process's metrics and readiness (absent in tests that look at neither). */
export interface Observability {
  readonly metrics: Metrics;
  readonly health: Health;
}

/** Latency buckets for gRPC calls, in seconds: 0.5 ms .. 10 s. */
const CALL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Buckets for batch runs and their phases, in seconds: 10 ms .. 30 min. */
const RUN_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

export interface Metrics {
  readonly registry: Registry;
  readonly ingestEvents: Counter<"source" | "outcome">;
  readonly streamLastSequence: Gauge<"partition">;
  readonly streamMessages: Gauge;
  readonly streamBytes: Gauge;
  readonly speedAppliedSequence: Gauge<"partition">;
  readonly speedConfirmedSequence: Gauge<"partition">;
  readonly speedHeldEvents: Gauge<"partition">;
  readonly speedSegments: Gauge<"partition">;
  readonly speedActors: Gauge<"phase">;
  readonly speedChangeRunningSeconds: Gauge;
  readonly archiverFlushedSequence: Gauge<"partition">;
  readonly archiverRows: Gauge<"outcome">;
  readonly watermarkRun: Gauge;
  readonly watermarkPublishedSeconds: Gauge;
  readonly watermarkAgeSeconds: Gauge;
  readonly coordinatorLeader: Gauge;
  readonly batchRuns: Counter<"outcome">;
  readonly batchRunSeconds: Histogram<"outcome">;
  readonly batchRunPhaseSeconds: Histogram<"phase">;
  readonly grpcHandlingSeconds: Histogram<"method" | "code">;
  readonly batchCacheRequests: Counter<"result">;
  readonly batchKeyFilterReads: Counter<"result">;
  readonly batchKeySets: Gauge;
  readonly batchKeysHeld: Gauge;
  readonly natsReconnects: Counter;
  readonly natsConnected: Gauge;
  readonly clickhouseErrors: Counter<"operation">;
  /** Runs `collect` before every scrape, to set gauges from a role's state. @returns a function that removes it */
  onScrape(collect: () => void | Promise<void>): () => void;
  /** The Prometheus text exposition, after running every collector. */
  scrape(): Promise<string>;
}

/** A fresh registry with Node's default process metrics (event-loop lag, heap, GC, CPU). */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const collectors = new Set<() => void | Promise<void>>();
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) => new Gauge<L>({ name, help, labelNames, registers });
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) => new Counter<L>({ name, help, labelNames, registers });
  const m: Metrics = {
    registry,
    ingestEvents: counter("lambda_ingest_events_total", "Events this process's ingest library offered, by source and outcome (accepted, duplicate: the stream held the id already, refused).", ["source", "outcome"]),
    streamLastSequence: gauge("lambda_stream_last_sequence", "The event stream's last sequence on each partition subject (its head).", ["partition"]),
    streamMessages: gauge("lambda_stream_messages", "Messages the event stream holds."),
    streamBytes: gauge("lambda_stream_bytes", "Bytes the event stream holds."),
    speedAppliedSequence: gauge("lambda_speed_applied_sequence", "The last stream sequence each speed actor here has applied.", ["partition"]),
    speedConfirmedSequence: gauge("lambda_speed_confirmed_sequence", "Up to this stream sequence the stream's leader confirmed the history each speed actor counts.", ["partition"]),
    speedHeldEvents: gauge("lambda_speed_held_events", "Events each speed actor here holds in memory (above the watermark's cut, and a newer run's).", ["partition"]),
    speedSegments: gauge("lambda_speed_segments", "Segments each speed actor here holds.", ["partition"]),
    speedActors: gauge("lambda_speed_actors", "Speed actors running here, by phase (replaying, live, stalled).", ["phase"]),
    speedChangeRunningSeconds: gauge("lambda_speed_node_change_running_seconds", "How long the assignment change this speed node runs now (an actor's start, stop or rebuild) has run; 0 when none runs. Changes run one at a time: one past 30 s holds up the rest (readiness check 'speed node changes')."),
    archiverFlushedSequence: gauge("lambda_archiver_flushed_sequence", "Up to this stream sequence each partition's events are in the master dataset (the lowest head over its tables).", ["partition"]),
    archiverRows: gauge("lambda_archiver_rows", "Rows this archiver handled since it started, by outcome (archived, skipped: already archived, invalid, refused).", ["outcome"]),
    watermarkRun: gauge("lambda_watermark_run", "The batch run of the watermark this process follows (0 before the first)."),
    watermarkPublishedSeconds: gauge("lambda_watermark_published_timestamp_seconds", "When the watermark this process follows was published, in Unix seconds."),
    watermarkAgeSeconds: gauge("lambda_watermark_age_seconds", "Seconds since the watermark this process follows was published."),
    coordinatorLeader: gauge("lambda_coordinator_leader", "1 while this coordinator leads, 0 while it stands by."),
    batchRuns: counter("lambda_batch_runs_total", "Batch runs this coordinator led to an end, by outcome (published, failed).", ["outcome"]),
    batchRunSeconds: new Histogram({ name: "lambda_batch_run_duration_seconds", help: "Batch run duration, by outcome.", labelNames: ["outcome"], buckets: RUN_BUCKETS, registers }),
    batchRunPhaseSeconds: new Histogram({ name: "lambda_batch_run_phase_duration_seconds", help: "Time batch runs spent in each phase (barrier, archiver_flush, recompute, publish).", labelNames: ["phase"], buckets: RUN_BUCKETS, registers }),
    grpcHandlingSeconds: new Histogram({ name: "lambda_grpc_server_handling_seconds", help: "gRPC calls served, by method and status code.", labelNames: ["method", "code"], buckets: CALL_BUCKETS, registers }),
    batchCacheRequests: counter("lambda_serving_batch_cache_requests_total", "Batch view reads by serving, by result (hit: answered from the cache, miss).", ["result"]),
    batchKeyFilterReads: counter("lambda_serving_batch_key_filter_reads_total", "Batch view reads that serving's key sets spared, by result (skipped: no key asked is in the view version, answered without a read; narrowed: read for the keys it holds only).", ["result"]),
    batchKeySets: gauge("lambda_serving_batch_key_sets", "Key sets of batch view versions serving holds (two newest runs per metric)."),
    batchKeysHeld: gauge("lambda_serving_batch_keys", "Keys in the key sets serving holds."),
    natsReconnects: counter("lambda_nats_reconnects_total", "Times this process's NATS connection reconnected."),
    natsConnected: gauge("lambda_nats_connected", "1 while this process's NATS connection is up."),
    clickhouseErrors: counter("lambda_clickhouse_errors_total", "ClickHouse calls that failed, by operation (query, command, insert).", ["operation"]),
    onScrape(collect) {
      collectors.add(collect);
      return () => void collectors.delete(collect);
    },
    async scrape() {
      for (const c of collectors) await c();
      return registry.metrics();
    },
  };
  // Series an alert or a rate looks for exist at 0 from the start (a first failure is then an increase).
  for (const outcome of ["published", "failed"]) m.batchRuns.inc({ outcome }, 0);
  for (const result of ["hit", "miss"]) m.batchCacheRequests.inc({ result }, 0);
  for (const operation of OPERATIONS) m.clickhouseErrors.inc({ operation }, 0);
  return m;
}

/** The ClickHouse client calls counted in lambda_clickhouse_errors_total (ch/observe.ts). */
export const OPERATIONS = ["query", "command", "exec", "insert"] as const;

/**
 * Sets a counter that mirrors a running total kept elsewhere (a role's stats): Prometheus
 * counters only go up, so the difference since the last call is added.
 */
export function counterFollower<L extends string>(counter: Counter<L>): (labels: Partial<Record<L, string>>, total: number) => void {
  const seen = new Map<string, number>();
  return (labels, total) => {
    const key = JSON.stringify(labels);
    const delta = total - (seen.get(key) ?? 0);
    seen.set(key, total);
    if (delta > 0) counter.inc(labels, delta);
  };
}

/** Sets the watermark gauges from `current` at every scrape (a role that follows the watermark). */
export function watermarkGauges(metrics: Metrics, current: () => Watermark | null): () => void {
  return metrics.onScrape(() => {
    const w = current();
    metrics.watermarkRun.set(w?.run ?? 0);
    if (w) {
      metrics.watermarkPublishedSeconds.set(w.publishedAtMs / 1000);
      metrics.watermarkAgeSeconds.set(Math.max(0, (Date.now() - w.publishedAtMs) / 1000));
    }
  });
}
