/**
 * The proof that a metric defined once computes the same in both layers.
 * Random catalogs (within the grammar: optional fields, filters, 0–2 group-by
 * fields, every aggregate) and random events (late, duplicated with other
 * payloads, nulls, extreme values) go to the batch layer (chDB SQL over a
 * master table, cut at random positions) and to the speed layer (actors' pure
 * state, cut by a barrier at the same positions). Then, for every metric, key
 * and window:
 *   - the batch state equals the speed state of the same events below the cut;
 *   - batch state ⊕ speed state above the cut equals the state over all events.
 * States are compared as states (HLL registers, quantile buckets), not as
 * estimates; float sums agree up to rounding (core/aggregate.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeState, encodeState, merged, type AggState } from "../../src/core/aggregate.js";
import { metricFingerprint, parseCatalog, type Catalog, type MetricDef } from "../../src/core/catalog.js";
import { partitionOf, validateEvent, type NormalizedEvent } from "../../src/core/events.js";
import { applyRecord, createSpeedState, querySpeed, speedCatalogOf, type SpeedCatalog, type SpeedState } from "../../src/actors/speed_state.js";
import { recomputeViews } from "../../src/batch/index.js";
import { openClickHouse } from "../../src/ch/client.js";
import { ensureSchema, masterTable } from "../../src/ch/schema.js";
import { readBatchStates } from "../../src/ch/views.js";
import { prng, type Prng } from "../unit/prng.js";

const PARTITIONS = 3;
const T0 = Date.UTC(2026, 5, 8);
const TYPES = ["string", "int", "float", "bool", "timestamp"] as const;

type Domain = () => unknown;

function valueDomain(r: Prng, type: (typeof TYPES)[number]): Domain {
  switch (type) {
    case "string": {
      const words = ["a", "b", "ü", "x:y", "12", "long value"].slice(0, r.int(2, 6));
      return () => r.pick(words);
    }
    case "int":
      return () => (r.chance(0.05) ? r.pick([2 ** 50, -(2 ** 50), 0]) : r.int(-20, 20));
    case "float":
      return () => (r.chance(0.05) ? r.pick([1e-300, 1.5e300, -0.001, 0]) : Math.round(r.next() * 2000 - 500) / 8);
    case "bool":
      return () => r.chance(0.5);
    case "timestamp":
      return () => T0 + r.int(0, 86_400_000);
  }
}

interface RandomCatalog {
  catalog: Catalog;
  domains: Map<string, Map<string, Domain>>;
}

function randomCatalog(r: Prng): RandomCatalog {
  const sources: Record<string, unknown> = {};
  const metrics: Record<string, unknown> = {};
  const domains = new Map<string, Map<string, Domain>>();
  for (let s = 0; s < r.int(1, 2); s++) {
    const name = `src${s}`;
    const fields: Record<string, string> = { id: r.pick(["string", "int"]), ts: "timestamp", pk: r.pick(["string", "int"]) };
    const types: Record<string, (typeof TYPES)[number]> = { pk: fields.pk as "string" };
    for (let f = 0; f < r.int(2, 5); f++) {
      const t = r.pick(TYPES);
      types[`f${f}`] = t;
      fields[`f${f}`] = t + (r.chance(0.4) ? "?" : "");
    }
    sources[name] = { fields, idField: "id", timeField: "ts", partitionKey: "pk" };
    domains.set(name, new Map(Object.entries(types).map(([f, t]) => [f, valueDomain(r, t)])));
    const required = (t: readonly string[]) => Object.entries(fields).filter(([f, ft]) => f !== "id" && t.includes(ft)).map(([f]) => f);
    const anyOf = (t: readonly string[]) => Object.entries(fields).filter(([f, ft]) => f !== "id" && t.includes(ft.replace("?", ""))).map(([f]) => f);
    const leaf = (): unknown => {
      // Mostly the payload fields, optional ones included: null handling is where layers could differ.
      const payload = anyOf(TYPES).filter((f) => f.startsWith("f"));
      const f = r.chance(0.85) && payload.length > 0 ? r.pick(payload) : r.pick(anyOf(TYPES));
      const t = (fields[f] ?? "").replace("?", "") as (typeof TYPES)[number];
      const d = valueDomain(r, t);
      const ordered = t === "int" || t === "float" || t === "timestamp";
      if (r.chance(0.3)) return { field: f, op: "in", values: [d(), d()] };
      return { field: f, op: r.pick(ordered ? ["eq", "ne", "lt", "le", "gt", "ge"] : ["eq", "ne"]), value: d() };
    };
    const filter = (depth: number): unknown => {
      if (depth === 0 || r.chance(0.4)) return leaf();
      const k = r.pick(["and", "or", "not", "not"]);
      return k === "not" ? { not: filter(depth - 1) } : { [k]: [filter(depth - 1), filter(depth - 1)] };
    };
    for (let m = 0; m < r.int(2, 4); m++) {
      const groupable = required(["string", "int", "bool"]);
      const groupBy = [...new Set(Array.from({ length: r.int(0, 2) }, () => r.pick(groupable)))];
      const aggregates: Record<string, unknown> = { n: "count" };
      const kinds = { sum: ["int", "float"], avg: ["int", "float"], min: ["int", "float", "timestamp"], max: ["int", "float", "timestamp"], distinct: ["string", "int", "bool"], quantiles: ["int", "float"] };
      for (const [kind, ts] of Object.entries(kinds)) {
        const candidates = anyOf(ts);
        if (candidates.length > 0 && r.chance(0.6)) aggregates[`${kind}_x`] = { [kind]: r.pick(candidates) };
      }
      metrics[`${name}_m${m}`] = { source: name, groupBy, window: r.pick(["1m", "5m", "1h"]), aggregates, ...(r.chance(0.6) ? { filter: filter(2) } : {}) };
    }
  }
  return { catalog: parseCatalog({ sources, metrics }, "random-catalog"), domains };
}

function randomEvents(r: Prng, rc: RandomCatalog, source: string, n: number): NormalizedEvent[] {
  const def = rc.catalog.sources.get(source)!;
  const domains = rc.domains.get(source)!;
  const out: NormalizedEvent[] = [];
  for (let i = 0; i < n; i++) {
    const raw: Record<string, unknown> = { id: def.fields.id!.type === "int" ? i * 7 + 1 : `id-${i}`, ts: T0 + r.int(0, 86_400_000) };
    for (const [f, d] of domains) raw[f] = def.fields[f]!.optional && r.chance(0.3) ? null : d();
    if (out.length > 0 && r.chance(0.1)) {
      // A later copy of an earlier id, same partition key, other payload.
      const first = r.pick(out);
      raw.id = first.fields.id;
      raw.pk = first.fields.pk;
    }
    out.push(validateEvent(rc.catalog, source, raw));
  }
  return out;
}

/** key → window → state, from a speed query's answer. */
function speedStates(metric: MetricDef, state: SpeedState, catalog: SpeedCatalog, run: number): Map<string, Map<number, AggState>> {
  const a = querySpeed(state, catalog, { run, metric: metric.name, definition: metricFingerprint(metric), keys: null, fromMs: 0, toMs: Number.MAX_SAFE_INTEGER, series: true });
  assert.equal(a.kind, "value");
  const out = new Map<string, Map<number, AggState>>();
  if (a.kind !== "value") return out;
  for (const [key, , series] of a.keys) out.set(key, new Map(series!.map(([w, st]) => [w, decodeState(metric, st)])));
  return out;
}

