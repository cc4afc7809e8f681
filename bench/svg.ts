/**
 * A small self-contained SVG bar chart of the ratios (product vs baseline,
 * higher is better), with reference lines at 1.0 (as fast as the raw parts)
 * and 0.5 (the goal for ingest, query p99 and batch runs).
 */
import type { Row } from "./figure.js";
import { formatRatio } from "./format.js";

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
