/**
 * Aggregate states (src/core/aggregate.ts), without ClickHouse: addEvent,
 * mergeState and finalize per aggregate kind against hand-computed values; null
 * (optional) values skipped by every aggregate but count; the merge laws the
 * batch/speed seam relies on (commutative, associative, and the state of a
 * union is the merge of the parts' states) on random states; the wire encoding
 * and its refusals; and the metric key encoding of group-by values.
 *
 * Float sums are the one non-exact aggregate (floating-point addition depends on
 * the order): they are compared within FLOAT_SUM_TOLERANCE of the sum of the
 * absolute values added, the bound on the rounding error of any summation order.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCatalog, type MetricDef } from "../../src/core/catalog.js";
import type { FieldValue } from "../../src/core/events.js";
import {
  addEvent,
  decodeState,
  emptyState,
  encodeState,
  finalize,
  keyOfEvent,
  keyOfValues,
  merged,
  mergeState,
  valuesOfKey,
  type AggState,
} from "../../src/core/aggregate.js";
import { createHllState, createQuantileState, hllAdd, quantileAdd, type HllState, type QuantileState } from "../../src/core/sketch.js";
import { decode, encode } from "../../src/nats/codec.js";
import { prng, type Prng } from "./prng.js";

const FLOAT_SUM_TOLERANCE = 1e-9;
const T = Date.UTC(2026, 5, 8, 14, 0, 0);

const CATALOG = parseCatalog(
  {
    sources: {
      s: {
        fields: { id: "string", ts: "timestamp", g: "string", h: "int", flag: "bool", n: "int?", x: "float?", w: "string?", b: "bool?", t: "timestamp?" },
        idField: "id",
        timeField: "ts",
        partitionKey: "g",
      },
    },
    metrics: {
      all: {
        source: "s",
        window: "1m",
        aggregates: {
          c: "count",
          sum_n: { sum: "n" },
          sum_x: { sum: "x" },
          min_n: { min: "n" },
          max_n: { max: "n" },
          min_x: { min: "x" },
          max_t: { max: "t" },
          avg_n: { avg: "n" },
          avg_x: { avg: "x" },
          d_w: { distinct: "w" },
          d_n: { distinct: "n" },
          d_b: { distinct: "b" },
          q_n: { quantiles: "n" },
          q_x: { quantiles: "x" },
        },
      },
      keyed: { source: "s", groupBy: ["g", "h", "flag"], window: "1m", aggregates: { c: "count" } },
      by_h: { source: "s", groupBy: ["h"], window: "1m", aggregates: { c: "count" } },
    },
  },
  "aggregate.test",
);
const ALL = CATALOG.metrics.get("all")!;
/** Index of aggregate `name` of ALL. */
const at = (name: string): number => {
  const i = ALL.aggregates.findIndex((a) => a.name === name);
  assert.ok(i >= 0, `fixture: aggregate ${name}`);
  return i;
};

type Fields = Record<string, FieldValue>;
const event = (over: Fields): Fields => ({ id: "e", ts: T, g: "k", h: 1, flag: true, n: null, x: null, w: null, b: null, t: null, ...over });

function stateOf(metric: MetricDef, events: readonly Fields[]): AggState {
  const s = emptyState(metric);
  for (const e of events) addEvent(metric, s, e);
  return s;
}
const hllOf = (...texts: string[]): HllState => {
  const s = createHllState();
  for (const t of texts) hllAdd(s, t);
  return s;
};
const quantilesOf = (...xs: number[]): QuantileState => {
  const s = createQuantileState();
  for (const x of xs) quantileAdd(s, x);
  return s;
};
/** The quantile sketch's bound: the estimate is within 2^-8 of the true value, relatively. */
const assertNear = (got: number | null, want: number, what: string) => {
  assert.ok(got !== null && Math.abs(got - want) <= Math.abs(want) * 2 ** -8, `${what}: ${got} is not within 2^-8 of ${want}`);
};

