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

/** Duration units of `--timeout` and other duration flags, in milliseconds. */
export const DurationUnitsMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;

/** How a duration is written, for help and error messages. */
export const DURATION_FORMS = "a number with a unit (500ms, 5s, 2m, 1h, 1m30s), or a bare number of milliseconds";

const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

/**
 * Parses a positive duration: `500ms`, `5s`, `1.5s`, `2m`, `1h`, `1m30s`, or
 * a bare number, which means milliseconds (what duration flags meant before
 * they took units, so scripts keep working).
 * @returns whole milliseconds (at least 1), or why the text is not a duration.
 */
export function parseDuration(text: string): ValueParse<number> {
  const t = text.trim().toLowerCase();
  let ms: number;
  if (/^\d+$/.test(t)) ms = Number(t);
  else if (DURATION.test(t)) {
    ms = 0;
    for (const m of t.matchAll(DURATION_PART)) ms += Number(m[1]) * DurationUnitsMs[m[2] as keyof typeof DurationUnitsMs];
  } else return invalid(`expected ${DURATION_FORMS}, got ${JSON.stringify(text)}`);
  ms = Math.round(ms);
  if (!Number.isSafeInteger(ms) || ms < 1) return invalid(`expected a duration of at least 1ms (${DURATION_FORMS}), got ${JSON.stringify(text)}`);
  return ok(ms);
}
