/**
 * The oracle over the whole example catalog: three sources, every aggregate and
 * filter form, one- two- and zero-field group-bys. Random events of all sources
 * (late ones, retried publishes, copies past the duplicate window with another
 * payload) are interleaved with batch runs; after every step every metric's
 * answer, for every aggregate, equals an independent recount of the first
 * copies, and top-k agrees with the recount's ranking.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import type { MetricDef } from "../../src/core/catalog.js";
import { partitionOf, validateEvent } from "../../src/core/events.js";
import { canonicalString, hllAdd, hllEstimate, quantileAdd, quantileEstimate } from "../../src/core/sketch.js";
import { createClickGenerator, createOrderGenerator, createPageViewGenerator } from "../../src/ingest/synthetic.js";
import { encodeEvent } from "../../src/nats/codec.js";
import { startTestCluster, type TestCluster } from "../harness/cluster.js";
import { completeQuery, completeTopK, getWatermark } from "../harness/grpc.js";
import { waitFor } from "../harness/wait.js";
import { prng } from "../unit/prng.js";

type Raw = Record<string, unknown> & { id: string | number; ts: number };
const T_NOW = Date.UTC(2026, 5, 8, 12, 0, 0);
const HOUR = 3_600_000;

/** The recount: first copy of every (source, id), in the order the stream received them. */
class Recount {
  readonly first = new Map<string, { source: string; e: Raw }>();
  add(source: string, e: Raw) {
    const k = `${source}:${e.id}`;
    if (!this.first.has(k)) this.first.set(k, { source, e });
  }
}

/** The catalog's filter semantics, written again from docs/catalog.md. */
function passes(f: unknown, e: Raw): boolean {
  const x = f as Record<string, unknown>;
  if (Array.isArray(x.and)) return x.and.every((y) => passes(y, e));
  if (Array.isArray(x.or)) return x.or.some((y) => passes(y, e));
  if (x.not !== undefined) return !passes(x.not, e);
  const v = e[x.field as string];
  if (v === null || v === undefined) return false;
  const c = x.value as number | string | boolean;
  switch (x.op) {
    case "in":
      return (x.values as unknown[]).includes(v);
    case "eq":
      return v === c;
    case "ne":
      return v !== c;
    case "lt":
      return (v as number) < (c as number);
    case "le":
      return (v as number) <= (c as number);
    case "gt":
      return (v as number) > (c as number);
    case "ge":
      return (v as number) >= (c as number);
  }
  throw new Error(`unknown filter ${JSON.stringify(f)}`);
}

/** Expected value of one aggregate over the given events. */
function expectedValue(kind: string, field: string | null, events: Raw[], q: number): number | null {
  const vals = field === null ? [] : events.map((e) => e[field]).filter((v) => v !== null && v !== undefined) as (number | string | boolean)[];
  switch (kind) {
    case "count":
      return events.length;
    case "sum":
      return (vals as number[]).reduce((a, b) => a + b, 0);
    case "min":
      return vals.length ? Math.min(...(vals as number[])) : null;
    case "max":
      return vals.length ? Math.max(...(vals as number[])) : null;
    case "avg":
      return vals.length ? (vals as number[]).reduce((a, b) => a + b, 0) / vals.length : null;
    case "distinct": {
      const s = new Map<number, number>();
      for (const v of vals) hllAdd(s, canonicalString(v));
      return hllEstimate(s);
    }
    case "quantiles": {
      const s = new Map<number, number>();
      for (const v of vals as number[]) quantileAdd(s, v);
      return quantileEstimate(s, q) ?? null;
    }
  }
  throw new Error(kind);
}

function close(actual: number | undefined, expected: number | null, message: string) {
  if (expected === null) return assert.equal(actual, undefined, message);
  assert.ok(actual !== undefined, `${message}: no value, expected ${expected}`);
  assert.ok(Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)), `${message}: ${actual} vs ${expected}`);
}

/** Groups the recount's events of a metric by key (group values) in [from, to). */
function eventsByGroup(m: MetricDef, recount: Recount, fromMs: number, toMs: number): Map<string, { group: Record<string, string>; events: Raw[] }> {
  const out = new Map<string, { group: Record<string, string>; events: Raw[] }>();
  for (const { source, e } of recount.first.values()) {
    if (source !== m.source) continue;
    const w = Math.floor(e.ts / m.windowMs) * m.windowMs;
    if (w < fromMs || w >= toMs) continue;
    if (m.filter && !passes(filterJson(m), e)) continue;
    const group = Object.fromEntries(m.groupBy.map((f) => [f, String(e[f])]));
    const k = JSON.stringify(group);
    let g = out.get(k);
    if (!g) out.set(k, (g = { group, events: [] }));
    g.events.push(e);
  }
  return out;
}

/** The metric's filter as the catalog file wrote it. */
let catalogJson: { metrics: Record<string, { filter?: unknown }> };
const filterJson = (m: MetricDef) => catalogJson.metrics[m.name]!.filter;

