/**
 * Freshness: how long from publishing an event until a reader can see it.
 *
 * Product: `ingest.publish` of one event with a key of its own, then gRPC
 * Query calls on the serving node back to back until the answer counts it
 * (batch view of a published watermark + speed actors, as in operation).
 * Baseline: `js.publish` of the same encoded event → receipt by a plain
 * ordered JetStream consumer in this process. Both run under the same steady
 * background feed, so the system is busy, as it would be.
 */
import { jetstream, jetstreamManager, type ConsumerMessages } from "@nats-io/jetstream";
import { unpack } from "msgpackr";
import { namesFor, type Names } from "../../src/nats/names.js";
import { ensureStreams } from "../../src/nats/setup.js";
import { startBenchCluster, type BenchCluster } from "../cluster.js";
import type { BenchContext } from "../context.js";
import { startFeed, type Feed } from "../feed.js";
import { Better, row, type Figure, type FigureResult, type Goal } from "../figure.js";
import { query } from "../grpc_util.js";
import { publishPipelined } from "../raw_nats.js";
import { percentiles, type Percentiles } from "../stats.js";
import { makeEvents, METRIC, probeEvent, SOURCE, toStreamEvents } from "../workload.js";

/** A probe that has not become visible by then fails the figure. */
const PROBE_TIMEOUT_MS = 10_000;
/** Probes per path before measuring. */
const WARM_UP_PROBES = 20;
const HOUR_MS = 3_600_000;
/** Issue #15: p99 at most 15 ms, and at least 0.3x of the plain consumer's p99 (ratio = baseline / product). */
const FRESHNESS_P99_GOAL: Goal = {
  kind: "all_of",
  goals: [
    { kind: "product_at_most", value: 15 },
    { kind: "ratio_at_least", value: 0.3 },
  ],
};

/** One path from publish to a reader: the product's or a plain consumer's. */
export interface Prober {
  /** ms from publish to visible, for one new event. */
  probe(tag: string): Promise<number>;
  /** Starts the background feed for this path. */
  feed(rate: number, tag: string): Feed;
}

/** Publish with ingest, then gRPC Query until the answer counts the event. */
export function productProber(cluster: BenchCluster): Prober {
  const grpc = cluster.grpc!;
  return {
    async probe(tag) {
      const key = `fresh-${tag}`;
      const ts = Date.now();
      const t0 = performance.now();
      await cluster.ingest.publish(SOURCE, probeEvent(`f-${tag}`, key, ts));
      for (;;) {
        const res = await query(grpc, METRIC, [key], ts - HOUR_MS, ts + HOUR_MS);
        if ((res.answers[0]?.events ?? 0) >= 1) return performance.now() - t0;
        if (performance.now() - t0 > PROBE_TIMEOUT_MS) throw new Error(`event f-${tag} not visible through gRPC after ${PROBE_TIMEOUT_MS} ms`);
      }
    },
    feed: (rate, tag) =>
      startFeed(rate, async (offset, count) => {
        const res = await cluster.ingest.publishBatch(SOURCE, makeEvents(count, { idPrefix: `fbg${tag}x${offset}x`, seed: offset + 1 }));
        if (res.accepted !== count) throw new Error(`background feed: ${res.accepted} of ${count} accepted`);
      }),
  };
}

