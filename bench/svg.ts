/**
 * Small self-contained SVG charts: a bar chart of the ratios (product vs
 * baseline, higher is better), with reference lines at 1.0 (as fast as the raw
 * parts) and 0.5 (the issue's goal for ingest, query p99 and batch runs); and
 * panels of curves (a measurement against a size, product and baseline lines).
 */
import type { Curve } from "./curve.js";
import type { Row } from "./figure.js";
import { compact, formatRatio } from "./format.js";

const LABEL_W = 500;
/** Label characters that fit LABEL_W at 11px. */
const LABEL_CHARS = 80;
const BAR_W = 420;
const ROW_H = 22;
const TOP = 48;

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function colour(r: number): string {
  if (r >= 1) return "#2e7d32";
  if (r >= 0.5) return "#f9a825";
  return "#c62828";
}

/** The chart of every row that has a ratio, as a standalone SVG document. */
export function renderSvg(title: string, rows: readonly Row[]): string {
  const bars = rows.filter((r) => r.ratio !== null);
  const max = Math.max(1.25, Math.min(3, Math.ceil(Math.max(...bars.map((r) => r.ratio!), 0) * 4) / 4));
  const x = (v: number) => LABEL_W + (Math.min(v, max) / max) * BAR_W;
  const height = TOP + bars.length * ROW_H + 40;
  const width = LABEL_W + BAR_W + 80;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${escape(title)}</text>`,
    `<text x="10" y="38" fill="#555">ratio vs a raw baseline measured in the same run; higher is better, 1.0 = as fast as the raw parts</text>`,
  ];
  bars.forEach((r, i) => {
    const y = TOP + i * ROW_H;
    const label = `${r.goal?.kind === "ratio_at_least" ? "* " : ""}${r.figure}: ${r.label} (${r.unit}) vs ${r.baseline!.label}`;
    out.push(`<text x="${LABEL_W - 8}" y="${y + 15}" text-anchor="end" font-size="11">${escape(label.length > LABEL_CHARS ? label.slice(0, LABEL_CHARS - 1) + "…" : label)}</text>`);
    out.push(`<rect x="${LABEL_W}" y="${y + 4}" width="${(x(r.ratio!) - LABEL_W).toFixed(1)}" height="${ROW_H - 8}" fill="${colour(r.ratio!)}"/>`);
    out.push(`<text x="${(x(r.ratio!) + 4).toFixed(1)}" y="${y + 15}">${formatRatio(r.ratio)}</text>`);
  });
  const bottom = TOP + bars.length * ROW_H;
  for (const [v, dash, text] of [
    [1, "", "1.0 = baseline"],
    [0.5, "4 3", "0.5 = goal of rows marked *"],
  ] as const) {
    out.push(`<line x1="${x(v)}" y1="${TOP}" x2="${x(v)}" y2="${bottom}" stroke="#333" stroke-dasharray="${dash}"/>`);
    out.push(`<text x="${x(v)}" y="${bottom + 16}" text-anchor="middle" fill="#333">${text}</text>`);
  }
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

const PANEL_W = 460;
const PANEL_H = 280;
/** Plot area inside a panel: margins for the title, the axes' ticks and labels. */
const PLOT = { left: 70, right: 20, top: 34, bottom: 64 } as const;
const PANEL_COLUMNS = 2;
/** A range whose high end is at least this many times its low end is drawn on a log scale. */
const LOG_RANGE = 10;
const SERIES_COLOURS = ["#1565c0", "#2e7d32", "#6a1b9a", "#ef6c00"] as const;
const BASELINE_COLOUR = "#757575";

/** An axis: where a value lands (0..1 along the axis) and the values to tick. */
interface Axis {
  readonly at: (v: number) => number;
  readonly ticks: readonly number[];
  readonly log: boolean;
}

/**
 * A linear axis from 0 (or the lowest value, when below 0) with about five
 * round ticks; a log axis with ticks at 1, 2, 5 × powers of ten, when every
 * value is positive and they span LOG_RANGE times or more.
 */
export function curveAxis(values: readonly number[]): Axis {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  if (lo > 0 && hi / lo >= LOG_RANGE) {
    const l0 = Math.log10(lo);
    const l1 = Math.log10(hi);
    const ticks: number[] = [];
    for (let e = Math.floor(l0); e <= Math.ceil(l1); e++) for (const m of [1, 2, 5]) if (m * 10 ** e >= lo / 1.0001 && m * 10 ** e <= hi * 1.0001) ticks.push(m * 10 ** e);
    return { at: (v) => (Math.log10(v) - l0) / (l1 - l0), ticks, log: true };
  }
  const min = Math.min(0, lo);
  const raw = (hi - min) / 5 || 1;
  const step = [1, 2, 2.5, 5, 10].map((m) => m * 10 ** Math.floor(Math.log10(raw))).find((s) => s >= raw)!;
  const max = Math.ceil(hi / step) * step || step;
  const ticks = Array.from({ length: Math.round((max - min) / step) + 1 }, (_, i) => min + i * step);
  return { at: (v) => (v - min) / (max - min), ticks, log: false };
}

function renderPanel(c: Curve, ox: number, oy: number): string[] {
  const w = PANEL_W - PLOT.left - PLOT.right;
  const h = PANEL_H - PLOT.top - PLOT.bottom;
  const points = c.series.flatMap((s) => s.points);
  const xa = curveAxis(points.map((p) => p.x));
  const ya = curveAxis(points.flatMap((p) => [p.min, p.max]));
  const px = (v: number) => (ox + PLOT.left + xa.at(v) * w).toFixed(1);
  const py = (v: number) => (oy + PLOT.top + h - ya.at(v) * h).toFixed(1);
  const out = [
    `<text x="${ox + 10}" y="${oy + 20}" font-weight="bold">${escape(c.title)}</text>`,
    `<rect x="${ox + PLOT.left}" y="${oy + PLOT.top}" width="${w}" height="${h}" fill="none" stroke="#999"/>`,
  ];
  for (const t of xa.ticks) out.push(`<text x="${px(t)}" y="${oy + PLOT.top + h + 14}" text-anchor="middle" font-size="10">${compact(t)}</text>`);
  for (const t of ya.ticks) {
    out.push(`<line x1="${ox + PLOT.left}" y1="${py(t)}" x2="${ox + PLOT.left + w}" y2="${py(t)}" stroke="#eee"/>`);
    out.push(`<text x="${ox + PLOT.left - 4}" y="${py(t)}" text-anchor="end" dominant-baseline="middle" font-size="10">${compact(t)}</text>`);
  }
  out.push(`<text x="${ox + PLOT.left + w / 2}" y="${oy + PLOT.top + h + 28}" text-anchor="middle" fill="#555">${escape(c.xLabel)}${xa.log ? " (log)" : ""}</text>`);
  out.push(`<text x="${ox + 14}" y="${oy + PLOT.top + h / 2}" text-anchor="middle" fill="#555" transform="rotate(-90 ${ox + 14} ${oy + PLOT.top + h / 2})">${escape(c.yUnit)}${ya.log ? " (log)" : ""}</text>`);
  let product = 0;
  c.series.forEach((s, i) => {
    const colour = s.role === "baseline" ? BASELINE_COLOUR : SERIES_COLOURS[product++ % SERIES_COLOURS.length]!;
    const dash = s.role === "baseline" ? ` stroke-dasharray="5 3"` : "";
    out.push(`<polyline fill="none" stroke="${colour}" stroke-width="2"${dash} points="${s.points.map((p) => `${px(p.x)},${py(p.y)}`).join(" ")}"/>`);
    for (const p of s.points) {
      // The range over the repetitions, then the median.
      out.push(`<line x1="${px(p.x)}" y1="${py(p.min)}" x2="${px(p.x)}" y2="${py(p.max)}" stroke="${colour}"/>`);
      out.push(`<circle cx="${px(p.x)}" cy="${py(p.y)}" r="3" fill="${colour}"/>`);
    }
    const ly = oy + PLOT.top + h + 42 + (i >> 1) * 12;
    const lx = ox + PLOT.left + (i % 2) * (w / 2);
    out.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 16}" y2="${ly - 4}" stroke="${colour}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${lx + 20}" y="${ly}" font-size="10">${escape(s.label.length > 34 ? s.label.slice(0, 33) + "…" : s.label)}</text>`);
  });
  return out;
}

/**
 * Curves as a standalone SVG document: one panel per curve, two per row; each
 * series a line through the medians with the repetitions' range as a bar;
 * baselines grey and dashed. Axes spanning LOG_RANGE times or more are logarithmic.
 */
export function renderCurvesSvg(title: string, curves: readonly Curve[]): string {
  const rows = Math.ceil(curves.length / PANEL_COLUMNS);
  const width = PANEL_W * Math.min(PANEL_COLUMNS, Math.max(1, curves.length));
  const height = 40 + rows * PANEL_H;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="22" font-size="14" font-weight="bold">${escape(title)}</text>`,
    ...curves.flatMap((c, i) => renderPanel(c, (i % PANEL_COLUMNS) * PANEL_W, 40 + Math.floor(i / PANEL_COLUMNS) * PANEL_H)),
    `</svg>`,
  ].join("\n") + "\n";
}
