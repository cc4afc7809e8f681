/**
 * The three outputs of a run: a table on stdout, the same as JSON (with the
 * machine and versions) and an SVG bar chart of the ratios.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { FigureResult, Row } from "./figure.js";
import { formatRatio, formatValue } from "./format.js";
import type { MachineInfo } from "./machine.js";
import type { BenchOptions } from "./options.js";
import { renderCurvesSvg, renderSvg } from "./svg.js";

export interface BenchReport {
  /** Format of this file; bump when fields change meaning. */
  readonly schema: "lambda-bench/1";
  readonly startedAt: string;
  readonly durationS: number;
  /** Load averages when the run ended (the start is in `machine`). */
  readonly loadAverageAtEnd: readonly number[];
  readonly options: BenchOptions;
  readonly machine: MachineInfo;
  /** How to read `ratio`. */
  readonly ratioDirection: string;
  readonly figures: readonly FigureResult[];
  /** Figures that failed, with the error. */
  readonly failures: readonly { figure: string; error: string }[];
}

/** How to read a ratio; printed above the table and stored in the JSON. */
export const RATIO_DIRECTION =
  "ratio = product/baseline for throughputs and baseline/product for latencies and durations: higher is better, 1.0 = as fast as the raw parts";

const measured = (v: number, spread: number, unit: string) => `${formatValue(v, unit)} ±${spread.toFixed(0)}%`;

function cells(r: Row): string[] {
  return [
    r.figure,
    r.label,
    r.unit,
    measured(r.product.median, r.product.spreadPct, r.unit),
    r.baseline ? measured(r.baseline.summary.median, r.baseline.summary.spreadPct, r.unit) : "-",
    r.baseline?.label ?? "",
    formatRatio(r.ratio),
    r.goal ? `${r.goal.text}: ${r.goal.met ? "met" : "NOT met"}` : "",
  ];
}

/** A plain-text table: one line per row, columns padded. */
export function renderTable(rows: readonly Row[]): string {
  const header = ["figure", "measure", "unit", "product (median ±spread)", "baseline (median ±spread)", "baseline is", "ratio", "goal"];
  const lines = [header, ...rows.map(cells)];
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const fmt = (l: string[]) => l.map((c, i) => (i >= 3 && i <= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [fmt(header), widths.map((w) => "-".repeat(w)).join("  "), ...lines.slice(1).map(fmt)].join("\n");
}

/** A Markdown table of the same rows (for docs/performance.md). */
export function renderMarkdown(rows: readonly Row[]): string {
  const header = ["figure", "measure", "unit", "product", "baseline", "baseline is", "ratio", "goal"];
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  return [
    `| ${header.join(" | ")} |`,
    `| ${header.map((_, i) => (i >= 3 && i <= 4 ? "---:" : i === 6 ? "---:" : "---")).join(" | ")} |`,
    ...rows.map((r) => `| ${cells(r).map(esc).join(" | ")} |`),
  ].join("\n");
}

/**
 * Writes `<base>.json`, `<base>.svg` and `<base>.md` into `dir`, and
 * `<base>-curves.svg` when a figure has curves; returns their paths.
 */
export function writeReport(dir: string, base: string, report: BenchReport): { json: string; svg: string; md: string; curves: string | null } {
  mkdirSync(dir, { recursive: true });
  const rows = report.figures.flatMap((f) => f.rows);
  const json = join(dir, `${base}.json`);
  const svg = join(dir, `${base}.svg`);
  const md = join(dir, `${base}.md`);
  writeFileSync(json, JSON.stringify(report, null, 2) + "\n");
  const title = `lambda runtime bench ${report.machine.gitSha}${report.machine.gitDirty ? "+dirty" : ""} · ${report.startedAt.slice(0, 10)} · ${report.machine.cores} cores${report.options.quick ? " · quick" : ""}`;
  writeFileSync(svg, renderSvg(title, rows));
  writeFileSync(md, renderMarkdown(rows) + "\n");
  const curves = report.figures.flatMap((f) => f.curves ?? []);
  const curvesPath = curves.length > 0 ? join(dir, `${base}-curves.svg`) : null;
  if (curvesPath) writeFileSync(curvesPath, renderCurvesSvg(`${title} · how cost grows`, curves));
  return { json, svg, md, curves: curvesPath };
}
