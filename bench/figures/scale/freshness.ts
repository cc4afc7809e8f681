/**
 * Freshness p99 against background load: the freshness figure's probes
 * (bench/figures/freshness.ts) under a background feed of 25 %, 50 % and 75 %
 * of the end-to-end ingest rate the ingest curve measured (its default
 * configuration), product and plain-consumer baseline at each load. The
 * rate actually fed is recorded: the feed never overlaps its publishes, so a
 * system that cannot keep up is fed less, and the figure says so.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { namesFor } from "../../../src/nats/names.js";
import { startBenchCluster } from "../../cluster.js";
import { Better, row, type Row } from "../../figure.js";
import { compact } from "../../format.js";
import { median } from "../../stats.js";
import { measure, startProbers, type FreshnessPass } from "../freshness.js";
import { series, type ScalePartRun } from "./part.js";

/** The freshness goal: p99 publish → visible. */
export const FRESHNESS_P99_GOAL_MS = 100;
const WARM_UP_PROBES = 20;

/** The freshness curve (see the module header). Needs state.maxIngestPerS from the ingest curve. */
export const freshnessCurve: ScalePartRun = async (ctx, state) => {
  const s = ctx.opts.sizes.scale;
  const maxPerS = state.maxIngestPerS;
  if (maxPerS === null) throw new Error("scale/freshness: no end-to-end ingest rate was measured (the ingest curve failed or skipped the default configuration)");
  const rates = s.freshnessLoads.map((l) => Math.round(l * maxPerS));
  const cluster = await startBenchCluster(ctx.env, { roles: ["archiver", "coordinator", "executor", "serving"], speedNodes: 2, prefix: ctx.env.prefix("sf") });
  const rawNames = namesFor(ctx.env.prefix("sfraw"));
  let raw: Awaited<ReturnType<typeof startProbers>>["raw"] | undefined;
  try {
    const probers = await startProbers(ctx, cluster, rawNames, "sfseed");
    raw = probers.raw;
    const product = probers.product;
    await measure(product, WARM_UP_PROBES, rates[0]!, "spw");
    await measure(raw, WARM_UP_PROBES, rates[0]!, "srw");
    const results = rates.map(() => ({ product: [] as FreshnessPass[], baseline: [] as FreshnessPass[] }));
    for (let r = 0; r < ctx.opts.reps; r++) {
      for (const [i, rate] of rates.entries()) {
        ctx.progress(`scale/freshness: repetition ${r + 1}/${ctx.opts.reps}, background ${rate} events/s (${s.freshnessLoads[i]! * 100} % of ${Math.round(maxPerS)}), ${s.freshnessProbes} probes per path`);
        results[i]!.product.push(await measure(product, s.freshnessProbes, rate, `sp${i}r${r}`));
        results[i]!.baseline.push(await measure(raw, s.freshnessProbes, rate, `sr${i}r${r}`));
      }
    }
    const loadsPct = s.freshnessLoads.map((l) => l * 100);
    const rows: Row[] = results.map((res, i) =>
      row({
        figure: "scale",
        label: `freshness p99 at ${loadsPct[i]} % of max ingest (${compact(rates[i]!)} events/s asked, ${compact(median(res.product.map((p) => p.fedPerS)))} fed)`,
        unit: "ms",
        better: Better.lower,
        product: res.product.map((p) => p.p99),
        baseline: { label: "publish → plain JetStream consumer", samples: res.baseline.map((p) => p.p99) },
        goal: { kind: "product_at_most", value: FRESHNESS_P99_GOAL_MS },
      }),
    );
    const pick = (who: "product" | "baseline", k: "p50" | "p99") => results.map((res) => res[who].map((p) => p[k]));
    return {
      rows,
      curves: [
        {
          figure: "scale",
          title: "freshness vs background load",
          xLabel: `background load, % of max ingest (${compact(maxPerS)} events/s)`,
          yUnit: "ms",
          series: [
            series("publish → visible in Query, p99", "product", loadsPct, pick("product", "p99")),
            series("publish → visible in Query, p50", "product", loadsPct, pick("product", "p50")),
            series("publish → plain consumer, p99", "baseline", loadsPct, pick("baseline", "p99")),
          ],
        },
      ],
      details: { maxIngestPerS: maxPerS, loads: s.freshnessLoads, ratesAsked: rates, probesPerRepetition: s.freshnessProbes, results },
      notes: [
        `scale/freshness: the freshness figure's probes under background feeds of ${loadsPct.join(", ")} % of ${compact(maxPerS)} events/s (the ingest curve's median end to end at its default configuration); ` +
          `${s.freshnessProbes} probes per repetition and load; rows name the rate asked and the median rate the product's feed achieved.`,
      ],
    };
  } finally {
    await raw?.close();
    const jsm = await jetstreamManager(cluster.nc);
    for (const st of [rawNames.eventStream, rawNames.deadLetterStream]) await jsm.streams.delete(st).catch(() => undefined); // best effort: frees the server
    await cluster.close();
  }
};
