/**
 * Speed-node heap against events since the cut and against distinct keys,
 * over several watermarks. One speed node alone in a process with
 * --expose-gc (bench/figures/memory.ts); each step publishes a batch of new
 * events, reads the heap with them held, then runs a batch whose watermark
 * covers them and reads the heap again. What a step holds is measured from
 * the heap after the previous watermark, so what earlier steps left behind is
 * not counted twice. Run with the default dedupe horizon and with the horizon
 * off, which isolates the segments: the horizon is kept past the cut by
 * design (docs/performance.md, section 6). Goal: O(events since the cut),
 * nothing retained from covered segments.
 */
import { DEDUPE_HORIZON_IDS } from "../../../src/core/config.js";
import type { BenchContext } from "../../context.js";
import { growthExponent } from "../../curve.js";
import { Better, row, type Row } from "../../figure.js";
import { compact } from "../../format.js";
import { median } from "../../stats.js";
import { KEPT_GOAL_PCT, speedMemory, startMeasuredSpeedNode } from "../memory.js";
import { series, type ScalePartRun } from "./part.js";

interface Step {
  /** Events of this step (all since the cut when read). */
  events: number;
  /** Distinct keys they were spread over. */
  keys: number | null;
  /** Heap held by this step's events above the heap after the previous watermark (bytes). */
  heldBytes: number;
  /** Heap after this step's watermark, above the idle heap (bytes). */
  keptBytes: number;
  /** Events covered by watermarks so far. */
  coveredEvents: number;
}

interface Pass {
  horizon: number;
  idleHeap: number;
  byEvents: Step[];
  byKeys: Step[];
}

async function pass(ctx: BenchContext, horizon: number, seed: number): Promise<Pass> {
  const s = ctx.opts.sizes.scale;
  const node = await startMeasuredSpeedNode(ctx, seed, { dedupeHorizonIds: horizon });
  try {
    await node.applyAndCover(Math.max(1_000, Math.floor(s.memoryEvents[0]! / 10)), "w");
    const idleHeap = await node.heap();
    let before = idleHeap;
    let covered = 0;
    const step = async (events: number, tag: string, keys: number | null): Promise<Step> => {
      const c = await node.applyAndCover(events, tag, keys ?? undefined);
      if (c.heldEvents !== events) throw new Error(`scale/memory: the actors held ${c.heldEvents} events, expected ${events}`);
      const after = await node.heap();
      covered += events;
      const st = { events, keys, heldBytes: speedMemory(c.held) - before, keptBytes: after - idleHeap, coveredEvents: covered };
      before = after;
      return st;
    };
    const byEvents: Step[] = [];
    for (const [i, n] of s.memoryEvents.entries()) byEvents.push(await step(n, `e${i}`, null));
    const byKeys: Step[] = [];
    for (const [i, k] of s.memoryKeys.entries()) byKeys.push(await step(s.memoryKeyEvents, `k${i}`, k));
    return { horizon, idleHeap, byEvents, byKeys };
  } finally {
    await node.close();
  }
}

