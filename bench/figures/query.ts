/**
 * Query latency and throughput on a serving node.
 *
 * Product: gRPC Query on the serving node (in this process, with the archiver
 * and coordinator, as `npm start` runs it) over data below and above a
 * published watermark: each answer reads batch view N in chDB and asks the
 * speed actor of the key's partition; "100 keys" is one Query call with 100
 * keys (the API's `keys` field). Baseline: the same service
 * definition served by a handler that answers at once, in the same process.
 * The load generator is a separate process for both.
 */
import { forkBenchChild } from "../children/ipc.js";
import type { LoadResult, QueryTarget } from "../children/query_load.js";
import { startBenchCluster } from "../cluster.js";
import { Better, row, type Figure, type FigureResult, type Row } from "../figure.js";
import type { Percentiles } from "../stats.js";
import { startTrivialServer } from "../trivial_grpc.js";
import { ARTICLES, makeEvents, METRIC, SOURCE } from "../workload.js";

const MINUTE_MS = 60_000;
/** Keys per "many keys" Query call. */
const FANOUT = 100;
/** The goals (#15), as ratios to the trivial round trip measured in the same run. */
const GOALS = { oneKeyP99: 0.8, rangeEndingNowP50: 0.7, manyKeysP50: 0.5 } as const;

/** batchReads: calls of the measurement that read chDB (the serving node's batch cache misses; 0 in the baseline's passes). */
type Latency = Percentiles & LoadResult & { batchReads: number };
type Throughput = { elapsedMs: number } & LoadResult & { batchReads: number };

interface Pass {
  c1: Latency;
  sliding: Latency;
  c32: Throughput;
  c64: Throughput;
  fanout: Latency;
}