/** js.publish, then receipt by an ordered consumer in this process. */
export async function rawProber(ctx: BenchContext, cluster: BenchCluster, names: Names): Promise<Prober & { close(): Promise<void> }> {
  const js = jetstream(cluster.nc);
  const partitions = cluster.cfg.partitions;
  const waiting = new Map<string, (t: number) => void>();
  const consumer = await js.consumers.get(names.eventStream, { filter_subjects: names.eventSubjects });
  const messages: ConsumerMessages = await consumer.consume();
  const loop = (async () => {
    for await (const m of messages) {
      const t = performance.now();
      const r = unpack(m.data) as { id?: string };
      const w = r.id === undefined ? undefined : waiting.get(r.id);
      if (w) {
        waiting.delete(r.id!);
        w(t);
      }
    }
  })();
  return {
    async probe(tag) {
      const [e] = toStreamEvents(ctx.env.catalog, names, partitions, [probeEvent(`f-${tag}`, `fresh-${tag}`, Date.now())]);
      const received = new Promise<number>((resolve) => waiting.set(`f-${tag}`, resolve));
      const t0 = performance.now();
      const ack = js.publish(e!.subject, e!.data, { msgID: e!.msgId });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`event f-${tag} not received after ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS)));
      try {
        const t1 = await Promise.race([received, timeout]);
        await ack;
        return t1 - t0;
      } finally {
        clearTimeout(timer);
      }
    },
    feed: (rate, tag) =>
      startFeed(rate, (offset, count) =>
        publishPipelined(js, toStreamEvents(ctx.env.catalog, names, partitions, makeEvents(count, { idPrefix: `fbg${tag}x${offset}x`, seed: offset + 1 }))),
      ),
    async close() {
      await messages.close().catch(() => undefined); // best effort: ephemeral consumer
      await loop;
    },
  };
}

/**
 * Both probers over data below and above a published watermark (so a query
 * reads the batch view and the actors as in operation); the raw one on a
 * stream of its own named `rawNames`, created here.
 */
export async function startProbers(ctx: BenchContext, cluster: BenchCluster, rawNames: Names, seedTag: string): Promise<{ product: Prober; raw: Prober & { close(): Promise<void> } }> {
  await cluster.ingest.publishBatch(SOURCE, makeEvents(10_000, { idPrefix: seedTag, seed: 7, spreadMs: 30 * 60_000 }));
  await cluster.roles.coordinator!.runNow();
  await cluster.waitForSpeedCaughtUp();
  await ensureStreams(cluster.nc, rawNames, { duplicateWindowMs: cluster.cfg.duplicateWindowMs });
  return { product: productProber(cluster), raw: await rawProber(ctx, cluster, rawNames) };
}

/** Latencies of one repetition, and the background rate actually fed meanwhile (events/s). */
export type FreshnessPass = Percentiles & { readonly fedPerS: number };

/** `probes` sequential probes under a background feed of `rate` events/s. */
export async function measure(p: Prober, probes: number, rate: number, tag: string): Promise<FreshnessPass> {
  const feed = p.feed(rate, tag);
  const ms: number[] = [];
  const t0 = performance.now();
  try {
    for (let i = 0; i < probes; i++) ms.push(await p.probe(`${tag}-${i}`));
  } finally {
    await feed.stop();
  }
  return { ...percentiles(ms), fedPerS: feed.sentEvents() / ((performance.now() - t0) / 1000) };
}

/** The freshness figure (see the module header). */
export const freshnessFigure: Figure = {
  name: "freshness",
  summary: "ms from publish until a gRPC Query answer counts the event (p50/p99/max), vs publish → receipt by a plain consumer",
  async run(ctx): Promise<FigureResult> {
    const { freshnessProbes: probes, freshnessBackgroundRate: rate } = ctx.opts.sizes;
    const cluster = await startBenchCluster(ctx.env, { roles: ["archiver", "coordinator", "executor", "serving"], speedNodes: 2, prefix: ctx.env.prefix("fr") });
    const rawNames = namesFor(ctx.env.prefix("frraw"));
    let raw: (Prober & { close(): Promise<void> }) | undefined;
    try {
      const probers = await startProbers(ctx, cluster, rawNames, "fseed");
      raw = probers.raw;
      const product = probers.product;

      ctx.progress(`freshness: warm-up (${WARM_UP_PROBES} probes per path)`);
      await measure(product, WARM_UP_PROBES, rate, "pw");
      await measure(raw, WARM_UP_PROBES, rate, "rw");
      const results = { product: [] as FreshnessPass[], baseline: [] as FreshnessPass[] };
      for (let r = 0; r < ctx.opts.reps; r++) {
        ctx.progress(`freshness: repetition ${r + 1}/${ctx.opts.reps}, ${probes} probes per path, background ${rate} events/s`);
        results.product.push(await measure(product, probes, rate, `p${r}`));
        results.baseline.push(await measure(raw, probes, rate, `r${r}`));
      }
      const label = "publish → plain JetStream consumer";
      const mk = (k: keyof Percentiles, name: string, goal?: boolean) =>
        row({
          figure: "freshness",
          label: name,
          unit: "ms",
          better: Better.lower,
          product: results.product.map((x) => x[k]),
          baseline: { label, samples: results.baseline.map((x) => x[k]) },
          ...(goal ? { goal: FRESHNESS_P99_GOAL } : {}),
        });
      return {
        name: "freshness",
        rows: [mk("p50", "publish → visible, p50"), mk("p99", "publish → visible, p99", true), mk("max", "publish → visible, max")],
        details: { probesPerRepetition: probes, backgroundEventsPerS: rate, results },
        notes: [
          `freshness: ${probes} sequential probes per repetition under a background feed of ${rate} events/s; product = ingest.publish (awaits the ack) then gRPC Query back to back until the answer counts the event ` +
            `(the answer's own latency is part of the figure); baseline = js.publish → receipt by an ordered consumer in the publishing process.`,
        ],
      };
    } finally {
      await raw?.close();
      const jsm = await jetstreamManager(cluster.nc);
      for (const s of [rawNames.eventStream, rawNames.deadLetterStream]) await jsm.streams.delete(s).catch(() => undefined); // best effort
      await cluster.close();
    }
  },
};