async function checkMetric(cluster: TestCluster, m: MetricDef, recount: Recount, rand: ReturnType<typeof prng>, label: string) {
  const ranges: [number, number][] = [[T_NOW - 48 * HOUR, T_NOW + 48 * HOUR]];
  const a = Math.floor(T_NOW / m.windowMs) * m.windowMs - m.windowMs * rand.int(0, 20);
  ranges.push([a, a + m.windowMs * rand.int(1, 30)]);
  for (const [fromMs, toMs] of ranges) {
    const groups = eventsByGroup(m, recount, fromMs, toMs);
    const asked = [...groups.values()].slice(0, 12);
    if (m.groupBy.length === 0 && asked.length === 0) asked.push({ group: {}, events: [] });
    for (const agg of m.aggregates) {
      for (const q of agg.kind === "quantiles" ? [0.5, 0.9] : [0]) {
        for (const g of asked) {
          const res = await completeQuery(cluster.grpc, { metric: m.name, group: g.group, aggregate: agg.name, quantile: q, from: new Date(fromMs), to: new Date(toMs) });
          const answer = res.answers[0]!;
          const where = `${label}: ${m.name}.${agg.name}${q ? `@${q}` : ""} ${JSON.stringify(g.group)} [${new Date(fromMs).toISOString()}, ${new Date(toMs).toISOString()}) run ${res.watermarkRun}`;
          close(answer.total, expectedValue(agg.kind, agg.field, g.events, q || 0.5), where);
          assert.equal(answer.events, g.events.length, `${where}: events`);
          if (agg.kind === "count" || (agg.kind === "sum" && agg.fieldType === "int")) {
            assert.equal((answer.batchPart ?? 0) + (answer.speedPart ?? 0), answer.total, `${where}: parts add up`);
          }
        }
      }
    }
    // Top-k by the first aggregate when it is a count: the ranking the recount gives.
    if (m.aggregates[0]!.kind === "count" && m.groupBy.length > 0) {
      const res = await completeTopK(cluster.grpc, { metric: m.name, k: 5, from: new Date(fromMs), to: new Date(toMs) });
      const counts = [...groups.values()].map((g) => g.events.length).sort((x, y) => y - x);
      assert.deepEqual(res.entries.map((e) => e.total), counts.slice(0, 5), `${label}: top-5 of ${m.name}`);
      for (const e of res.entries) assert.equal(e.total, groups.get(JSON.stringify(Object.fromEntries(m.groupBy.map((f) => [f, e.group[f]]))))!.events.length);
    }
  }
}

test("every metric of the example catalog equals an independent recount, for every aggregate, across batch runs", { timeout: 300_000 }, async () => {
  const { readFileSync } = await import("node:fs");
  catalogJson = JSON.parse(readFileSync("catalog/catalog.json", "utf8"));
  await using cluster = await startTestCluster({ partitions: 4, speedNodes: 2 });
  const rand = prng(424242);
  const recount = new Recount();
  const gens = {
    pageviews: createPageViewGenerator({ seed: 11, articles: 30, users: 200, lateFraction: 0.1, duplicateFraction: 0.05, idPrefix: "pv" }),
    orders: createOrderGenerator({ seed: 12, users: 40, lateFraction: 0.1, duplicateFraction: 0.05, idPrefix: "or" }),
    clicks: createClickGenerator({ seed: 13, lateFraction: 0.1, duplicateFraction: 0.05 }),
  };
  const published: { source: string; e: Raw }[] = [];
  const js = jetstream(cluster.nc);

  const publishStep = async (step: number) => {
    for (const [source, count] of [["pageviews", 250], ["orders", 60], ["clicks", 120]] as const) {
      const now = T_NOW + step * 10 * 60_000;
      const batch = Array.from({ length: count }, () => gens[source](now) as unknown as Raw);
      const res = await cluster.ingest.publishBatch(source, batch);
      assert.equal(res.refused.length, 0, JSON.stringify(res.refused[0]));
      for (const e of batch) {
        recount.add(source, e);
        published.push({ source, e });
      }
    }
    // Copies that slipped past the duplicate window, with another payload: the first copy counts.
    for (let i = 0; i < 10; i++) {
      const { source, e } = published[rand.int(0, published.length - 1)]!;
      const altered = { ...e, ts: e.ts + 3_600_000 };
      const n = validateEvent(cluster.catalog, source, altered);
      const p = partitionOf(cluster.catalog.sources.get(source)!, n, cluster.cfg.partitions);
      await js.publish(cluster.names.eventSubject(p), encodeEvent(n), { msgID: `late-copy:${step}:${i}` });
    }
  };

  const checkAll = async (label: string) => {
    for (const m of cluster.catalog.metrics.values()) await checkMetric(cluster, m, recount, rand, label);
  };

  for (let step = 0; step < 4; step++) {
    await publishStep(step);
    await cluster.waitForSpeedCaughtUp();
    await checkAll(`step ${step}`);
    if (step !== 2) {
      const wm = await cluster.roles.coordinator!.runNow();
      await waitFor(`serving at watermark ${wm.run}`, async () => (await getWatermark(cluster.grpc)).watermark?.run === wm.run);
      await checkAll(`step ${step}, after run ${wm.run}`);
    }
  }
});
