#!/usr/bin/env node
/**
 * `npm run bench`: measures the runtime's figures next to raw baselines taken
 * in the same run on the same machine, and writes a table (stdout), JSON and an
 * SVG chart (bench/results/<date>-<git sha>.json|.svg). What each figure
 * measures, and the findings, are in docs/performance.md.
 */
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { mkdirSync } from "node:fs";
import { ensureError } from "../src/core/errors.js";
import { killTracked } from "./cleanup.js";
import type { BenchContext } from "./context.js";
import { startBenchEnv, type BenchEnv } from "./env.js";
import { REPO_ROOT } from "./paths.js";
import type { Figure, FigureResult } from "./figure.js";
import { archiverFigure } from "./figures/archiver.js";
import { batchFigure } from "./figures/batch.js";
import { failoverFigure } from "./figures/failover.js";
import { handoverFigure } from "./figures/handover.js";
import { freshnessFigure } from "./figures/freshness.js";
import { ingestFigure } from "./figures/ingest.js";
import { memoryFigure } from "./figures/memory.js";
import { queryFigure } from "./figures/query.js";
import { scaleFigure } from "./figures/scale/index.js";
import { DEFAULT_FIGURES, parseOptions, USAGE, UsageError, type FigureName } from "./options.js";
import { RATIO_DIRECTION, renderTable, writeReport, type BenchReport } from "./report.js";
import { checkCatalog } from "./workload.js";

const FIGURES: Record<FigureName, Figure> = {
  ingest: ingestFigure,
  freshness: freshnessFigure,
  query: queryFigure,
  batch: batchFigure,
  archiver: archiverFigure,
  memory: memoryFigure,
  failover: failoverFigure,
  handover: handoverFigure,
  scale: scaleFigure,
};

function resultBase(startedAt: Date, sha: string, quick: boolean, large: boolean, only: readonly FigureName[]): string {
  const parts = [startedAt.toISOString().slice(0, 10), sha];
  if (quick) parts.push("quick");
  if (large && only.includes("scale")) parts.push("large");
  if (only.join() !== DEFAULT_FIGURES.join()) parts.push(only.join("+"));
  return parts.join("-");
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseOptions(process.argv.slice(2), join(REPO_ROOT, "bench/results"));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (parsed === "help") {
    process.stdout.write(USAGE + "\n\nfigures:\n" + Object.values(FIGURES).map((f) => `  ${f.name.padEnd(10)} ${f.summary}`).join("\n") + "\n");
    return 0;
  }
  const opts = { ...parsed, outDir: resolve(parsed.outDir), profileDir: parsed.profileDir ? resolve(parsed.profileDir) : null };
  if (opts.profileDir) mkdirSync(opts.profileDir, { recursive: true });
  const startedAt = new Date();
  const t0 = performance.now();
  const progress = (m: string) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}\n`);

  let env: BenchEnv | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    progress(`${signal}: stopping child processes and removing temporary files`);
    killTracked();
    void (env?.close() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  env = await startBenchEnv(opts.profileDir);
  const figures: FigureResult[] = [];
  const failures: { figure: string; error: string }[] = [];
  try {
    checkCatalog(env.catalog);
    const m = env.machine;
    progress(`node ${m.node}, nats-server ${m.natsServer}, chDB ${m.chdbEngine} (npm chdb ${m.packages.chdb}), ${m.cores} cores; figures: ${opts.only.join(", ")}${opts.quick ? " (quick)" : ""}`);
    const ctx: BenchContext = { opts, env, progress };
    for (const name of opts.only) {
      const f0 = performance.now();
      try {
        const result = await FIGURES[name].run(ctx);
        figures.push(result);
        for (const f of result.failures ?? []) failures.push({ figure: name, error: f });
        progress(`${name}: ${result.failures?.length ? `${result.failures.length} part(s) FAILED` : "done"} in ${((performance.now() - f0) / 1000).toFixed(1)} s`);
      } catch (err) {
        const e = ensureError(err);
        failures.push({ figure: name, error: e.stack ?? e.message });
        progress(`${name}: FAILED: ${e.stack ?? e.message}`);
      }
    }
  } finally {
    await env.close();
  }

  const report: BenchReport = {
    schema: "lambda-bench/1",
    startedAt: startedAt.toISOString(),
    durationS: Math.round((performance.now() - t0) / 100) / 10,
    loadAverageAtEnd: loadavg().map((x) => Math.round(x * 100) / 100),
    options: opts,
    machine: env.machine,
    ratioDirection: RATIO_DIRECTION,
    figures,
    failures,
  };
  const paths = writeReport(opts.outDir, resultBase(startedAt, env.machine.gitSha, opts.quick, opts.large, opts.only), report);
  const rows = figures.flatMap((f) => f.rows);
  const m = env.machine;
  process.stdout.write(
    [
      "",
      `Lambda runtime bench: node ${m.node}, nats-server ${m.natsServer}, chDB ${m.chdbEngine}, ${m.cores} cores (${m.cpuModel}), ${m.gitSha}${m.gitDirty ? "+dirty" : ""}, ${report.durationS} s, ` +
        `load average ${m.loadAverageAtStart[0]} at start, ${report.loadAverageAtEnd[0]} at end`,
      RATIO_DIRECTION,
      "",
      renderTable(rows),
      "",
      ...figures.flatMap((f) => f.notes.map((n) => `* ${n}`)),
      ...failures.map((f) => `! ${f.figure} failed: ${f.error.split("\n")[0]}`),
      "",
      `results: ${paths.json}`,
      `chart:   ${paths.svg}`,
      ...(paths.curves ? [`curves:  ${paths.curves}`] : []),
      "",
    ].join("\n"),
  );
  return failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    killTracked();
    process.stderr.write(`bench: ${ensureError(err).stack}\n`);
    process.exit(1);
  },
);
