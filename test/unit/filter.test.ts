/**
 * Metric filters (src/core/filter.ts): matches() per operator and field type,
 * `in`, and/or/not, and the null semantics both layers share: a comparison or
 * `in` on a missing (null) value is false, and `not` of it is true. The batch
 * side (src/batch/sql.ts) is checked against the same semantics on chDB in
 * test/integration/batch-sql.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { FieldValue } from "../../src/core/events.js";
import { filterFields, matches, type CompareOp, type Filter } from "../../src/core/filter.js";
import { prng } from "./prng.js";

const cmp = (field: string, op: CompareOp, value: FieldValue): Filter => ({ kind: "cmp", field, op, value });
const isIn = (field: string, values: FieldValue[]): Filter => ({ kind: "in", field, values });
const and = (...filters: Filter[]): Filter => ({ kind: "and", filters });
const or = (...filters: Filter[]): Filter => ({ kind: "or", filters });
const not = (filter: Filter): Filter => ({ kind: "not", filter });

const T = Date.UTC(2026, 5, 8, 14, 0, 0);
/** An event with one field of every type, and one missing optional field of every type. */
const EVENT: Record<string, FieldValue> = { s: "de", i: 10, f: 2.5, b: true, t: T, ns: null, ni: null, nf: null, nb: null, nt: null };

test("each comparison operator on ints, floats and timestamps", () => {
  // [op, value, expected on i = 10]
  const cases: [CompareOp, number, boolean][] = [
    ["eq", 10, true],
    ["eq", 11, false],
    ["ne", 10, false],
    ["ne", 11, true],
    ["lt", 11, true],
    ["lt", 10, false],
    ["lt", 9, false],
    ["le", 10, true],
    ["le", 9, false],
    ["gt", 9, true],
    ["gt", 10, false],
    ["ge", 10, true],
    ["ge", 11, false],
  ];
  for (const [op, v, want] of cases) {
    assert.equal(matches(cmp("i", op, v), EVENT), want, `i(10) ${op} ${v}`);
    // The same shifted to a float and to a timestamp around the event's values.
    assert.equal(matches(cmp("f", op, v - 7.5), EVENT), want, `f(2.5) ${op} ${v - 7.5}`);
    assert.equal(matches(cmp("t", op, T + (v - 10)), EVENT), want, `t ${op} T${v - 10 >= 0 ? "+" : ""}${v - 10}`);
  }
  // Negative values and zero.
  assert.equal(matches(cmp("i", "gt", -1), { i: 0 }), true);
  assert.equal(matches(cmp("i", "lt", 0), { i: -5 }), true);
  assert.equal(matches(cmp("f", "eq", 0), { f: 0 }), true);
});

test("eq and ne on strings and booleans compare exactly (case, unicode)", () => {
  assert.equal(matches(cmp("s", "eq", "de"), EVENT), true);
  assert.equal(matches(cmp("s", "eq", "DE"), EVENT), false);
  assert.equal(matches(cmp("s", "eq", "de "), EVENT), false);
  assert.equal(matches(cmp("s", "ne", "fr"), EVENT), true);
  assert.equal(matches(cmp("s", "ne", "de"), EVENT), false);
  assert.equal(matches(cmp("s", "eq", "日本"), { s: "日本" }), true);
  assert.equal(matches(cmp("s", "eq", "e\u0301"), { s: "\u00e9" }), false, "no unicode normalisation: bytes differ, SQL differs too");
  assert.equal(matches(cmp("b", "eq", true), EVENT), true);
  assert.equal(matches(cmp("b", "eq", false), EVENT), false);
  assert.equal(matches(cmp("b", "ne", false), EVENT), true);
  assert.equal(matches(cmp("b", "ne", true), EVENT), false);
  // A boolean is not the number 1, nor a string "true".
  assert.equal(matches(cmp("b", "eq", 1), EVENT), false);
  assert.equal(matches(cmp("s", "eq", 10), { s: "10" }), false);
});

test("in: member, not a member, one value, several types", () => {
  assert.equal(matches(isIn("s", ["fr", "de"]), EVENT), true);
  assert.equal(matches(isIn("s", ["fr", "it"]), EVENT), false);
  assert.equal(matches(isIn("s", ["de"]), EVENT), true);
  assert.equal(matches(isIn("i", [1, 10, 100]), EVENT), true);
  assert.equal(matches(isIn("i", [1, 100]), EVENT), false);
  assert.equal(matches(isIn("f", [2.5]), EVENT), true);
  assert.equal(matches(isIn("b", [false]), EVENT), false);
  assert.equal(matches(isIn("b", [false, true]), EVENT), true);
  assert.equal(matches(isIn("t", [T]), EVENT), true);
  assert.equal(matches(isIn("i", ["10"]), EVENT), false, "the string \"10\" is not the int 10");
});

test("and, or, not: truth tables and nesting", () => {
  const yes = cmp("i", "eq", 10);
  const no = cmp("i", "eq", 11);
  const table: [Filter, boolean][] = [
    [and(yes, yes), true],
    [and(yes, no), false],
    [and(no, yes), false],
    [and(no, no), false],
    [or(yes, yes), true],
    [or(yes, no), true],
    [or(no, yes), true],
    [or(no, no), false],
    [not(yes), false],
    [not(no), true],
    [not(not(yes)), true],
    [and(yes), true],
    [or(no), false],
    [and(yes, yes, yes, no), false],
    [or(no, no, no, yes), true],
    // (s = de AND (i < 5 OR f >= 2.5)) AND NOT (b = false)
    [and(and(cmp("s", "eq", "de"), or(cmp("i", "lt", 5), cmp("f", "ge", 2.5))), not(cmp("b", "eq", false))), true],
    [or(and(cmp("s", "eq", "fr"), yes), not(isIn("i", [10, 20]))), false],
  ];
  table.forEach(([f, want], i) => assert.equal(matches(f, EVENT), want, `case ${i}: ${JSON.stringify(f)}`));
});

