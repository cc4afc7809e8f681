/**
 * Query latency against the batch view's size: gRPC Query p50/p99 for one key
 * over 30 one-minute windows, with batch views of 10k, 100k and 1M
 * (key, window) rows. Each size gets its own cluster (serving node, two speed
 * nodes) over master rows generated in chDB below the cut: WINDOWS windows per
 * key, two events per (key, window), so the view holds keys × WINDOWS rows.
 * The serving node runs with its batch cache off (LAMBDA_BATCH_CACHE_STATES=0), so
 * each call reads the view: at 10k rows the cache would hold the whole view and
 * the curve would compare memory with reads. Calls rotate over every key and move
 * the range back a window once all keys were asked. Goal: p99 at the largest
 * view within 2x of p99 at the smallest.
 */
import { viewTable } from "../../../src/ch/schema.js";
import { forkBenchChild, type BenchChild } from "../../children/ipc.js";
import type { LoadResult, QueryTarget } from "../../children/query_load.js";
import { startBenchCluster } from "../../cluster.js";
import type { BenchContext } from "../../context.js";
import { Better, row } from "../../figure.js";
import { compact } from "../../format.js";
import { dropDatabase, insertMasterRows, prepareMasterRows, reserveSequences, timedBatchRun } from "../../master_rows.js";
import type { Percentiles } from "../../stats.js";
import { startTrivialServer } from "../../trivial_grpc.js";
import { METRIC, SOURCE } from "../../workload.js";
import { series, type ScalePartRun } from "./part.js";

/** One-minute windows per key in the view. */
const WINDOWS = 100;
/** Windows a query asks for. */
const RANGE_WINDOWS = 30;
const EVENTS_PER_CELL = 2;
/** p99 at the largest view may be at most this many times p99 at the smallest (issue #15). */
export const QUERY_FLAT_FACTOR = 2;

type Latency = Percentiles & LoadResult;

interface SizeResult {
  product: Latency[];
  trivial: Latency[];
  viewRows: number;
  batchCache: { hits: number; misses: number };
}

async function measureSize(ctx: BenchContext, load: BenchChild, trivialAddress: string, cells: number): Promise<SizeResult> {
  const keys = cells / WINDOWS;
  const rows = cells * EVENTS_PER_CELL;
  const prefix = ctx.env.prefix("sq");
  await reserveSequences(ctx.env.natsUrl, prefix, rows);
  const cluster = await startBenchCluster(ctx.env, { roles: ["archiver", "coordinator", "executor", "serving"], speedNodes: 2, prefix, config: { batchCacheStates: 0 } });
  const ch = cluster.roles.ch!.client;
  try {
    const catalog = ctx.env.catalog;
    const source = catalog.sources.get(SOURCE)!;
    const metric = catalog.metrics.get(METRIC)!;
    // Window w of key k holds rows k + keys·w and k + keys·(w + WINDOWS); windows end a minute before now.
    const baseMs = Math.floor(Date.now() / metric.windowMs) * metric.windowMs - metric.windowMs;
    ctx.progress(`scale/query: ${compact(cells)} view rows (${compact(keys)} keys × ${WINDOWS} windows): generating ${compact(rows)} master rows and a batch run`);
    const { master } = await prepareMasterRows(cluster, {
      baseMs,
      fields: {
        [metric.groupBy[0]!]: `concat('k-', toString(number % ${keys}))`,
        [source.timeField]: `fromUnixTimestamp64Milli(toInt64({base:Int64} - (intDiv(number, ${keys}) % ${WINDOWS}) * ${metric.windowMs} + cityHash64(number) % ${metric.windowMs}), 'UTC')`,
      },
    });
    await insertMasterRows(master, 0, rows);
    const { watermark } = await timedBatchRun(cluster.roles.coordinator!, rows);
    const rs = await ch.query({ query: `SELECT count() AS view_rows FROM ${viewTable(cluster.cfg.database, metric)} WHERE run = {run:UInt64} AND n > 0`, query_params: { run: watermark.run }, format: "JSONEachRow" });
    // n > 0: every view version also holds one marker row (src/ch/views.ts).
    const viewRows = Number((await rs.json<{ view_rows: string | number }>())[0]?.view_rows);
    if (viewRows !== cells) throw new Error(`scale/query: the batch view of run ${watermark.run} holds ${viewRows} rows, expected ${cells}`);

    const target: QueryTarget = {
      address: cluster.roles.serving!.address,
      metric: METRIC,
      keys: Array.from({ length: keys }, (_, k) => `k-${k}`),
      fromMs: baseMs - (RANGE_WINDOWS - 1) * metric.windowMs,
      toMs: baseMs + metric.windowMs,
      shift: { stepMs: metric.windowMs, count: WINDOWS - RANGE_WINDOWS + 1 },
    };
    const calls = ctx.opts.sizes.scale.queryCalls;
    const warm = Math.ceil(calls / 5);
    const latency = (t: QueryTarget, n: number, firstCall: number) => load.call<Latency>("latency", { target: t, calls: n, keysPerCall: 1, firstCall });
    await latency(target, warm, 0);
    await latency({ ...target, address: trivialAddress }, warm, 0);
    const product: Latency[] = [];
    const trivial: Latency[] = [];
    for (let r = 0; r < ctx.opts.reps; r++) {
      ctx.progress(`scale/query: ${compact(cells)} view rows, repetition ${r + 1}/${ctx.opts.reps}`);
      product.push(await latency(target, calls, warm + r * calls));
      trivial.push(await latency({ ...target, address: trivialAddress }, calls, warm + r * calls));
    }
    const failed = product.find((p) => p.errors > 0);
    if (failed) throw new Error(`scale/query: ${failed.errors} of ${failed.calls} calls failed at ${cells} view rows, first: ${failed.firstError}`);
    const { hits, misses } = cluster.roles.serving!.batchCache.stats();
    return { product, trivial, viewRows, batchCache: { hits, misses } };
  } finally {
    await cluster.close();
    await dropDatabase(ctx.env.chdbPath, cluster.cfg.database);
  }
}

