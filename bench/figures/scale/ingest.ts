/**
 * Ingest end to end against partitions (4, 8, 16, 32, two speed nodes) and
 * speed nodes (1, 2, 3, at the default partitions): the ingest figure's
 * product path and protocol-ceiling baseline (bench/figures/ingest.ts), one
 * cluster per configuration. Goal: no collapse as partitions grow, read as
 * "the rate at the most partitions is at least half the rate at the fewest".
 */
import { DEFAULT_PARTITIONS } from "../../../src/core/config.js";
import { forkBenchChild } from "../../children/ipc.js";
import { startBenchCluster } from "../../cluster.js";
import type { BenchContext } from "../../context.js";
import { Better, row } from "../../figure.js";
import { median } from "../../stats.js";
import { productPass, rawPass, type Pass } from "../ingest.js";
import { series, type ScalePartRun } from "./part.js";

/** Speed nodes while partitions vary. */
const NODES_WHILE_PARTITIONS_VARY = 2;
/** The rate at the most partitions may not fall below this share of the rate at the fewest. */
export const NO_COLLAPSE_SHARE = 0.5;
const CEILING = "protocol ceiling + ordered consumers";

interface ConfigResult {
  partitions: number;
  speedNodes: number;
  product: Pass[];
  ceiling: Pass[];
}

async function measureConfig(ctx: BenchContext, partitions: number, speedNodes: number, seed0: number): Promise<ConfigResult> {
  const n = ctx.opts.sizes.scale.ingestEvents;
  const cluster = await startBenchCluster(ctx.env, {
    roles: ["archiver", "coordinator", "executor", "serving"],
    speedNodes,
    prefix: ctx.env.prefix("si"),
    config: { partitions },
  });
  const consumers = Array.from({ length: speedNodes }, () => forkBenchChild("raw_consumer", { env: ctx.env.childEnv }));
  try {
    let seed = seed0;
    const warm = Math.max(1_000, Math.floor(n / 10));
    await productPass(cluster, warm, seed++);
    await rawPass(ctx, cluster, consumers, "core", warm, seed++);
    const product: Pass[] = [];
    const ceiling: Pass[] = [];
    for (let r = 0; r < ctx.opts.reps; r++) {
      ctx.progress(`scale/ingest: ${partitions} partitions, ${speedNodes} speed node(s), repetition ${r + 1}/${ctx.opts.reps}, ${n} events per path`);
      product.push(await productPass(cluster, n, seed++));
      ceiling.push(await rawPass(ctx, cluster, consumers, "core", n, seed++));
    }
    return { partitions, speedNodes, product, ceiling };
  } finally {
    await Promise.all(consumers.map((c) => c.stop()));
    await cluster.close();
  }
}

/** The ingest curves (see the module header); sets state.maxIngestPerS for the freshness curve. */
export const ingestCurve: ScalePartRun = async (ctx, state) => {
  const s = ctx.opts.sizes.scale;
  const results: ConfigResult[] = [];
  let seed = 1_000;
  const find = (p: number, nodes: number) => results.find((r) => r.partitions === p && r.speedNodes === nodes);
  for (const p of s.ingestPartitions) {
    results.push(await measureConfig(ctx, p, NODES_WHILE_PARTITIONS_VARY, seed));
    seed += 100;
  }
  for (const nodes of s.ingestSpeedNodes) {
    if (!find(DEFAULT_PARTITIONS, nodes)) results.push(await measureConfig(ctx, DEFAULT_PARTITIONS, nodes, seed));
    seed += 100;
  }
  const e2e = (ps: Pass[]) => ps.map((p) => p.endToEnd);
  const byPartitions = s.ingestPartitions.map((p) => find(p, NODES_WHILE_PARTITIONS_VARY)!);
  const byNodes = s.ingestSpeedNodes.map((nodes) => find(DEFAULT_PARTITIONS, nodes)!);
  const reference = find(DEFAULT_PARTITIONS, NODES_WHILE_PARTITIONS_VARY);
  if (reference) state.maxIngestPerS = median(e2e(reference.product));
  const fewest = byPartitions[0]!;
  const most = byPartitions[byPartitions.length - 1]!;
  const base = { figure: "scale", unit: "events/s", better: Better.higher };
  const label = (r: ConfigResult) => `ingest end to end, ${r.partitions} partitions, ${r.speedNodes} speed node(s)`;
  return {
    rows: [
      ...results.map((r) => row({ ...base, label: label(r), product: e2e(r.product), baseline: { label: CEILING, samples: e2e(r.ceiling) } })),
      row({
        ...base,
        label: label(most),
        product: e2e(most.product),
        baseline: { label: `the same at ${fewest.partitions} partitions`, samples: e2e(fewest.product) },
        goal: { kind: "ratio_at_least", value: NO_COLLAPSE_SHARE },
      }),
    ],
    curves: [
      {
        figure: "scale",
        title: `ingest end to end vs partitions (${NODES_WHILE_PARTITIONS_VARY} speed nodes)`,
        xLabel: "partitions",
        yUnit: "events/s",
        series: [
          series("publishBatch → speed actors applied", "product", s.ingestPartitions, byPartitions.map((r) => e2e(r.product))),
          series(CEILING, "baseline", s.ingestPartitions, byPartitions.map((r) => e2e(r.ceiling))),
        ],
      },
      {
        figure: "scale",
        title: `ingest end to end vs speed nodes (${DEFAULT_PARTITIONS} partitions)`,
        xLabel: "speed nodes (baseline: consumer processes)",
        yUnit: "events/s",
        series: [
          series("publishBatch → speed actors applied", "product", s.ingestSpeedNodes, byNodes.map((r) => e2e(r.product))),
          series(CEILING, "baseline", s.ingestSpeedNodes, byNodes.map((r) => e2e(r.ceiling))),
        ],
      },
    ],
    details: { eventsPerRepetition: s.ingestEvents, results },
    notes: [
      `scale/ingest: the ingest figure's product path and protocol-ceiling baseline, one cluster per configuration (partitions ${s.ingestPartitions.join(", ")} with ${NODES_WHILE_PARTITIONS_VARY} speed nodes; ` +
        `speed nodes ${s.ingestSpeedNodes.join(", ")} at ${DEFAULT_PARTITIONS} partitions; the baseline has as many consumer processes as the product has speed nodes), ${s.ingestEvents} events per repetition. ` +
        `"No collapse" read as: the rate at ${most.partitions} partitions is at least ${NO_COLLAPSE_SHARE}x the rate at ${fewest.partitions}.`,
    ],
  };
};
