import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_TIME_MS, parseTime, type TimeParse } from "../../src/cli/time.js";

const NOW = Date.UTC(2026, 5, 8, 14, 23, 5, 120);

function ms(text: string, now = NOW): number {
  const r: TimeParse = parseTime(text, now);
  assert.equal(r.kind, "time", `expected ${JSON.stringify(text)} to parse, got ${JSON.stringify(r)}`);
  return (r as { ms: number }).ms;
}

function reason(text: string, now = NOW): string {
  const r = parseTime(text, now);
  assert.equal(r.kind, "invalid", `expected ${JSON.stringify(text)} to be refused, got ${JSON.stringify(r)}`);
  return (r as { reason: string }).reason;
}

test("now is the time passed in", () => {
  assert.equal(ms("now"), NOW);
  assert.equal(ms(" NOW "), NOW);
});

test("relative times count back or forward from now", () => {
  assert.equal(ms("-15m"), NOW - 15 * 60_000);
  assert.equal(ms("now-15m"), NOW - 15 * 60_000);
  assert.equal(ms("+30s"), NOW + 30_000);
  assert.equal(ms("now+2h"), NOW + 2 * 3_600_000);
  assert.equal(ms("-1h30m"), NOW - 90 * 60_000);
  assert.equal(ms("-500ms"), NOW - 500);
  assert.equal(ms("-1d"), NOW - 86_400_000);
  assert.equal(ms("-2w"), NOW - 14 * 86_400_000);
  assert.equal(ms("-1m1ms"), NOW - 60_001);
});

test("malformed relative times are refused with the accepted forms", () => {
  for (const t of ["-15", "-15x", "15m", "now-", "-m", "now-15m-1h", "- 15m"]) {
    assert.match(reason(t), /expected now, -15m/, t);
  }
});

test("epoch milliseconds are taken as they are", () => {
  assert.equal(ms("1780928580000"), 1780928580000);
  assert.equal(ms(String(NOW)), NOW);
});

test("epoch seconds are refused with a hint", () => {
  assert.match(reason("1717857780"), /looks like epoch seconds; write epoch milliseconds \(1717857780000\)/);
});

test("ISO 8601 with an offset or Z", () => {
  assert.equal(ms("2026-06-08T14:23:00Z"), Date.UTC(2026, 5, 8, 14, 23));
  assert.equal(ms("2026-06-08T14:23:00.120Z"), Date.UTC(2026, 5, 8, 14, 23, 0, 120));
  assert.equal(ms("2026-06-08T14:23:00.1204567Z"), Date.UTC(2026, 5, 8, 14, 23, 0, 120));
  assert.equal(ms("2026-06-08T16:23:00+02:00"), Date.UTC(2026, 5, 8, 14, 23));
  assert.equal(ms("2026-06-08T09:23-0500"), Date.UTC(2026, 5, 8, 14, 23));
  assert.equal(ms("2026-06-08 14:23Z"), Date.UTC(2026, 5, 8, 14, 23));
});

test("ISO 8601 without an offset is UTC, whatever the local time zone", () => {
  assert.equal(ms("2026-06-08T14:23"), Date.UTC(2026, 5, 8, 14, 23));
  assert.equal(ms("2026-06-08T14:23:05"), Date.UTC(2026, 5, 8, 14, 23, 5));
  assert.equal(ms("2026-06-08"), Date.UTC(2026, 5, 8));
});

test("impossible dates and times are refused, not rolled over", () => {
  for (const t of ["2026-02-30", "2026-13-01", "2026-06-08T24:00Z", "2026-06-08T14:60Z", "2026-06-08T14:23:61Z"]) {
    assert.match(reason(t), /not a calendar date and time/, t);
  }
  assert.match(reason("2026-06-08T14:23+25:00"), /bad UTC offset/);
});

test("leap days exist only in leap years", () => {
  assert.equal(ms("2028-02-29"), Date.UTC(2028, 1, 29));
  assert.match(reason("2026-02-29"), /not a calendar date/);
});

test("times outside 1970..2200 are refused", () => {
  assert.match(reason("2200-01-02"), /outside 1970\.\.2200/);
  assert.match(reason("-1d", 0), /outside 1970\.\.2200/);
  assert.match(reason("+1d", MAX_TIME_MS), /outside 1970\.\.2200/);
  assert.equal(ms("now", MAX_TIME_MS), MAX_TIME_MS);
});

test("anything else is refused naming the text", () => {
  assert.match(reason("yesterday"), /cannot parse "yesterday" as a time/);
  assert.match(reason(""), /empty time/);
  assert.match(reason("06/08/2026"), /cannot parse/);
  assert.match(reason("2026-6-8"), /cannot parse/);
});