function mergeSides(metric: MetricDef, ...sides: Map<string, Map<number, AggState>>[]) {
  const out = new Map<string, Map<number, AggState>>();
  for (const side of sides) {
    for (const [k, ws] of side) {
      let o = out.get(k);
      if (!o) out.set(k, (o = new Map()));
      for (const [w, st] of ws) o.set(w, merged(metric, o.get(w), st));
    }
  }
  return out;
}

/** States equal: exact, except float sums (sum and avg of float fields) up to relative 1e-9. */
function assertSameStates(metric: MetricDef, actual: Map<string, Map<number, AggState>>, expected: Map<string, Map<number, AggState>>, label: string) {
  const keys = (m: Map<string, Map<number, AggState>>) => [...m].flatMap(([k, ws]) => [...ws.keys()].map((w) => `${k}@${w}`)).sort();
  assert.deepEqual(keys(actual), keys(expected), `${label}: same (key, window) cells`);
  for (const [k, ws] of expected) {
    for (const [w, exp] of ws) {
      const act = encodeState(actual.get(k)!.get(w)!);
      const e = encodeState(exp);
      metric.aggregates.forEach((a, i) => {
        const x = act[i + 1];
        const y = e[i + 1];
        const where = `${label}: ${metric.name}.${a.name} (${a.kind}) key ${JSON.stringify(k)} window ${w}`;
        if (a.fieldType === "float" && (a.kind === "sum" || a.kind === "avg")) {
          const [xs, ys] = a.kind === "avg" ? [(x as number[])[0]!, (y as number[])[0]!] : [x as number, y as number];
          assert.ok(Math.abs(xs - ys) <= 1e-9 * Math.max(1, Math.abs(ys)), `${where}: ${xs} vs ${ys}`);
          if (a.kind === "avg") assert.equal((x as number[])[1], (y as number[])[1], where);
        } else {
          // Sketch parts encode as sorted parallel arrays: equal states, equal encodings.
          assert.deepEqual(x, y, where);
        }
      });
      assert.equal(act[0], e[0], `${label}: ${metric.name} key ${k} window ${w}: event count`);
    }
  }
}