test("null semantics: every comparison and `in` on a missing value is false, and not() of it is true", () => {
  const ops: CompareOp[] = ["eq", "ne", "lt", "le", "gt", "ge"];
  // [null field, a value of its type]
  const fields: [string, FieldValue][] = [
    ["ns", "de"],
    ["ni", 10],
    ["nf", 2.5],
    ["nb", true],
    ["nt", T],
  ];
  for (const [field, value] of fields) {
    for (const op of ops) {
      if ((field === "ns" || field === "nb") && op !== "eq" && op !== "ne") continue; // the catalog refuses ordering there
      const f = cmp(field, op, value);
      assert.equal(matches(f, EVENT), false, `${field}(null) ${op} ${JSON.stringify(value)}`);
      assert.equal(matches(not(f), EVENT), true, `not(${field}(null) ${op} ${JSON.stringify(value)})`);
      // A field absent from the event is the same as null.
      assert.equal(matches(f, {}), false, `absent ${field} ${op}`);
      assert.equal(matches(not(f), {}), true, `not(absent ${field} ${op})`);
    }
    assert.equal(matches(isIn(field, [value]), EVENT), false, `${field}(null) in [...]`);
    assert.equal(matches(not(isIn(field, [value])), EVENT), true, `not(${field}(null) in [...])`);
  }
  // In particular ne on null is false (not "unknown, hence true"), and eq and ne are not complements on null.
  assert.equal(matches(cmp("ns", "ne", "de"), EVENT), false);
  assert.equal(matches(or(cmp("ns", "eq", "de"), cmp("ns", "ne", "de")), EVENT), false);
  // The boolean result combines as usual: null never propagates through and/or/not.
  assert.equal(matches(and(not(cmp("ni", "gt", 0)), cmp("i", "eq", 10)), EVENT), true);
  assert.equal(matches(or(cmp("ni", "gt", 0), cmp("i", "eq", 10)), EVENT), true);
  assert.equal(matches(not(or(cmp("ni", "gt", 0), cmp("nf", "lt", 0))), EVENT), true);
  assert.equal(matches(not(and(cmp("ni", "gt", 0), cmp("i", "eq", 10))), EVENT), true);
});

/** A random filter tree over the fields of EVENT (nulls included), up to `depth` levels. */
function randomFilter(rnd: ReturnType<typeof prng>, depth: number): Filter {
  const leaf = (): Filter => {
    const [field, values] = rnd.pick<[string, FieldValue[]]>([
      ["i", [0, 5, 10, 20]],
      ["ni", [0, 10]],
      ["f", [-1, 2.5, 3]],
      ["nf", [2.5]],
      ["t", [T - 1, T, T + 1]],
      ["s", ["de", "fr"]],
      ["ns", ["de"]],
    ]);
    if (rnd.chance(0.25)) return isIn(field, values.filter(() => rnd.chance(0.6)).concat(rnd.pick(values)));
    const ordered = field !== "s" && field !== "ns";
    return cmp(field, rnd.pick<CompareOp>(ordered ? ["eq", "ne", "lt", "le", "gt", "ge"] : ["eq", "ne"]), rnd.pick(values));
  };
  if (depth === 0 || rnd.chance(0.3)) return leaf();
  const kind = rnd.pick(["and", "or", "not"] as const);
  if (kind === "not") return not(randomFilter(rnd, depth - 1));
  return { kind, filters: Array.from({ length: rnd.int(1, 3) }, () => randomFilter(rnd, depth - 1)) };
}

test("property: De Morgan's laws and double negation hold on random trees, nulls included (two-valued logic)", () => {
  const events: Record<string, FieldValue>[] = [EVENT, { ...EVENT, ni: 10, nf: 2.5, ns: "de" }, { ...EVENT, i: 0, f: -1, s: "fr", t: T + 1 }, {}];
  for (let seed = 1; seed <= 300; seed++) {
    const rnd = prng(seed);
    const a = randomFilter(rnd, 3);
    const b = randomFilter(rnd, 3);
    for (const e of events) {
      const what = `seed ${seed} on ${JSON.stringify(e)}`;
      assert.equal(matches(not(and(a, b)), e), matches(or(not(a), not(b)), e), `${what}: not(a and b) = not a or not b`);
      assert.equal(matches(not(or(a, b)), e), matches(and(not(a), not(b)), e), `${what}: not(a or b) = not a and not b`);
      assert.equal(matches(not(not(a)), e), matches(a, e), `${what}: not not a = a`);
      assert.equal(matches(and(a, b), e), matches(a, e) && matches(b, e), `${what}: and`);
      assert.equal(matches(or(a, b), e), matches(a, e) || matches(b, e), `${what}: or`);
    }
  }
});

test("filterFields lists every field a filter reads, once", () => {
  const f = and(cmp("i", "gt", 1), or(isIn("s", ["de"]), not(cmp("ni", "eq", 3))), not(and(cmp("i", "lt", 9), cmp("t", "ge", T))));
  assert.deepEqual([...filterFields(f)].sort(), ["i", "ni", "s", "t"]);
  assert.deepEqual([...filterFields(null)], []);
});
