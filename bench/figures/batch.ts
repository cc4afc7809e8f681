/**
 * Batch run: a full run of the product (barriers written, archiver flushed
 * through them, recompute of every metric below the cut, watermark published)
 * over a master dataset of 1M and 5M events, vs the single chDB query that
 * computes the same answer.
 *
 * The master rows are generated inside chDB (INSERT … SELECT FROM numbers())
 * straight into the product's master table: streaming millions of events
 * through NATS first would measure ingest again. So that they lie below the
 * cut, the stream's first sequence is moved past them before the roles start.
 * The run itself is the product's: `coordinator.runNow()` with the archiver
 * running and flushing through the barriers.
 */
import { startBenchCluster } from "../cluster.js";
import { compact } from "../format.js";
import { Better, row, type Figure, type FigureResult, type Row } from "../figure.js";
import { insertMasterRows, plainSql, prepareMasterRows, reserveSequences, SAMPLE_EVENTS, timedBatchRun, timedQuery, type ProductRun } from "../master_rows.js";
import { median } from "../stats.js";
import { METRIC, SOURCE } from "../workload.js";

/** The batch figure (see the module header). */
export const batchFigure: Figure = {
  name: "batch",
  summary: "a full batch run (barrier, archiver flush, recompute, watermark) over 1M and 5M events, vs the single chDB GROUP BY",
  async run(ctx): Promise<FigureResult> {
    const sizes = ctx.opts.sizes.batchSizes;
    const prefix = ctx.env.prefix("bt");
    await reserveSequences(ctx.env.natsUrl, prefix, sizes[sizes.length - 1]!);
    const cluster = await startBenchCluster(ctx.env, { roles: ["archiver", "coordinator", "executor"], speedNodes: 0, prefix });
    try {
      const ch = cluster.roles.ch!.client;
      const coordinator = cluster.roles.coordinator!;
      const catalog = ctx.env.catalog;
      const source = catalog.sources.get(SOURCE)!;
      const metric = catalog.metrics.get(METRIC)!;
      const { master, exact } = await prepareMasterRows(cluster);
      const plain = plainSql(master.table, metric.groupBy[0]!, source.timeField, metric.windowMs);
      const rows: Row[] = [];
      const details: Record<string, unknown> = {};
      const notes: string[] = [];
      let inserted = 0;
      for (const n of sizes) {
        ctx.progress(`batch: generating ${n - inserted} master rows in chDB (total ${n})`);
        await insertMasterRows(master, inserted, n - inserted);
        inserted = n;
        const runOnce = () => timedBatchRun(coordinator, n);
        // One warm-up round, on the first (smallest) size: it warms code paths and caches for the later sizes,
        // whose runs are long enough that a second warm-up would only add minutes.
        if (n === sizes[0]) {
          ctx.progress(`batch: ${compact(n)} events, warm-up`);
          const { watermark } = await runOnce();
          await timedQuery(ch, exact, { cuts: [...watermark.cuts] }, n);
          await timedQuery(ch, plain, {}, n);
        }
        const product: ProductRun[] = [];
        const exactMs: number[] = [];
        const plainMs: number[] = [];
        for (let r = 0; r < ctx.opts.reps; r++) {
          ctx.progress(`batch: ${compact(n)} events, repetition ${r + 1}/${ctx.opts.reps}`);
          const { watermark, ...p } = await runOnce();
          product.push(p);
          // The baseline reads below the same cut as the run it is compared with.
          exactMs.push(await timedQuery(ch, exact, { cuts: [...watermark.cuts] }, n));
          plainMs.push(await timedQuery(ch, plain, {}, n));
        }
        const perS = (ms: number) => n / (ms / 1000);
        const base = { figure: "batch", label: `run over ${compact(n)} events`, unit: "events/s", better: Better.higher, product: product.map((p) => perS(p.publishedMs)) };
        rows.push(row({ ...base, baseline: { label: "one chDB query: dedup by id below the cut, GROUP BY key, window", samples: exactMs.map(perS) }, goal: { kind: "ratio_at_least", value: 0.7 } })); // issue #15, at every size
        rows.push(row({ ...base, baseline: { label: "one chDB query: plain GROUP BY key, window (no dedup)", samples: plainMs.map(perS) } }));
        const med = (f: (p: ProductRun) => number) => Math.round(median(product.map(f)));
        details[String(n)] = { product, exactMs, plainMs };
        notes.push(
          `batch ${compact(n)}: run ${(med((p) => p.publishedMs) / 1000).toFixed(2)} s to the watermark (barrier ${med((p) => p.timings.barrierMs)} ms, archiver flush ${med((p) => p.timings.archiverFlushMs)} ms, ` +
            `recompute ${med((p) => p.timings.recomputeMs)} ms), ${(med((p) => p.totalMs) / 1000).toFixed(2)} s with old view versions dropped; ` +
            `one exact query ${(median(exactMs) / 1000).toFixed(2)} s, plain GROUP BY ${(median(plainMs) / 1000).toFixed(2)} s.`,
        );
        // Where the recompute's time goes: the profile that says what a faster run would have to cut.
        const steps = Object.keys(product[0]?.stepMs ?? {}).map((step) => `${step} ${med((p) => p.stepMs[step] ?? 0)}`);
        notes.push(`batch ${compact(n)}: recompute steps, median ms: ${steps.join(", ")}.`);
      }
      const perSource = [...catalog.metrics.values()].filter((m) => m.source === SOURCE).length;
      notes.push(
        `batch: master rows generated in chDB below the cut (distinct ids, event times over one day, other fields cycling through ${SAMPLE_EVENTS} synthetic page views); ` +
          `the run is coordinator.runNow() with the archiver flushing through the barriers, and recomputes the whole shipped catalog (${catalog.metrics.size} metrics, ${perSource} of them over ${SOURCE}); ` +
          `the baselines compute one metric (${METRIC}) in one query.`,
      );
      return { name: "batch", rows, details, notes };
    } finally {
      await cluster.close();
    }
  },
};