test("batch SQL and speed aggregators compute the same states; merged across a cut they equal the whole", { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "lambda-parity-"));
  const ch = await openClickHouse({ url: "", username: "default", password: "", chdbPath: join(dir, "chdb") });
  try {
    for (let seed = 1; seed <= 10; seed++) {
      const r = prng(seed * 7919);
      const rc = randomCatalog(r);
      const { catalog } = rc;
      const db = `parity${seed}`;
      await ensureSchema(ch.client, db, catalog);
      const sc = speedCatalogOf(catalog);
      // One stream: a global sequence, events of every source interleaved, each on its partition.
      const events = [...catalog.sources.keys()].flatMap((s) => randomEvents(r, rc, s, r.int(200, 500)));
      for (let i = events.length - 1; i > 0; i--) {
        const j = r.int(0, i);
        [events[i], events[j]] = [events[j]!, events[i]!];
      }
      const cutAt = new Array(PARTITIONS).fill(0).map(() => r.next()); // cut after this share of each partition's events
      const perPartition = new Array(PARTITIONS).fill(0);
      const totalPerPartition = new Array(PARTITIONS).fill(0);
      const partitionOfEvent = events.map((e) => partitionOf(catalog.sources.get(e.source)!, e, PARTITIONS));
      for (const p of partitionOfEvent) totalPerPartition[p]++;
      const whole = Array.from({ length: PARTITIONS }, (_, p) => createSpeedState(p, 1e9));
      const cutState = Array.from({ length: PARTITIONS }, (_, p) => createSpeedState(p, 1e9));
      const below = Array.from({ length: PARTITIONS }, (_, p) => createSpeedState(p, 1e9));
      const cuts = new Array<number>(PARTITIONS).fill(0);
      const rows = new Map<string, Record<string, unknown>[]>();
      let seq = 0;
      const barrier = (p: number) => {
        cuts[p] = ++seq;
        applyRecord(cutState[p]!, seq, { k: "b", r: 1 }, sc);
      };
      for (const [i, e] of events.entries()) {
        const p = partitionOfEvent[i]!;
        if (cuts[p] === 0 && perPartition[p] >= cutAt[p]! * totalPerPartition[p]) barrier(p);
        perPartition[p]++;
        const s = ++seq;
        const rec = { k: "e" as const, s: e.source, id: e.id, ts: e.ts, v: { ...e.fields } };
        applyRecord(whole[p]!, s, rec, sc);
        applyRecord(cutState[p]!, s, rec, sc);
        if (cuts[p] === 0) applyRecord(below[p]!, s, rec, sc);
        const list = rows.get(e.source) ?? [];
        list.push({ _partition: p, _seq: s, _id: e.id, ...e.fields });
        rows.set(e.source, list);
      }
      for (let p = 0; p < PARTITIONS; p++) if (cuts[p] === 0) barrier(p);
      for (const [source, list] of rows) await ch.client.insert({ table: masterTable(db, source), values: list, format: "JSONEachRow" });
      await recomputeViews(ch.client, catalog, db, { run: 1, cuts });

      for (const metric of catalog.metrics.values()) {
        const label = `seed ${seed}`;
        const batch = await readBatchStates(ch.client, db, metric, 1, null, 0, Number.MAX_SAFE_INTEGER);
        const belowCut = mergeSides(metric, ...below.map((st) => speedStates(metric, st, sc, 0)));
        assertSameStates(metric, batch, belowCut, `${label}, batch vs speed below the cut`);
        const aboveCut = mergeSides(metric, ...cutState.map((st) => speedStates(metric, st, sc, 1)));
        const all = mergeSides(metric, ...whole.map((st) => speedStates(metric, st, sc, 0)));
        assertSameStates(metric, mergeSides(metric, batch, aboveCut), all, `${label}, batch ⊕ speed above the cut vs all events`);
      }
    }
  } finally {
    await ch.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
