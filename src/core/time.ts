/**
 * Strict ISO 8601 timestamps, shared by event validation and the CLI: a date
 * part is required, impossible dates are refused (Date.UTC would roll
 * 2026-02-30 over to March), and no offset means UTC, so a timestamp never
 * depends on the time zone of the process that parses it.
 */

/** Earliest time accepted (the epoch). */
export const MIN_TIME_MS = 0;
/** Latest time accepted: far-future times are almost always unit errors. */
export const MAX_TIME_MS = Date.UTC(2200, 0, 1);

/** A time in epoch ms, or why the text is not one. */
export type TimeParse = { readonly kind: "time"; readonly ms: number } | { readonly kind: "invalid"; readonly reason: string };

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?)?$/;

export const invalidTime = (reason: string): TimeParse => ({ kind: "invalid", reason });

/** Checks `ms` lies in 1970..2200. */
export function timeInRange(ms: number, text: string): TimeParse {
  if (!Number.isFinite(ms) || ms < MIN_TIME_MS || ms > MAX_TIME_MS) {
    return invalidTime(`${JSON.stringify(text)} is outside 1970..2200`);
  }
  return { kind: "time", ms };
}

/** Parses ISO 8601 (`2026-06-08`, `2026-06-08T14:23`, `2026-06-08T14:23:05.120Z`, `2026-06-08 14:23+02:00`); undefined when the text is not ISO-shaped. */
export function parseIsoTime(text: string): TimeParse | undefined {
  const m = ISO.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "", , sign, offH = "0", offM = "0"] = m;
  const year = Number(y);
  const month = Number(mo) - 1;
  const day = Number(d);
  const local = Date.UTC(year, month, day, Number(h), Number(mi), Number(s), Number(frac.padEnd(3, "0").slice(0, 3)));
  const check = new Date(local);
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month || check.getUTCDate() !== day || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) {
    return invalidTime(`${JSON.stringify(text)} is not a calendar date and time`);
  }
  if (Number(offH) > 23 || Number(offM) > 59) return invalidTime(`${JSON.stringify(text)} has a bad UTC offset`);
  const offsetMs = (Number(offH) * 60 + Number(offM)) * 60_000 * (sign === "-" ? -1 : 1);
  return timeInRange(local - offsetMs, text);
}
