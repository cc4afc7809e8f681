/**
 * Batch run time against master rows (1M, 5M, 20M; 50M with --large), beside
 * the one exact query at each size. The rows are generated in chDB below the
 * cut (bench/master_rows.ts); each size adds rows to the same master table,
 * and the run is the product's `coordinator.runNow()` over all of them.
 * Goal: the run's slope (seconds per million rows) within 1.5x of the exact
 * query's.
 */
import { startBenchCluster } from "../../cluster.js";
import { ensureError } from "../../../src/core/errors.js";
import { growthExponent, slopesPerRepetition } from "../../curve.js";
import { Better, row } from "../../figure.js";
import { compact } from "../../format.js";
import { dropDatabase, insertMasterRows, prepareMasterRows, reserveSequences, timedBatchRun, timedQuery, type ProductRun } from "../../master_rows.js";
import { METRIC } from "../../workload.js";
import { series, type ScalePartRun } from "./part.js";

/** The product's slope may be at most this many times the exact query's (issue #15). */
export const BATCH_SLOPE_FACTOR = 1.5;
const EXACT_LABEL = "one chDB query: dedup by id below the cut, GROUP BY key, window";

/** The batch curve (see the module header). */
export const batchCurve: ScalePartRun = async (ctx) => {
  const sizes = ctx.opts.sizes.scale.batchRows;
  const prefix = ctx.env.prefix("sb");
  await reserveSequences(ctx.env.natsUrl, prefix, sizes[sizes.length - 1]!);
  const cluster = await startBenchCluster(ctx.env, { roles: ["archiver", "coordinator", "executor"], speedNodes: 0, prefix });
  const ch = cluster.roles.ch!.client;
  try {
    const { master, exact } = await prepareMasterRows(cluster);
    const productS: number[][] = [];
    const exactS: number[][] = [];
    const details: Record<string, unknown> = {};
    const measured: number[] = [];
    const failures: string[] = [];
    let inserted = 0;
    for (const n of sizes) {
      try {
        ctx.progress(`scale/batch: generating ${compact(n - inserted)} master rows in chDB (total ${compact(n)})`);
        const g0 = performance.now();
        await insertMasterRows(master, inserted, n - inserted);
        const generateMs = performance.now() - g0;
        inserted = n;
        if (n === sizes[0]) {
          ctx.progress(`scale/batch: ${compact(n)} rows, warm-up`);
          const { watermark } = await timedBatchRun(cluster.roles.coordinator!, n);
          await timedQuery(ch, exact, { cuts: [...watermark.cuts] }, n);
        }
        const runs: ProductRun[] = [];
        const exactMs: number[] = [];
        const rssMiB: number[] = [];
        for (let r = 0; r < ctx.opts.reps; r++) {
          ctx.progress(`scale/batch: ${compact(n)} rows, repetition ${r + 1}/${ctx.opts.reps}`);
          const { watermark, ...run } = await timedBatchRun(cluster.roles.coordinator!, n);
          runs.push(run);
          rssMiB.push(Math.round(process.memoryUsage().rss / 2 ** 20));
          exactMs.push(await timedQuery(ch, exact, { cuts: [...watermark.cuts] }, n));
        }
        productS.push(runs.map((p) => p.publishedMs / 1000));
        exactS.push(exactMs.map((ms) => ms / 1000));
        details[String(n)] = { generateMs, product: runs, exactMs, rssMiBAfterRun: rssMiB };
        measured.push(n);
      } catch (err) {
        // The largest sizes are where this machine may give out: keep the curve measured so far and say why it ends.
        const e = ensureError(err);
        failures.push(`scale/batch at ${compact(n)} rows: ${e.stack ?? e.message}`);
        ctx.progress(`scale/batch: FAILED at ${compact(n)} rows: ${e.message}`);
        break;
      }
    }
    if (measured.length < 2) throw new Error(`scale/batch: a curve needs two sizes, measured [${measured.join(", ")}]; ${failures.join("; ")}`);
    const largest = measured[measured.length - 1]!;
    const product = series("batch run (whole catalog) to the watermark", "product", measured, productS);
    const baseline = series(EXACT_LABEL, "baseline", measured, exactS);
    const perM = (slopes: number[]) => slopes.map((s) => s * 1e6);
    const productSlope = perM(slopesPerRepetition(product.points));
    const exactSlope = perM(slopesPerRepetition(baseline.points));
    const base = { figure: "scale", better: Better.lower };
    const rows = [
      ...measured.map((n, i) => row({ ...base, label: `batch run over ${compact(n)} master rows`, unit: "s", product: productS[i]!, baseline: { label: EXACT_LABEL, samples: exactS[i]! } })),
      row({
        ...base,
        label: `batch run: slope over ${measured.map(compact).join(", ")} rows`,
        unit: "s/M rows",
        product: productSlope,
        baseline: { label: "the exact query's slope", samples: exactSlope },
        goal: { kind: "ratio_at_least", value: 1 / BATCH_SLOPE_FACTOR },
      }),
    ];
    const exponent = (pts: typeof product.points) => growthExponent(pts).toFixed(2);
    return {
      rows,
      curves: [{ figure: "scale", title: "batch run time vs master rows", xLabel: "master rows", yUnit: "s", series: [product, baseline] }],
      failures,
      details: { sizes, measured, productSlopeSPerMRows: productSlope, exactSlopeSPerMRows: exactSlope, perSize: details },
      notes: [
        `scale/batch: master rows generated in chDB below the cut, ${measured.map(compact).join(", ")} rows${failures.length > 0 ? ` (FAILED at ${compact(sizes[measured.length]!)}, see failures)` : ""}, each size added to the same table; product = coordinator.runNow() of the whole catalog timed to its watermark, baseline = one exact query (${METRIC}) below the same cut. ` +
          `Growth exponent (log-log fit; 1 = linear): run ${exponent(product.points)}, exact query ${exponent(baseline.points)}. Goal: the run's slope within ${BATCH_SLOPE_FACTOR}x of the exact query's (ratio >= ${(1 / BATCH_SLOPE_FACTOR).toFixed(2)}). Largest history in one run: ${compact(largest)} rows.`,
      ],
    };
  } finally {
    await cluster.close();
    await dropDatabase(ctx.env.chdbPath, cluster.cfg.database);
  }
};