const E1 = event({ id: "e1", n: 3, x: 1.5, w: "a", b: true, t: T });
const E2 = event({ id: "e2", n: -2, x: null, w: "b", b: false, t: null });
const E3 = event({ id: "e3", n: null, x: -0.25, w: "a", b: null, t: T + 5 });
const E4 = event({ id: "e4", n: 10, x: 4, w: null, b: true, t: T - 1 });

test("an empty state: count and sum 0, min/max/avg/quantiles null, distinct 0", () => {
  const s = emptyState(ALL);
  assert.equal(s.n, 0);
  assert.equal(s.parts.length, ALL.aggregates.length);
  const want: Record<string, number | null> = { c: 0, sum_n: 0, sum_x: 0, min_n: null, max_n: null, min_x: null, max_t: null, avg_n: null, avg_x: null, d_w: 0, d_n: 0, d_b: 0, q_n: null, q_x: null };
  for (const [name, v] of Object.entries(want)) assert.equal(finalize(s, at(name), 0.5), v, name);
});

test("addEvent and finalize per kind, against hand-computed values", () => {
  const s = stateOf(ALL, [E1, E2, E3, E4]);
  assert.equal(s.n, 4);
  // count counts events, whatever their optional fields hold.
  assert.equal(finalize(s, at("c"), 0), 4);
  // n: 3, -2, 10 (e3 null)
  assert.deepEqual(s.parts[at("sum_n")], { k: "sum", s: 11 });
  assert.deepEqual(s.parts[at("min_n")], { k: "min", v: -2 });
  assert.deepEqual(s.parts[at("max_n")], { k: "max", v: 10 });
  assert.deepEqual(s.parts[at("avg_n")], { k: "avg", s: 11, c: 3 });
  assert.equal(finalize(s, at("sum_n"), 0), 11);
  assert.equal(finalize(s, at("min_n"), 0), -2);
  assert.equal(finalize(s, at("max_n"), 0), 10);
  assert.equal(finalize(s, at("avg_n"), 0), 11 / 3);
  // x: 1.5, -0.25, 4 (e2 null); dyadic, so the sum is exact in any order.
  assert.deepEqual(s.parts[at("sum_x")], { k: "sum", s: 5.25 });
  assert.deepEqual(s.parts[at("min_x")], { k: "min", v: -0.25 });
  assert.deepEqual(s.parts[at("avg_x")], { k: "avg", s: 5.25, c: 3 });
  assert.equal(finalize(s, at("avg_x"), 0), 1.75);
  // t: T, T+5, T-1 (e2 null); a timestamp is epoch ms.
  assert.equal(finalize(s, at("max_t"), 0), T + 5);
  // distinct: the HLL of the canonical strings of the non-null values.
  assert.deepEqual(s.parts[at("d_w")], { k: "distinct", hll: hllOf("a", "b") });
  assert.deepEqual(s.parts[at("d_n")], { k: "distinct", hll: hllOf("3", "-2", "10") });
  assert.deepEqual(s.parts[at("d_b")], { k: "distinct", hll: hllOf("true", "false") });
  assert.equal(Math.round(finalize(s, at("d_w"), 0)!), 2);
  assert.equal(Math.round(finalize(s, at("d_n"), 0)!), 3);
  assert.equal(Math.round(finalize(s, at("d_b"), 0)!), 2);
  // quantiles: one bucket count per non-null value; q picks rank floor(q·(n-1)).
  assert.deepEqual(s.parts[at("q_n")], { k: "quantiles", b: quantilesOf(3, -2, 10) });
  assert.deepEqual(s.parts[at("q_x")], { k: "quantiles", b: quantilesOf(1.5, -0.25, 4) });
  assertNear(finalize(s, at("q_n"), 0), -2, "q_n at 0");
  assertNear(finalize(s, at("q_n"), 0.5), 3, "q_n at 0.5");
  assertNear(finalize(s, at("q_n"), 1), 10, "q_n at 1");
  assertNear(finalize(s, at("q_x"), 0.5), 1.5, "q_x at 0.5");
  assertNear(finalize(s, at("q_x"), 0.99), 1.5, "q_x at 0.99 (rank floor(0.99·2) = 1)");
  assert.throws(() => finalize(s, at("q_x"), 1.5), RangeError, "a quantile outside 0..1");
});

