/**
 * Times on the lambdactl command line, parsed without I/O: the caller passes
 * "now", so the same text always gives the same answer in a test.
 *
 * Accepted forms (all resolve to epoch milliseconds):
 * - `now`
 * - relative to now: `-15m`, `+1h`, `now-15m`, `now+30s`, `-1h30m`; units
 *   `ms`, `s`, `m`, `h`, `d`, `w`
 * - epoch milliseconds: `1780928580000` (at least 11 digits; fewer digits are
 *   almost always epoch seconds, so they are refused with a hint)
 * - ISO 8601 with a date part: `2026-06-08`, `2026-06-08T14:23`,
 *   `2026-06-08T14:23:05.120Z`, `2026-06-08 14:23+02:00`; no offset means UTC
 */

import { invalidTime, MAX_TIME_MS, MIN_TIME_MS, parseIsoTime, timeInRange, type TimeParse } from "../core/time.js";

export { MAX_TIME_MS, MIN_TIME_MS, type TimeParse };

/** Milliseconds per relative-time unit. */
export const TimeUnitsMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
export type TimeUnit = keyof typeof TimeUnitsMs;

/** Epoch-millisecond numbers need at least this many digits (fewer ones are in early 1970). */
export const MIN_EPOCH_MS_DIGITS = 11;


/** One line listing the accepted forms, for error messages and help. */
export const TIME_FORMS = "now, -15m, now-1h, +30s, -1h30m, epoch milliseconds (1780928580000), or ISO 8601 (2026-06-08T14:23:00Z; no offset means UTC)";

const RELATIVE = /^(?:now)?([+-])((?:\d+(?:ms|s|m|h|d|w))+)$/;
const RELATIVE_PART = /(\d+)(ms|s|m|h|d|w)/g;
const invalid = invalidTime;
const inRange = timeInRange;

function parseRelative(sign: string, parts: string, nowMs: number, text: string): TimeParse {
  let offset = 0;
  for (const m of parts.matchAll(RELATIVE_PART)) offset += Number(m[1]) * TimeUnitsMs[m[2] as TimeUnit];
  return inRange(sign === "-" ? nowMs - offset : nowMs + offset, text);
}

function parseEpochMs(digits: string, text: string): TimeParse {
  if (digits.length < MIN_EPOCH_MS_DIGITS) {
    return invalid(`${JSON.stringify(text)} looks like epoch seconds; write epoch milliseconds (${digits}000) or ISO 8601`);
  }
  return inRange(Number(digits), text);
}

/**
 * Parses one command-line time (see the module header for the forms).
 * @param nowMs what `now` and relative forms are relative to, epoch ms.
 * @returns `{ kind: "time", ms }` (epoch ms) or `{ kind: "invalid", reason }` naming the text and the problem.
 */
export function parseTime(text: string, nowMs: number): TimeParse {
  const t = text.trim();
  if (t === "") return invalid(`empty time; expected ${TIME_FORMS}`);
  if (t.toLowerCase() === "now") return inRange(nowMs, t);
  const rel = RELATIVE.exec(t.toLowerCase());
  if (rel) return parseRelative(rel[1]!, rel[2]!, nowMs, t);
  if (/^\d+$/.test(t)) return parseEpochMs(t, t);
  const iso = parseIsoTime(t);
  if (iso) return iso;
  return invalid(`cannot parse ${JSON.stringify(t)} as a time; expected ${TIME_FORMS}`);
}