/** The query figure (see the module header). */
export const queryFigure: Figure = {
  name: "query",
  summary: "gRPC Query p50/p99 at concurrency 1 and QPS at 32 and 64, for 1 key and 100 keys, vs a trivial grpc-js service",
  async run(ctx): Promise<FigureResult> {
    const s = ctx.opts.sizes;
    const cluster = await startBenchCluster(ctx.env, { roles: ["archiver", "coordinator", "executor", "serving"], speedNodes: 2, prefix: ctx.env.prefix("q") });
    const trivial = await startTrivialServer();
    const load = forkBenchChild("query_load", { env: ctx.env.childEnv });
    try {
      ctx.progress(`query: loading ${s.queryDataEvents} events, a batch run, then ${Math.floor(s.queryDataEvents / 5)} more for the speed layer`);
      await cluster.ingest.publishBatch(SOURCE, makeEvents(s.queryDataEvents, { idPrefix: "qa", seed: 11, spreadMs: 30 * MINUTE_MS }));
      await cluster.roles.coordinator!.runNow();
      await cluster.ingest.publishBatch(SOURCE, makeEvents(Math.floor(s.queryDataEvents / 5), { idPrefix: "qb", seed: 12, spreadMs: 30 * MINUTE_MS }));
      await cluster.waitForSpeedCaughtUp();

      const now = Date.now();
      const keys = Array.from({ length: ARTICLES }, (_, i) => `a-${i + 1}`);
      const window = { metric: METRIC, fromMs: now - 30 * MINUTE_MS, toMs: now + MINUTE_MS };
      const targets: Record<"product" | "baseline", QueryTarget> = {
        product: { address: cluster.roles.serving!.address, keys, ...window },
        baseline: { address: trivial.address, keys, ...window },
      };
      // Calls that read chDB (batch cache misses) during one measurement: none on the trivial server.
      const cache = cluster.roles.serving!.batchCache;
      const counted = async <T>(work: Promise<T>): Promise<T & { batchReads: number }> => {
        const before = cache.stats().misses;
        const r = await work;
        return { ...r, batchReads: cache.stats().misses - before };
      };
      const pass = async (t: QueryTarget, scale: number): Promise<Pass> => ({
        c1: await counted(load.call<Latency>("latency", { target: t, calls: Math.ceil(s.queryLatencyCalls * scale), keysPerCall: 1 })),
        sliding: await counted(load.call<Latency>("latency", { target: { ...t, sliding: true }, calls: Math.ceil((s.queryLatencyCalls / 2) * scale), keysPerCall: 1 })),
        c32: await counted(load.call<Throughput>("throughput", { target: t, calls: Math.ceil(s.queryThroughputCalls * scale), concurrency: 32 })),
        c64: await counted(load.call<Throughput>("throughput", { target: t, calls: Math.ceil(s.queryThroughputCalls * scale), concurrency: 64 })),
        fanout: await counted(load.call<Latency>("latency", { target: { ...t, keys: keys.slice(0, FANOUT) }, calls: Math.ceil(s.queryFanoutOps * scale), keysPerCall: FANOUT })),
      });
      ctx.progress("query: warm-up");
      await pass(targets.product, 0.2);
      await pass(targets.baseline, 0.2);
      const passes = { product: [] as Pass[], baseline: [] as Pass[] };
      for (let r = 0; r < ctx.opts.reps; r++) {
        ctx.progress(`query: repetition ${r + 1}/${ctx.opts.reps}`);
        passes.product.push(await pass(targets.product, 1));
        passes.baseline.push(await pass(targets.baseline, 1));
      }
      const errors = passes.product.flatMap((p) => [p.c1, p.sliding, p.c32, p.c64, p.fanout]).filter((x) => x.errors > 0);
      const label = "trivial grpc-js unary, same layout";
      const mk = (label2: string, unit: string, better: typeof Better.higher | typeof Better.lower, f: (p: Pass) => number, goalRatio?: number): Row =>
        row({
          figure: "query",
          label: label2,
          unit,
          better,
          product: passes.product.map(f),
          baseline: { label, samples: passes.baseline.map(f) },
          ...(goalRatio !== undefined ? { goal: { kind: "ratio_at_least" as const, value: goalRatio } } : {}),
        });
      const qps = (t: Throughput) => t.calls / (t.elapsedMs / 1000);
      return {
        name: "query",
        rows: [
          mk("1 key, concurrency 1, p50", "ms", Better.lower, (p) => p.c1.p50),
          mk("1 key, concurrency 1, p99", "ms", Better.lower, (p) => p.c1.p99, GOALS.oneKeyP99),
          mk("1 key, range ending now, p50", "ms", Better.lower, (p) => p.sliding.p50, GOALS.rangeEndingNowP50),
          mk("1 key, range ending now, p99", "ms", Better.lower, (p) => p.sliding.p99),
          mk("1 key, concurrency 32", "req/s", Better.higher, (p) => qps(p.c32)),
          mk("1 key, concurrency 64", "req/s", Better.higher, (p) => qps(p.c64)),
          mk(`${FANOUT} keys in one call, p50`, "ms", Better.lower, (p) => p.fanout.p50, GOALS.manyKeysP50),
          mk(`${FANOUT} keys in one call, p99`, "ms", Better.lower, (p) => p.fanout.p99),
        ],
        details: { dataEvents: s.queryDataEvents, speedEvents: Math.floor(s.queryDataEvents / 5), windowMinutes: 31, passes },
        notes: [
          `query: product = gRPC Query over ${s.queryDataEvents} events below a watermark and ${Math.floor(s.queryDataEvents / 5)} above it, keys rotating over ${ARTICLES} articles, a fixed 31-minute range ` +
            `(repeated reads, as a cache sees them) or a 31-minute range ending at the time of the call ("range ending now", as a dashboard asks); ` +
            `the load generator is its own process; baseline = the same service with a handler that answers at once.` +
            ` Calls that read chDB, per repetition: range ending now ${passes.product.map((p) => p.sliding.batchReads).join(" / ")} of ${passes.product[0]?.sliding.calls ?? 0}, ` +
            `fixed range ${passes.product.map((p) => p.c1.batchReads).join(" / ")}, ${FANOUT} keys ${passes.product.map((p) => p.fanout.batchReads).join(" / ")}.` +
            (errors.length > 0 ? ` ${errors.reduce((n, e) => n + e.errors, 0)} product calls FAILED, first: ${errors[0]!.firstError}.` : " No call failed."),
        ],
      };
    } finally {
      await load.stop();
      await trivial.close();
      await cluster.close();
    }
  },
};