test("null and absent optional values are skipped by every aggregate but count", () => {
  const allNull = event({ id: "z1" });
  const absent: Fields = { id: "z2", ts: T, g: "k", h: 1, flag: true };
  const s = stateOf(ALL, [allNull, absent]);
  const want = emptyState(ALL);
  want.n = 2;
  assert.deepEqual(s, want);
  assert.equal(finalize(s, at("c"), 0), 2);
  assert.equal(finalize(s, at("min_n"), 0), null, "min of no value is null, not 0");
  assert.equal(finalize(s, at("avg_x"), 0), null, "avg of no value is null, not NaN");
  // Nulls among values change nothing but the count.
  const withNulls = stateOf(ALL, [E1, allNull, E4, absent]);
  const without = stateOf(ALL, [E1, E4]);
  without.n += 2;
  assert.deepEqual(withNulls, without);
});

test("min and max keep the extreme, including negative values and 0", () => {
  const s = stateOf(ALL, [event({ n: 0 }), event({ n: -7 }), event({ n: 5 }), event({ n: -7 })]);
  assert.equal(finalize(s, at("min_n"), 0), -7);
  assert.equal(finalize(s, at("max_n"), 0), 5);
  const zero = stateOf(ALL, [event({ n: 0 })]);
  assert.equal(finalize(zero, at("min_n"), 0), 0, "a minimum of 0 is a value, not 'none'");
  assert.equal(finalize(zero, at("max_n"), 0), 0);
});

test("mergeState per kind, against hand-computed values; an empty state is the identity on either side", () => {
  const a = stateOf(ALL, [E1, E2]);
  const b = stateOf(ALL, [E3, E4]);
  const m = merged(ALL, a, b);
  assert.equal(m.n, 4);
  assert.deepEqual(m.parts[at("sum_n")], { k: "sum", s: 11 });
  assert.deepEqual(m.parts[at("min_n")], { k: "min", v: -2 });
  assert.deepEqual(m.parts[at("max_n")], { k: "max", v: 10 });
  assert.deepEqual(m.parts[at("avg_x")], { k: "avg", s: 5.25, c: 3 });
  assert.deepEqual(m.parts[at("d_w")], { k: "distinct", hll: hllOf("a", "b") });
  assert.deepEqual(m.parts[at("q_x")], { k: "quantiles", b: quantilesOf(1.5, -0.25, 4) });
  assert.deepEqual(m, stateOf(ALL, [E1, E2, E3, E4]), "merge of the parts = state of the union");
  // min/max where one side saw no value: the other side's value wins, in either order.
  const noN = stateOf(ALL, [E3]);
  const someN = stateOf(ALL, [E2]);
  for (const [x, y] of [
    [noN, someN],
    [someN, noN],
  ] as const) {
    const r = merged(ALL, x, y);
    assert.equal(finalize(r, at("min_n"), 0), -2);
    assert.equal(finalize(r, at("max_n"), 0), -2);
    assert.equal(finalize(r, at("avg_n"), 0), -2);
  }
  // Identity.
  const copy = merged(ALL, a);
  mergeState(copy, emptyState(ALL));
  assert.deepEqual(copy, a);
  const e = emptyState(ALL);
  mergeState(e, a);
  assert.deepEqual(e, a);
});