/** The speed-memory curves (see the module header). */
export const memoryCurve: ScalePartRun = async (ctx) => {
  const s = ctx.opts.sizes.scale;
  const horizons = [DEDUPE_HORIZON_IDS, 0];
  const passes = new Map<number, Pass[]>(horizons.map((h) => [h, []]));
  const reps = Math.min(ctx.opts.reps, s.memoryRepsMax);
  for (let r = 0; r < reps; r++) {
    for (const h of horizons) {
      ctx.progress(`scale/memory: repetition ${r + 1}/${reps}, dedupe horizon ${h}: ${s.memoryEvents.map(compact).join(", ")} events, then ${compact(s.memoryKeyEvents)} over ${s.memoryKeys.map(compact).join(", ")} keys, a watermark after each`);
      passes.get(h)!.push(await pass(ctx, h, 301 + r));
    }
  }
  const name = (h: number) => (h === 0 ? "horizon off" : `horizon ${compact(h)} ids`);
  const perStep = (h: number, pick: (p: Pass) => Step[], f: (st: Step) => number) => pick(passes.get(h)![0]!).map((_, i) => passes.get(h)!.map((p) => f(pick(p)[i]!)));
  const byEvents = (p: Pass) => p.byEvents;
  const byKeys = (p: Pass) => p.byKeys;
  const coveredXs = [...passes.get(0)![0]!.byEvents, ...passes.get(0)![0]!.byKeys].map((st) => st.coveredEvents);
  const rows: Row[] = [];
  for (const h of horizons) {
    const ps = passes.get(h)!;
    const base = { figure: "scale", better: Better.lower };
    rows.push(
      row({
        ...base,
        label: `speed heap held vs events since the cut, growth exponent (${name(h)})`,
        unit: "x",
        product: ps.map((p) => growthExponent(p.byEvents.map((st) => ({ x: st.events, y: st.heldBytes })))),
      }),
      row({
        ...base,
        label: `speed heap kept after ${ps[0]!.byEvents.length + ps[0]!.byKeys.length} watermarks, share of all it held (${name(h)})`,
        unit: "%",
        product: ps.map((p) => {
          const all = [...p.byEvents, ...p.byKeys];
          return (all[all.length - 1]!.keptBytes / all.reduce((sum, st) => sum + st.heldBytes, 0)) * 100;
        }),
        goal: { kind: "product_at_most", value: KEPT_GOAL_PCT },
      }),
      row({
        ...base,
        label: `speed heap per held event at ${compact(s.memoryKeys[s.memoryKeys.length - 1]!)} keys (${name(h)})`,
        unit: "B/event",
        product: ps.map((p) => p.byKeys[p.byKeys.length - 1]!.heldBytes / s.memoryKeyEvents),
        baseline: { label: `the same at ${compact(s.memoryKeys[0]!)} keys`, samples: ps.map((p) => p.byKeys[0]!.heldBytes / s.memoryKeyEvents) },
      }),
    );
  }
  const mib = (b: number) => b / 2 ** 20;
  return {
    rows,
    curves: [
      {
        figure: "scale",
        title: "speed heap held vs events since the cut",
        xLabel: "events since the cut",
        yUnit: "MiB held",
        series: horizons.map((h) => series(name(h), "product", s.memoryEvents, perStep(h, byEvents, (st) => mib(st.heldBytes)))),
      },
      {
        figure: "scale",
        title: "speed heap kept after each watermark",
        xLabel: "events covered by watermarks so far",
        yUnit: "MiB above idle",
        series: horizons.map((h) => series(name(h), "product", coveredXs, [...perStep(h, byEvents, (st) => mib(st.keptBytes)), ...perStep(h, byKeys, (st) => mib(st.keptBytes))])),
      },
      {
        figure: "scale",
        title: `speed heap per held event vs distinct keys (${compact(s.memoryKeyEvents)} events)`,
        xLabel: "distinct keys",
        yUnit: "B/event",
        series: horizons.map((h) => series(name(h), "product", s.memoryKeys, perStep(h, byKeys, (st) => st.heldBytes / st.events))),
      },
    ],
    details: { horizons, passes: Object.fromEntries(passes) },
    notes: [
      `scale/memory: one speed node (all partitions) alone with --expose-gc; per repetition and dedupe horizon a fresh node, a warm-up, then ${s.memoryEvents.map(compact).join(", ")} events and ${s.memoryKeys.length} × ${compact(s.memoryKeyEvents)} events over ${s.memoryKeys.map(compact).join(", ")} keys, ` +
        `each covered by a watermark before the next; held = heap with the step's events held minus heap after the previous watermark; kept = heap after the watermark minus the idle heap. ` +
        `Median kept after the last watermark: ${horizons.map((h) => `${name(h)} ${mib(median(passes.get(h)!.map((p) => p.byKeys[p.byKeys.length - 1]!.keptBytes))).toFixed(1)} MiB`).join(", ")}.`,
    ],
  };
};
