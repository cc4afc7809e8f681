/**
 * The coordinator in its process's metrics: whether it leads, its batch runs (count, duration
 * by outcome, time per phase from the watermark's timings), and the event stream's size and
 * head per partition, read from the stream when Prometheus scrapes.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Metrics } from "../core/metrics.js";
import type { Watermark } from "../core/watermark.js";
import type { Names } from "../nats/names.js";
import { partitionHeads } from "../nats/setup.js";
import { readStreamUsage } from "../nats/stream_retention.js";

/** Runs `run`, counting and timing it by outcome, and its phases when it published. */
export async function timedRun(metrics: Metrics | undefined, run: () => Promise<Watermark>): Promise<Watermark> {
  if (!metrics) return run();
  const startedAt = performance.now();
  try {
    const w = await run();
    const seconds = (performance.now() - startedAt) / 1000;
    metrics.batchRuns.inc({ outcome: "published" });
    metrics.batchRunSeconds.observe({ outcome: "published" }, seconds);
    const { barrierMs, archiverFlushMs, recomputeMs } = w.timings;
    metrics.batchRunPhaseSeconds.observe({ phase: "barrier" }, barrierMs / 1000);
    metrics.batchRunPhaseSeconds.observe({ phase: "archiver_flush" }, archiverFlushMs / 1000);
    metrics.batchRunPhaseSeconds.observe({ phase: "recompute" }, recomputeMs / 1000);
    // What the three phases leave of the whole run: checks and the publish.
    metrics.batchRunPhaseSeconds.observe({ phase: "publish" }, Math.max(0, seconds - (barrierMs + archiverFlushMs + recomputeMs) / 1000));
    return w;
  } catch (err) {
    metrics.batchRuns.inc({ outcome: "failed" });
    metrics.batchRunSeconds.observe({ outcome: "failed" }, (performance.now() - startedAt) / 1000);
    throw err;
  }
}

/** Sets the leader gauge and the stream's gauges at every scrape. @returns a function that stops it */
export function coordinatorGauges(metrics: Metrics, c: { leading(): boolean; nc: NatsConnection; names: Names; partitions: number }): () => void {
  return metrics.onScrape(async () => {
    metrics.coordinatorLeader.set(c.leading() ? 1 : 0);
    const [size, heads] = await Promise.all([readStreamUsage(c.nc, c.names), partitionHeads(c.nc, c.names, c.partitions)]);
    metrics.streamMessages.set(size.messages);
    metrics.streamBytes.set(size.bytes);
    heads.forEach((seq, p) => metrics.streamLastSequence.set({ partition: String(p) }, seq));
  });
}
