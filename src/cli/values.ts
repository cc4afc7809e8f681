/**
 * Flag values of the query commands, parsed without I/O: `field=value` pairs
 * (`--group`, `--where`), a quantile, a count, a run number. Each parser returns the value or
 * the reason it is not one; src/cli/args.ts turns a reason into a usage error
 * naming the flag.
 */
import type { RunNumber } from "../core/ids.js";

/** A parse that succeeded with `value`, or failed for `reason` (naming the text and what was expected). */
export type ValueParse<T> = { readonly kind: "value"; readonly value: T } | { readonly kind: "invalid"; readonly reason: string };

const ok = <T>(value: T): ValueParse<T> => ({ kind: "value", value });
const invalid = (reason: string): ValueParse<never> => ({ kind: "invalid", reason });

/**
 * Parses `field=value` words into a map. The value is everything after the
 * first `=` and may be empty or hold more `=`; the field may not be empty.
 * Giving a field twice is refused (a key has one value per field), also with
 * the same value, so a typo in a long command line does not go unnoticed.
 * @returns the map in the order given, or why a word is not a pair.
 */
export function parseFieldValues(words: readonly string[]): ValueParse<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const w of words) {
    const eq = w.indexOf("=");
    if (eq < 0) return invalid(`expected field=value, got ${JSON.stringify(w)}`);
    const field = w.slice(0, eq).trim();
    if (field === "") return invalid(`expected field=value with a field name before "=", got ${JSON.stringify(w)}`);
    if (Object.hasOwn(out, field)) return invalid(`field ${JSON.stringify(field)} given twice (${JSON.stringify(out[field])} and ${JSON.stringify(w.slice(eq + 1))}); give each field once`);
    out[field] = w.slice(eq + 1);
  }
  return ok(out);
}

/**
 * Parses a quantile: a number greater than 0 and at most 1 (`0.5` is the median,
 * `0.99` the 99th percentile). 0 is refused because the API reads a quantile of 0
 * as "not given" (the median), which is not what someone asking for 0 means.
 */
export function parseQuantile(text: string): ValueParse<number> {
  const t = text.trim();
  const q = t === "" ? NaN : Number(t);
  if (!Number.isFinite(q) || q <= 0 || q > 1) {
    return invalid(`expected a number greater than 0 and at most 1 (0.5 is the median, 0.99 the 99th percentile), got ${JSON.stringify(text)}`);
  }
  return ok(q);
}

/** Parses a positive integer written in decimal digits (e.g. a top-k count). */
export function parsePositiveInt(text: string): ValueParse<number> {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) return invalid(`expected a positive integer, got ${JSON.stringify(text)}`);
  return ok(n);
}

/**
 * Parses a batch run number as an operator writes it: a positive integer in
 * decimal digits (runs start at 1; "the current run" is written by leaving the
 * argument out, not as 0).
 */
export function parseRunNumberText(text: string): ValueParse<RunNumber> {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) {
    return invalid(`expected a run number (a positive integer, e.g. 3; see \`lambdactl watermark history\`), got ${JSON.stringify(text)}`);
  }
  return ok(n as RunNumber);
}