test("merged() copies: changing the result changes none of its inputs", () => {
  const a = stateOf(ALL, [E1]);
  const b = stateOf(ALL, [E2]);
  // As encoded: structuredClone would drop the sketch states' classes.
  const before = [encodeState(a), encodeState(b)];
  const m = merged(ALL, a, undefined, b);
  addEvent(ALL, m, E4);
  mergeState(m, stateOf(ALL, [E3]));
  assert.deepEqual([encodeState(a), encodeState(b)], before);
});

// ------------------------------------------------------------ random states

function randomEvent(rnd: Prng, i: number): Fields {
  const maybe = <T>(v: T): T | null => (rnd.chance(0.25) ? null : v);
  return event({
    id: `r${i}`,
    n: maybe(rnd.pick([0, rnd.int(-5, 5), rnd.int(-1e12, 1e12)])),
    x: maybe(rnd.pick([0, (rnd.next() - 0.5) * 1e3, (rnd.next() - 0.5) * 1e-6, rnd.int(-100, 100)])),
    w: maybe(rnd.pick(["a", "b", "日本", "😀", `w${rnd.int(0, 500)}`])),
    b: maybe(rnd.chance(0.5)),
    t: maybe(T + rnd.int(-1e6, 1e6)),
  });
}
const randomEvents = (rnd: Prng, n: number, from: number) => Array.from({ length: n }, (_, i) => randomEvent(rnd, from + i));
/** Sum of |x| over events: the scale of the rounding error of a float sum over them. */
const floatScale = (events: readonly Fields[]) => events.reduce((acc, e) => acc + Math.abs((e.x as number | null) ?? 0), 0);

/** Sorted [key, value] pairs of a Map, for an order-independent comparison. */
const sorted = (m: Iterable<[number, number]>) => [...m].sort(([a], [b]) => a - b);

/** Equal states, float sums within FLOAT_SUM_TOLERANCE · scale; every other part exactly. */
function assertSameState(metric: MetricDef, got: AggState, want: AggState, scale: number, what: string) {
  assert.equal(got.n, want.n, `${what}: n`);
  metric.aggregates.forEach((a, i) => {
    const p = got.parts[i]!;
    const q = want.parts[i]!;
    const where = `${what}: ${a.name}`;
    assert.equal(p.k, q.k, where);
    const close = (x: number, y: number) => {
      if (a.fieldType === "float") assert.ok(Math.abs(x - y) <= FLOAT_SUM_TOLERANCE * Math.max(scale, 1e-300), `${where}: ${x} vs ${y}`);
      else assert.equal(x, y, where);
    };
    if (p.k === "sum" && q.k === "sum") close(p.s, q.s);
    else if (p.k === "avg" && q.k === "avg") {
      close(p.s, q.s);
      assert.equal(p.c, q.c, where);
    } else if (p.k === "distinct" && q.k === "distinct") assert.deepEqual(sorted(p.hll), sorted(q.hll), where);
    else if (p.k === "quantiles" && q.k === "quantiles") assert.deepEqual(sorted(p.b), sorted(q.b), where);
    else assert.deepEqual(p, q, where);
  });
}

test("property: merge is commutative and associative, and the state of a union is the merge of its parts' states", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const rnd = prng(seed);
    const [ea, eb, ec] = [randomEvents(rnd, rnd.int(0, 40), 0), randomEvents(rnd, rnd.int(0, 40), 100), randomEvents(rnd, rnd.int(0, 40), 200)];
    const [a, b, c] = [stateOf(ALL, ea), stateOf(ALL, eb), stateOf(ALL, ec)];
    const scale = floatScale([...ea, ...eb, ...ec]);
    const what = `seed ${seed}`;
    // Commutative, exactly: 0 + a + b and 0 + b + a round the same.
    assert.deepEqual(merged(ALL, a, b), merged(ALL, b, a), `${what}: a⊕b = b⊕a`);
    // Associative, up to float-sum rounding.
    assertSameState(ALL, merged(ALL, merged(ALL, a, b), c), merged(ALL, a, merged(ALL, b, c)), scale, `${what}: (a⊕b)⊕c = a⊕(b⊕c)`);
    // The seam: state(a ∪ b ∪ c) = state(a) ⊕ state(b) ⊕ state(c).
    assertSameState(ALL, stateOf(ALL, [...ea, ...eb, ...ec]), merged(ALL, a, b, c), scale, `${what}: state of the union`);
    // And the HLL merge is idempotent (a ⊕ a has the registers of a).
    const twice = merged(ALL, a, a);
    assert.deepEqual(sorted((twice.parts[at("d_w")] as { hll: HllState }).hll), sorted((a.parts[at("d_w")] as { hll: HllState }).hll), `${what}: HLL idempotent`);
  }
});

