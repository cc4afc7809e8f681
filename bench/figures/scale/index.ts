/**
 * Scale ("how cost grows", issue #15): curves of cost against size, each
 * beside a raw baseline or the product's own smallest size, with the goal
 * rows of the issue. Opt-in (`--only scale`): a full run takes about 20
 * minutes. Parts, in order: batch run time vs master rows, query latency vs
 * batch view size, speed-node heap vs events since the cut and distinct
 * keys, ingest vs partitions and speed nodes, freshness vs background load
 * (which reads the ingest curve's rate). A part that fails is reported and
 * the others still run.
 */
import { ensureError } from "../../../src/core/errors.js";
import type { Curve } from "../../curve.js";
import type { Figure, FigureResult, Row } from "../../figure.js";
import { batchCurve } from "./batch.js";
import { freshnessCurve } from "./freshness.js";
import { ingestCurve } from "./ingest.js";
import { memoryCurve } from "./memory.js";
import type { ScalePartRun, ScaleState } from "./part.js";
import { queryCurve } from "./query.js";

const PARTS: readonly (readonly [string, ScalePartRun])[] = [
  ["batch", batchCurve],
  ["query", queryCurve],
  ["memory", memoryCurve],
  ["ingest", ingestCurve],
  ["freshness", freshnessCurve],
];

/** The scale figure (see the module header). */
export const scaleFigure: Figure = {
  name: "scale",
  summary: "how cost grows: batch time vs rows, query vs view size, speed heap vs events and keys, ingest vs partitions and nodes, freshness vs load (opt-in)",
  async run(ctx): Promise<FigureResult> {
    const state: ScaleState = { maxIngestPerS: null };
    const result = { name: "scale", rows: [] as Row[], curves: [] as Curve[], details: {} as Record<string, unknown>, notes: [] as string[], failures: [] as string[] };
    for (const [name, part] of PARTS) {
      const t0 = performance.now();
      try {
        const p = await part(ctx, state);
        result.rows.push(...p.rows);
        result.curves.push(...p.curves);
        result.notes.push(...p.notes);
        result.failures.push(...(p.failures ?? []));
        result.details[name] = { ...(p.details as object), durationS: Math.round((performance.now() - t0) / 100) / 10 };
        ctx.progress(`scale/${name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      } catch (err) {
        const e = ensureError(err);
        result.failures.push(`scale/${name}: ${e.stack ?? e.message}`);
        ctx.progress(`scale/${name}: FAILED: ${e.stack ?? e.message}`);
      }
    }
    return result;
  },
};
