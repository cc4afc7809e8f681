/**
 * Text output of lambdactl: aligned tables, label/value blocks, ages and
 * durations. Pure string building; the commands decide where it goes.
 */

/**
 * An estimated number (a HyperLogLog distinct count, a quantile sketch's value), already
 * rounded to the digits worth showing: printed as "≈1446" and right-aligned like a number.
 */
export interface Estimate {
  readonly estimate: number;
}

/** Sign that marks an {@link Estimate} in text output. */
export const ESTIMATE_SIGN = "≈";

/** A table cell: numbers and estimates are right-aligned, everything else left-aligned. */
export type Cell = string | number | Estimate;

/** What a cell shows for a value that is absent (e.g. the min of no events). */
export const ABSENT = "-";

/** An optional number as a cell: the number, or {@link ABSENT}. */
export function optionalCell(v: number | undefined | null): Cell {
  return v === undefined || v === null ? ABSENT : v;
}

/** Spaces between two table columns. */
const COLUMN_GAP = "  ";

function cellText(c: Cell): string {
  if (typeof c === "number") return formatNumber(c);
  // An estimate comes rounded to the digits worth showing: print them all.
  return typeof c === "string" ? c : `${ESTIMATE_SIGN}${String(c.estimate)}`;
}

/** A number as an operator wants to read it: integers whole, others with up to 3 decimals. */
export function formatNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return String(Number(n.toFixed(3)));
}

/**
 * Renders rows under a header line, columns aligned. A column is right-aligned
 * when every cell in it is a number, an estimate or {@link ABSENT}, so its header lines up
 * with the digits (a column of absent values lines up with its numeric neighbours).
 * @returns the table, one line per row plus the header, ending in a newline; no trailing spaces.
 */
export function table(columns: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const numeric = columns.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] !== "string" || r[i] === ABSENT));
  const text = [columns as readonly Cell[], ...rows].map((r) => columns.map((_, i) => cellText(r[i] ?? "")));
  const widths = columns.map((_, i) => Math.max(...text.map((r) => r[i]!.length)));
  return text
    .map((r) => r.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(COLUMN_GAP).trimEnd())
    .join("\n")
    .concat("\n");
}

/**
 * Renders `label  value` lines with the values aligned.
 * @returns the block, ending in a newline.
 */
export function keyValues(pairs: readonly (readonly [string, Cell])[]): string {
  const width = Math.max(0, ...pairs.map(([label]) => label.length));
  return pairs.map(([label, value]) => `${label.padEnd(width)}${COLUMN_GAP}${cellText(value)}`.trimEnd()).join("\n").concat("\n");
}

/** A span of milliseconds as its two largest units, e.g. "750ms", "12s", "3m 4s", "2h 5m", "3d 4h". */
export function formatSpan(ms: number): string {
  const a = Math.abs(Math.round(ms));
  if (a < 1_000) return `${a}ms`;
  const s = Math.floor(a / 1_000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m}m ${s % 60}s` : `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h}h ${m % 60}m` : `${h}h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d}d ${h % 24}h` : `${d}d`;
}

/** How long ago `atMs` was, seen at `nowMs`: "12s ago", or "in 2s" when the clocks disagree. */
export function formatAge(atMs: number, nowMs: number): string {
  const age = nowMs - atMs;
  return age >= 0 ? `${formatSpan(age)} ago` : `in ${formatSpan(age)}`;
}

/** A duration in ms with one decimal, e.g. "12.3 ms". */
export function formatMs(ms: number): string {
  return `${ms.toFixed(1)} ms`;
}

/** An optional time as ISO 8601, or {@link ABSENT}. */
export function formatTime(d: Date | undefined): string {
  return d === undefined ? ABSENT : d.toISOString();
}

/** An optional time as ISO 8601 for `--json`, or null when absent. */
export function isoOrNull(d: Date | undefined): string | null {
  return d === undefined ? null : d.toISOString();
}

/** A time to the second, ISO 8601 without milliseconds ("2026-06-08T14:23:05Z"), or {@link ABSENT}. */
export function formatInstant(d: Date | undefined): string {
  return d === undefined ? ABSENT : d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * A time range to the second: "2026-06-08T14:23:00Z .. 14:27:59Z" when both ends
 * fall on the same day, both in full otherwise; {@link ABSENT} when either is absent.
 */
export function formatInstantRange(from: Date | undefined, to: Date | undefined): string {
  if (from === undefined || to === undefined) return ABSENT;
  const a = formatInstant(from);
  const b = formatInstant(to);
  return a.slice(0, 10) === b.slice(0, 10) ? `${a} .. ${b.slice(11)}` : `${a} .. ${b}`;
}

/** Elapsed time for progress and durations: "340ms", "1.4s", "12.0s", then "3m 4s" and up. */
export function formatElapsed(ms: number): string {
  const a = Math.max(0, ms);
  if (a < 1_000) return `${Math.round(a)}ms`;
  if (a < 60_000) return `${(a / 1_000).toFixed(1)}s`;
  return formatSpan(a);
}

/** Milliseconds as a table number with one decimal (12.3), so a column of them right-aligns. */
export function msCell(ms: number): number {
  return Number(ms.toFixed(1));
}