test("encodeState/decodeState round trip, also through msgpack (the wire and snapshot form)", () => {
  for (let seed = 1; seed <= 100; seed++) {
    const rnd = prng(seed);
    const s = stateOf(ALL, randomEvents(rnd, rnd.int(0, 60), 0));
    assert.deepEqual(decodeState(ALL, encodeState(s)), s, `seed ${seed}`);
    assert.deepEqual(decodeState(ALL, decode(encode(encodeState(s)))), s, `seed ${seed}: msgpack`);
  }
  // The documented shape: [n, ...one entry per aggregate].
  const e = encodeState(stateOf(ALL, [E1]));
  assert.equal(e.length, ALL.aggregates.length + 1);
  assert.equal(e[0], 1);
  // decodeState builds fresh maps: changing the decoded state leaves the source alone.
  const src = stateOf(ALL, [E1]);
  const d = decodeState(ALL, encodeState(src));
  addEvent(ALL, d, E4);
  assert.deepEqual(src, stateOf(ALL, [E1]));
});

test("decodeState refuses input that does not have the metric's shape, naming the metric", () => {
  const good = encodeState(stateOf(ALL, [E1]));
  const bad: [unknown, string][] = [
    [null, "null"],
    [undefined, "undefined"],
    [{}, "an object"],
    ["x", "a string"],
    [5, "a number"],
    [[], "an empty list"],
    [good.slice(0, -1), "one part short"],
    [[...good, 0], "one part too many"],
    [["1", ...good.slice(1)], "n as a string"],
    [[null, ...good.slice(1)], "n null"],
  ];
  for (const [e, what] of bad) {
    assert.throws(() => decodeState(ALL, e), (err: unknown) => err instanceof TypeError && /all/.test(err.message), what);
  }
});

test("decodeState refuses parts of the wrong type or out of range (a corrupt snapshot or batch row)", () => {
  const good = encodeState(stateOf(ALL, [E1, E2]));
  const withPart = (name: string, v: unknown) => {
    const e = [...good];
    e[at(name) + 1] = v;
    return e;
  };
  const bad: [unknown, string][] = [
    [[-1, ...good.slice(1)], "n negative"],
    [[1.5, ...good.slice(1)], "n not whole"],
    [withPart("sum_n", "x"), "sum a string"],
    [withPart("sum_n", null), "sum null"],
    [withPart("min_n", "x"), "min a string"],
    [withPart("avg_n", 5), "avg a number, not [sum, count]"],
    [withPart("avg_n", [1]), "avg without its count"],
    [withPart("avg_n", ["a", 1]), "avg sum a string"],
    [withPart("d_w", "ab"), "distinct a string"],
    [withPart("d_w", [[1]]), "distinct register without a rank"],
    [withPart("d_w", [[5000, 1]]), "distinct register index ≥ 4096"],
    [withPart("d_w", [[1, 99]]), "distinct rank above the maximum"],
    [withPart("q_x", "x"), "quantiles a string"],
    [withPart("q_x", [[1, 0]]), "quantile bucket with count 0"],
    [withPart("q_x", [[1, -1]]), "quantile bucket with a negative count"],
  ];
  const accepted: string[] = [];
  for (const [e, what] of bad) {
    try {
      decodeState(ALL, e);
      accepted.push(what);
    } catch {
      // refused, as it should be
    }
  }
  assert.deepEqual(accepted, [], `decodeState accepted malformed parts: ${accepted.join("; ")}`);
});

