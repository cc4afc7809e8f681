/**
 * Aggregate states: what a (metric, key, window) holds in either layer. The
 * batch layer reads them from its views, the speed layer builds them event by
 * event, and serving merges them and turns the merged state into a number.
 * Because states merge (count and sum add, min/max take the extreme, HLL
 * registers take the maximum, quantile buckets add), batch state ⊕ speed
 * state is the state over the union of their events, for every aggregate.
 *
 * Float sums (sum and avg of float fields) are the one place where the two
 * layers may differ: floating-point addition depends on the order, so they
 * agree up to rounding. Everything else is equal as state.
 */
import type { AggregateDef, MetricDef } from "./catalog_types.js";
import type { FieldValue } from "./events.js";
import { canonicalString, createHllState, createQuantileState, hllAdd, hllDecode, hllEncode, hllEstimate, hllMerge, quantileAdd, quantileDecode, quantileEncode, quantileEstimate, quantileMerge, type HllState, type QuantileState } from "./sketch.js";

export type PartState =
  | { readonly k: "count" }
  | { readonly k: "sum"; s: number }
  | { readonly k: "min" | "max"; v: number | null }
  | { readonly k: "avg"; s: number; c: number }
  | { readonly k: "distinct"; readonly hll: HllState }
  | { readonly k: "quantiles"; readonly b: QuantileState };

/** State of one (metric, key, window) or of a merge of several. */
export interface AggState {
  /** Events counted. */
  n: number;
  /** One per aggregate of the metric, in catalog order. */
  readonly parts: PartState[];
}

function emptyPart(a: AggregateDef): PartState {
  switch (a.kind) {
    case "count":
      return { k: "count" };
    case "sum":
      return { k: "sum", s: 0 };
    case "min":
    case "max":
      return { k: a.kind, v: null };
    case "avg":
      return { k: "avg", s: 0, c: 0 };
    case "distinct":
      return { k: "distinct", hll: createHllState() };
    case "quantiles":
      return { k: "quantiles", b: createQuantileState() };
  }
}

export function emptyState(metric: MetricDef): AggState {
  return { n: 0, parts: metric.aggregates.map(emptyPart) };
}

/** Adds one event (its normalised fields) to `state`. Null values are skipped by every aggregate but count. */
export function addEvent(metric: MetricDef, state: AggState, fields: Readonly<Record<string, FieldValue>>): void {
  state.n++;
  for (let i = 0; i < metric.aggregates.length; i++) {
    const a = metric.aggregates[i]!;
    if (a.field === null) continue;
    const v = fields[a.field];
    if (v === null || v === undefined) continue;
    const p = state.parts[i]!;
    switch (p.k) {
      case "sum":
        p.s += v as number;
        break;
      case "min":
        if (p.v === null || (v as number) < p.v) p.v = v as number;
        break;
      case "max":
        if (p.v === null || (v as number) > p.v) p.v = v as number;
        break;
      case "avg":
        p.s += v as number;
        p.c++;
        break;
      case "distinct":
        hllAdd(p.hll, canonicalString(v));
        break;
      case "quantiles":
        quantileAdd(p.b, v as number);
        break;
      case "count":
        break;
    }
  }
}

/** Merges `from` into `into` (both of the same metric). */
export function mergeState(into: AggState, from: AggState): void {
  into.n += from.n;
  for (let i = 0; i < into.parts.length; i++) {
    const p = into.parts[i]!;
    const q = from.parts[i]!;
    switch (p.k) {
      case "sum":
        p.s += (q as typeof p).s;
        break;
      case "min": {
        const v = (q as typeof p).v;
        if (v !== null && (p.v === null || v < p.v)) p.v = v;
        break;
      }
      case "max": {
        const v = (q as typeof p).v;
        if (v !== null && (p.v === null || v > p.v)) p.v = v;
        break;
      }
      case "avg":
        p.s += (q as typeof p).s;
        p.c += (q as typeof p).c;
        break;
      case "distinct":
        hllMerge(p.hll, (q as typeof p).hll);
        break;
      case "quantiles":
        quantileMerge(p.b, (q as typeof p).b);
        break;
      case "count":
        break;
    }
  }
}

/**
 * The value of aggregate `index` of a state: count → events; sum; min/max and
 * avg → null when no value was seen; distinct → HLL estimate; quantiles → the
 * `q` quantile (null when empty).
 */
export function finalize(state: AggState, index: number, q: number): number | null {
  const p = state.parts[index]!;
  switch (p.k) {
    case "count":
      return state.n;
    case "sum":
      return p.s;
    case "min":
    case "max":
      return p.v;
    case "avg":
      return p.c === 0 ? null : p.s / p.c;
    case "distinct":
      return hllEstimate(p.hll);
    case "quantiles":
      return quantileEstimate(p.b, q) ?? null;
  }
}

