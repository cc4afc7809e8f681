import { test } from "node:test";
import assert from "node:assert/strict";
import { durationText, fieldValuesFlag, formatCommandHelp, timeoutFlagSpec, timeoutMs, wantsJson, listArg, listFlag, parseCommandLine, positiveIntFlag, quantileFlag, UsageError } from "../../src/cli/args.js";
import type { CommandSpec } from "../../src/cli/command.js";
import { parseDuration, parseFieldValues, parsePositiveInt, parseQuantile, type ValueParse } from "../../src/cli/values.js";

function value<T>(r: ValueParse<T>): T {
  assert.equal(r.kind, "value", `expected a value, got ${JSON.stringify(r)}`);
  return (r as { value: T }).value;
}

function reason(r: ValueParse<unknown>): string {
  assert.equal(r.kind, "invalid", `expected a refusal, got ${JSON.stringify(r)}`);
  return (r as { reason: string }).reason;
}

test("field=value pairs: split at the first =, in order", () => {
  assert.deepEqual(value(parseFieldValues([])), {});
  assert.deepEqual(value(parseFieldValues(["country=de", "device=mobile"])), { country: "de", device: "mobile" });
  assert.deepEqual(Object.keys(value(parseFieldValues(["b=1", "a=2"]))), ["b", "a"]);
  assert.deepEqual(value(parseFieldValues(["q=a=b"])), { q: "a=b" });
  assert.deepEqual(value(parseFieldValues(["note="])), { note: "" });
  assert.deepEqual(value(parseFieldValues([" currency =EUR"])), { currency: "EUR" });
});

test("field=value pairs: no =, no field, a field twice are refused with the word", () => {
  assert.match(reason(parseFieldValues(["country"])), /expected field=value, got "country"/);
  assert.match(reason(parseFieldValues(["=de"])), /field name before "=", got "=de"/);
  assert.match(reason(parseFieldValues(["a=1", "a=2"])), /field "a" given twice \("1" and "2"\)/);
  assert.match(reason(parseFieldValues(["a=1", "a=1"])), /given twice/);
});

test("quantiles: (0, 1]; 0 is refused because the API reads it as the median", () => {
  assert.equal(value(parseQuantile("0.5")), 0.5);
  assert.equal(value(parseQuantile("1")), 1);
  assert.equal(value(parseQuantile(".99")), 0.99);
  assert.equal(value(parseQuantile("1e-3")), 0.001);
  for (const bad of ["0", "-0.1", "1.01", "", "abc", "NaN", "Infinity", "50%"]) {
    assert.match(reason(parseQuantile(bad)), /greater than 0 and at most 1/, bad);
  }
});

test("positive integers: digits only, at least 1", () => {
  assert.equal(value(parsePositiveInt("10")), 10);
  assert.equal(value(parsePositiveInt("007")), 7);
  for (const bad of ["0", "-1", "1.5", "1e3", "", " 3", "ten", "99999999999999999999"]) {
    assert.match(reason(parsePositiveInt(bad)), /expected a positive integer/, bad);
  }
});

test("durations: a number with a unit, several units, or a bare number of milliseconds", () => {
  for (const [text, ms] of [
    ["500ms", 500],
    ["5s", 5_000],
    ["1.5s", 1_500],
    ["2m", 120_000],
    ["1h", 3_600_000],
    ["1m30s", 90_000],
    ["2S", 2_000],
    ["10000", 10_000],
    ["1", 1],
  ] as const) {
    assert.equal(value(parseDuration(text)), ms, text);
  }
  for (const bad of ["", "5x", "s", "-5s", "5 s", "1e3", "0", "0s", "0.1ms", "1d", "ten"]) {
    assert.match(reason(parseDuration(bad)), /(expected a number with a unit \(500ms, 5s, 2m|at least 1ms).*got /, bad);
  }
  // The help writes defaults as durations the parser reads back.
  for (const ms of [10_000, 120_000, 90_000, 500]) assert.equal(value(parseDuration(durationText(ms))), ms);
  assert.match(timeoutFlagSpec(120_000).description, /500ms, 5s, 2m; a bare number is milliseconds \(default 2m\)/);
});

test("--timeout: the duration in ms, the fallback when absent, a usage error naming the flag", () => {
  const spec: CommandSpec = { name: "t", summary: "", args: [], flags: { timeout: timeoutFlagSpec(10_000) } };
  assert.equal(timeoutMs("t", parseCommandLine(spec, ["--timeout", "5s"])), 5_000);
  assert.equal(timeoutMs("t", parseCommandLine(spec, ["--timeout=250"])), 250);
  assert.equal(timeoutMs("t", parseCommandLine(spec, []), 42), 42);
  assert.throws(() => timeoutMs("t", parseCommandLine(spec, ["--timeout", "soon"])), (e: unknown) => e instanceof UsageError && /^--timeout: expected/.test(e.message));
});

test("--json is seen on any command line, also one that does not parse, but not after --", () => {
  assert.equal(wantsJson(["query", "--bogus", "--json"]), true);
  assert.equal(wantsJson(["query", "--", "--json"]), false);
  assert.equal(wantsJson(["query"]), false);
});

const spec: CommandSpec = {
  name: "demo",
  summary: "a demo",
  args: [
    { name: "metric", description: "the metric" },
    { name: "key", variadic: true, description: "keys" },
  ],
  flags: {
    from: { type: "string", value: "<time>", description: "start" },
    group: { type: "string", multiple: true, value: "<field=value>", description: "group" },
    k: { type: "string", value: "<n>", description: "how many" },
    quantile: { type: "string", value: "<q>", description: "q" },
    series: { type: "boolean", description: "series" },
  },
};

function usage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof UsageError, `expected a UsageError, got ${String(err)}`);
    return err.message;
  }
  assert.fail("expected a UsageError");
}