// ------------------------------------------------------------ metric keys

test("keyOfValues: '' for no field, the value itself for one, UTF-8 length-prefixed parts for several", () => {
  assert.equal(keyOfValues([]), "");
  assert.equal(keyOfValues(["art-1"]), "art-1");
  assert.equal(keyOfValues(["a:1"]), "a:1");
  assert.equal(keyOfValues(["12"]), "12");
  // "é" is 2 UTF-8 bytes, "😀" 4: the prefix counts bytes, as ClickHouse length() does.
  assert.equal(keyOfValues(["é", "a:1", "12"]), "2:é3:a:12:12");
  assert.equal(keyOfValues(["😀", "x"]), "4:😀1:x");
  assert.equal(keyOfValues(["", "1:"]), "0:2:1:");
  assert.deepEqual(valuesOfKey("", 0), []);
  assert.deepEqual(valuesOfKey("a:1", 1), ["a:1"]);
  assert.deepEqual(valuesOfKey("2:é3:a:12:12", 3), ["é", "a:1", "12"]);
});

test("keyOfEvent takes the canonical strings of the group-by fields in catalog order", () => {
  const e = event({ g: "日本:1", h: -42, flag: false });
  assert.equal(keyOfEvent(CATALOG.metrics.get("keyed")!, e), keyOfValues(["日本:1", "-42", "false"]));
  assert.equal(keyOfEvent(CATALOG.metrics.get("keyed")!, e), "8:日本:13:-425:false");
  assert.equal(keyOfEvent(CATALOG.metrics.get("by_h")!, e), "-42");
  assert.equal(keyOfEvent(ALL, e), "", "a global metric has one key");
});

const KEY_ALPHABETS = ["0123456789", ":", "abc:12", "éß日本", "😀𝄞", "a1:😀é"];
function randomValue(rnd: Prng): string {
  const chars = [...rnd.pick(KEY_ALPHABETS)];
  return Array.from({ length: rnd.int(0, 6) }, () => rnd.pick(chars)).join("");
}

test("property: valuesOfKey inverts keyOfValues for 0, 1, 3 and other field counts, and distinct values give distinct keys", () => {
  const rnd = prng(7);
  const seen = new Map<string, string>();
  for (let i = 0; i < 5000; i++) {
    const fields = rnd.pick([0, 1, 2, 3, 3, 4]);
    const values = Array.from({ length: fields }, () => randomValue(rnd));
    const key = keyOfValues(values);
    assert.deepEqual(valuesOfKey(key, fields), values, `${JSON.stringify(values)} → ${JSON.stringify(key)}`);
    if (fields >= 2) {
      // Injective across tuples of the same length (the key of a metric always has the same count).
      const id = `${fields}|${key}`;
      const prev = seen.get(id);
      assert.ok(prev === undefined || prev === JSON.stringify(values), `${prev} and ${JSON.stringify(values)} share key ${JSON.stringify(key)}`);
      seen.set(id, JSON.stringify(values));
    }
  }
});

test("valuesOfKey refuses a key that is not one of the given number of fields", () => {
  const bad: [string, number][] = [
    ["abc", 2],
    ["5:ab", 2],
    ["1:a", 2],
    ["1:a1:b1:c", 2],
    [":a1:b", 2],
    ["x:a1:b", 2],
    ["1:a1:b", 3],
    ["", 2],
  ];
  for (const [key, n] of bad) assert.throws(() => valuesOfKey(key, n), TypeError, `${JSON.stringify(key)} as ${n} fields`);
});
