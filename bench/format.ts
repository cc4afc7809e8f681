/** Number formatting shared by the table and the chart. */

/** Three significant digits with a k/M suffix for rates and counts. */
export function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${(v / 1e3).toPrecision(3)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** A value in its unit: rates compact, milliseconds and seconds with sensible decimals. */
export function formatValue(v: number, unit: string): string {
  if (unit === "ms") return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  if (unit === "s") return v.toFixed(2);
  if (unit === "%") return v.toFixed(1);
  return compact(v);
}

/** A ratio as "0.74x", or "-" without one. */
export function formatRatio(r: number | null): string {
  return r === null ? "-" : `${r.toFixed(2)}x`;
}