/** Wire form (msgpack-friendly): [n, ...parts]; sketches as two sorted parallel arrays, so equal states encode equally. */
export type EncodedState = [number, ...unknown[]];

export function encodeState(state: AggState): EncodedState {
  return [
    state.n,
    ...state.parts.map((p) => {
      switch (p.k) {
        case "count":
          return 0;
        case "sum":
          return p.s;
        case "min":
        case "max":
          return p.v;
        case "avg":
          return [p.s, p.c];
        case "distinct": {
          const { idx, rank } = hllEncode(p.hll);
          return [idx, rank];
        }
        case "quantiles": {
          const { bucket, count } = quantileEncode(p.b);
          return [bucket, count];
        }
      }
    }),
  ];
}

const isNum = (v: unknown): v is number => typeof v === "number" && !Number.isNaN(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const pair = (v: unknown): [unknown, unknown] | undefined => (Array.isArray(v) && v.length === 2 ? [v[0], v[1]] : undefined);
const numbers = (v: unknown): number[] => {
  if (!Array.isArray(v) || !v.every(isNum)) throw new TypeError(`expected a list of numbers, got ${JSON.stringify(v)?.slice(0, 60)}`);
  return v;
};

/** @throws TypeError (or SketchStateError) when `e` does not fit the metric: a corrupt snapshot or reply. */
export function decodeState(metric: MetricDef, e: unknown): AggState {
  const bad = (what: string) => new TypeError(`state of ${metric.name} is malformed (${what}): ${JSON.stringify(e)?.slice(0, 100)}`);
  if (!Array.isArray(e) || e.length !== metric.aggregates.length + 1) throw bad("shape");
  if (!isCount(e[0])) throw bad("event count");
  const parts = metric.aggregates.map((a, i): PartState => {
    const v = e[i + 1];
    switch (a.kind) {
      case "count":
        return { k: "count" };
      case "sum":
        if (!isNum(v)) throw bad(`${a.name}: sum`);
        return { k: "sum", s: v };
      case "min":
      case "max":
        if (v !== null && !isNum(v)) throw bad(`${a.name}: ${a.kind}`);
        return { k: a.kind, v };
      case "avg": {
        const p = pair(v);
        if (!p || !isNum(p[0]) || !isCount(p[1])) throw bad(`${a.name}: avg`);
        return { k: "avg", s: p[0], c: p[1] };
      }
      case "distinct": {
        const p = pair(v);
        if (!p) throw bad(`${a.name}: distinct`);
        return { k: "distinct", hll: hllDecode({ idx: numbers(p[0]), rank: numbers(p[1]) }) };
      }
      case "quantiles": {
        const p = pair(v);
        if (!p) throw bad(`${a.name}: quantiles`);
        return { k: "quantiles", b: quantileDecode({ bucket: numbers(p[0]), count: numbers(p[1]) }) };
      }
    }
  });
  return { n: e[0], parts };
}

/** The metric key of an event's group-by values: the value itself for one field, length-prefixed parts for several, "" for none. */
export function keyOfValues(values: readonly string[]): string {
  if (values.length === 1) return values[0]!;
  return values.map((v) => `${Buffer.byteLength(v, "utf8")}:${v}`).join("");
}

/** The metric key of an event, from its normalised fields. */
export function keyOfEvent(metric: MetricDef, fields: Readonly<Record<string, FieldValue>>): string {
  return keyOfValues(metric.groupBy.map((f) => canonicalString(fields[f] as string | number | boolean)));
}

/**
 * The group-by values of a metric key (inverse of keyOfValues).
 * @throws TypeError when `key` is not a key of a metric with `fields` group-by fields.
 */
export function valuesOfKey(key: string, fields: number): string[] {
  if (fields === 0) return [];
  if (fields === 1) return [key];
  const bytes = Buffer.from(key, "utf8");
  const out: string[] = [];
  let i = 0;
  while (i < bytes.length) {
    const colon = bytes.indexOf(0x3a, i);
    const len = colon > i ? Number(bytes.subarray(i, colon).toString("latin1")) : NaN;
    if (!Number.isSafeInteger(len) || colon + 1 + len > bytes.length) throw new TypeError(`not a key of ${fields} fields: ${JSON.stringify(key)}`);
    out.push(bytes.subarray(colon + 1, colon + 1 + len).toString("utf8"));
    i = colon + 1 + len;
  }
  if (out.length !== fields) throw new TypeError(`not a key of ${fields} fields: ${JSON.stringify(key)}`);
  return out;
}

/** A copy of `a` merged with `b`, neither changed. */
export function merged(metric: MetricDef, ...states: (AggState | undefined)[]): AggState {
  const out = emptyState(metric);
  for (const s of states) if (s) mergeState(out, s);
  return out;
}