/** The query curve (see the module header). */
export const queryCurve: ScalePartRun = async (ctx) => {
  const sizes = ctx.opts.sizes.scale.viewCells;
  const trivial = await startTrivialServer();
  const load = forkBenchChild("query_load", { env: ctx.env.childEnv });
  try {
    const results: SizeResult[] = [];
    for (const cells of sizes) results.push(await measureSize(ctx, load, trivial.address, cells));
    const pick = (k: "p50" | "p99", who: "product" | "trivial") => results.map((r) => r[who].map((x) => x[k]));
    const trivialLabel = "trivial grpc-js unary, same layout";
    const first = results[0]!;
    const last = results[results.length - 1]!;
    const base = { figure: "scale", unit: "ms", better: Better.lower };
    const atLabel = (k: string) => `query ${k}, 1 key × ${RANGE_WINDOWS} windows, view of ${compact(sizes[sizes.length - 1]!)} rows`;
    const smallest = `the same at a view of ${compact(sizes[0]!)} rows`;
    return {
      rows: [
        row({ ...base, label: atLabel("p50"), product: last.product.map((x) => x.p50), baseline: { label: smallest, samples: first.product.map((x) => x.p50) } }),
        row({
          ...base,
          label: atLabel("p99"),
          product: last.product.map((x) => x.p99),
          baseline: { label: smallest, samples: first.product.map((x) => x.p99) },
          goal: { kind: "ratio_at_least", value: 1 / QUERY_FLAT_FACTOR },
        }),
        row({ ...base, label: atLabel("p99"), product: last.product.map((x) => x.p99), baseline: { label: trivialLabel, samples: last.trivial.map((x) => x.p99) } }),
      ],
      curves: [
        {
          figure: "scale",
          title: "query latency vs batch view size",
          xLabel: "batch view rows (keys × windows)",
          yUnit: "ms",
          series: [
            series("gRPC Query p99", "product", sizes, pick("p99", "product")),
            series("gRPC Query p50", "product", sizes, pick("p50", "product")),
            series(`${trivialLabel}, p99`, "baseline", sizes, pick("p99", "trivial")),
          ],
        },
      ],
      details: { windowsPerKey: WINDOWS, rangeWindows: RANGE_WINDOWS, eventsPerCell: EVENTS_PER_CELL, sizes, results },
      notes: [
        `scale/query: batch views of ${sizes.map(compact).join(", ")} rows (${WINDOWS} one-minute windows per key, ${EVENTS_PER_CELL} events each, generated in chDB below the cut), two speed nodes with nothing above the cut; ` +
          `${ctx.opts.sizes.scale.queryCalls} sequential one-key calls per repetition for ${RANGE_WINDOWS} windows, rotating over every key and moving the range back a window after each round, serving's batch cache off so that each reads the view ` +
          `(serving's cache, over the whole size: ${results.map((r) => `${r.batchCache.misses} misses / ${r.batchCache.hits} hits`).join("; ")}). Goal: p99 at the largest view within ${QUERY_FLAT_FACTOR}x of the smallest.`,
      ],
    };
  } finally {
    await load.stop();
    await trivial.close();
  }
};