test("a variadic argument takes every remaining word, none included", () => {
  const none = parseCommandLine(spec, ["m"]);
  assert.deepEqual(listArg(none, "key"), []);
  const some = parseCommandLine(spec, ["m", "a-1", "--from", "-15m", "a-2", "--", "-odd"]);
  assert.equal(some.args.metric, "m");
  assert.deepEqual(listArg(some, "key"), ["a-1", "a-2", "-odd"]);
  assert.equal(some.flags.from, "-15m");
});

test("a multiple flag keeps every value in order; a one-letter flag takes one dash", () => {
  const p = parseCommandLine(spec, ["m", "--group", "a=1", "--group=b=2", "-k", "3", "--series"]);
  assert.deepEqual(listFlag(p, "group"), ["a=1", "b=2"]);
  assert.deepEqual(fieldValuesFlag("demo", p, "group"), { a: "1", b: "2" });
  assert.equal(positiveIntFlag("demo", p, "k", 10), 3);
  assert.equal(positiveIntFlag("demo", parseCommandLine(spec, ["m"]), "k", 10), 10);
  assert.equal(quantileFlag("demo", parseCommandLine(spec, ["m"]), "quantile"), 0);
  assert.equal(quantileFlag("demo", parseCommandLine(spec, ["m", "--quantile", "0.9"]), "quantile"), 0.9);
  assert.deepEqual(fieldValuesFlag("demo", parseCommandLine(spec, ["m"]), "group"), {});
});

test("bad flag values: the message names the flag", () => {
  assert.match(usage(() => fieldValuesFlag("demo", parseCommandLine(spec, ["m", "--group", "a"]), "group")), /^--group: expected field=value, got "a"$/);
  assert.match(usage(() => positiveIntFlag("demo", parseCommandLine(spec, ["m", "-k", "0"]), "k", 10)), /^-k: expected a positive integer, got "0"$/);
  assert.match(usage(() => quantileFlag("demo", parseCommandLine(spec, ["m", "--quantile", "2"]), "quantile")), /^--quantile: expected a number/);
  assert.match(usage(() => parseCommandLine(spec, ["m", "--nope"])), /unknown flag --nope; demo takes --from, --group, -k, --quantile, --series/);
  assert.match(usage(() => parseCommandLine(spec, ["m", "--group"])), /flag --group needs a value <field=value>/);
  assert.match(usage(() => parseCommandLine(spec, [])), /missing argument <metric>/);
});

test("an argument with choices: the word must be one of them, and the synopsis shows it", () => {
  const sub: CommandSpec = {
    name: "catalog",
    summary: "catalogs",
    args: [
      { name: "action", choices: ["validate"], description: "check it" },
      { name: "file", description: "the file" },
    ],
    flags: {},
  };
  assert.deepEqual(parseCommandLine(sub, ["validate", "c.json"]).args, { action: "validate", file: "c.json" });
  assert.match(usage(() => parseCommandLine(sub, ["frob", "c.json"])), /unknown action "frob"; expected validate/);
  assert.match(usage(() => parseCommandLine(sub, [])), /missing argument validate .*expected validate/);
  assert.match(usage(() => parseCommandLine(sub, ["validate"])), /missing argument <file>/);
  assert.match(usage(() => parseCommandLine(sub, ["validate", "a", "b"])), /unexpected argument "b"; catalog takes 2 \(validate <file>\)/);
  assert.match(formatCommandHelp(sub), /^usage: lambdactl catalog validate <file> \[flags\]$/m);
  assert.match(formatCommandHelp(spec), /^usage: lambdactl demo <metric> \[key\.\.\.\] \[flags\]$/m);
  assert.match(formatCommandHelp(spec), /^ {2}-k <n> +how many$/m);
});
