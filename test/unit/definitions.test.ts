/**
 * Which definition answers at a watermark, and which the speed layer computes
 * (core/definitions), and the speed state following those changes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { metricFingerprint, parseCatalog, type Catalog } from "../../src/core/catalog.js";
import { activeDefinitions, definitionAt, recordedDefinitions, standingOf, standings } from "../../src/core/definitions.js";
import { InvalidQueryError, PreconditionError } from "../../src/core/errors.js";
import type { Watermark } from "../../src/core/watermark.js";
import { decode, encode } from "../../src/nats/codec.js";
import { applyRecord, createSpeedState, missingDefinitions, querySpeed, retainDefinitions, speedCatalog } from "../../src/actors/speed_state.js";

const T0 = Date.UTC(2026, 5, 8, 14, 0, 0);

function catalog(views: Record<string, unknown>, extra: Record<string, unknown> = {}): Catalog {
  return parseCatalog(
    {
      sources: { pv: { fields: { id: "string", article: "string", user: "string", ts: "timestamp" }, idField: "id", timeField: "ts", partitionKey: "article" } },
      metrics: { views: { source: "pv", groupBy: ["article"], window: "1m", aggregates: { n: "count" }, ...views }, ...extra },
    },
    "definitions.test",
  );
}

const OLD = catalog({}, { kept: { source: "pv", window: "1h", aggregates: { n: "count" } }, gone: { source: "pv", window: "1h", aggregates: { users: { distinct: "user" } } } });
const NEW = catalog({ filter: { field: "user", op: "ne", value: "bot" } }, { kept: { source: "pv", window: "1h", aggregates: { n: "count" } }, added: { source: "pv", window: "5m", aggregates: { n: "count" } } });
const fp = (c: Catalog, name: string) => metricFingerprint(c.metrics.get(name)!);

/** A watermark of a run over `c`, as the coordinator writes it and readers decode it from KV. */
function watermarkOf(c: Catalog, run: number): Watermark {
  const w = { run, cuts: [10], viewVersion: run, coveredFromMs: null, coveredToMs: null, eventsCovered: 0, startedAtMs: 0, publishedAtMs: 0, coordinator: "c", timings: { barrierMs: 0, archiverFlushMs: 0, recomputeMs: 0 }, ...recordedDefinitions(c) };
  return decode<Watermark>(encode(w));
}

test("answers use the watermark's definition: redefined and removed metrics answer as the run computed them, added ones are refused", () => {
  const w = watermarkOf(OLD, 4);
  assert.equal(definitionAt(NEW, w, "views").fingerprint, fp(OLD, "views"), "redefined: the run's definition");
  assert.deepEqual(definitionAt(NEW, w, "views").metric.filter, null, "...with the run's filter (none)");
  assert.equal(definitionAt(NEW, w, "gone").fingerprint, fp(OLD, "gone"), "removed: still answers");
  assert.equal(definitionAt(NEW, w, "kept").fingerprint, fp(NEW, "kept"));
  assert.throws(() => definitionAt(NEW, w, "added"), (e: unknown) => e instanceof PreconditionError && /added was added after batch run 4/.test(e.message));
  assert.throws(() => definitionAt(NEW, w, "nope"), (e: unknown) => e instanceof InvalidQueryError && /unknown metric "nope"; defined: views, kept, added, gone/.test(e.message));
  assert.throws(() => definitionAt(NEW, w, ""), InvalidQueryError);
  // Once a run of the new catalog publishes, its definitions answer; the removed metric is gone.
  const w2 = watermarkOf(NEW, 5);
  assert.equal(definitionAt(OLD, w2, "views").fingerprint, fp(NEW, "views"), "even on a node still holding the old catalog");
  assert.equal(definitionAt(NEW, w2, "added").fingerprint, fp(NEW, "added"));
  assert.throws(() => definitionAt(NEW, w2, "gone"), InvalidQueryError);
  // Before any run: the catalog's, speed only.
  assert.equal(definitionAt(NEW, null, "views").fingerprint, fp(NEW, "views"));
});

test("a watermark that recorded only fingerprints answers with the catalog's definition when they agree, and refuses otherwise", () => {
  const { definitions: _d, ...legacy } = watermarkOf(OLD, 2);
  assert.equal(definitionAt(OLD, legacy, "views").fingerprint, fp(OLD, "views"));
  assert.throws(() => definitionAt(NEW, legacy, "views"), (e: unknown) => e instanceof PreconditionError && /views was redefined after batch run 2/.test(e.message));
});

test("standings say what answers now and what the next run computes", () => {
  const s = Object.fromEntries(standings(NEW, watermarkOf(OLD, 4)).map((x) => [x.name, [x.inForce?.fingerprint ?? null, x.next?.fingerprint ?? null]]));
  assert.deepEqual(s, {
    added: [null, fp(NEW, "added")],
    gone: [fp(OLD, "gone"), null],
    kept: [fp(NEW, "kept"), fp(NEW, "kept")],
    views: [fp(OLD, "views"), fp(NEW, "views")],
  });
  assert.equal(standingOf(NEW, null, "gone"), null);
});

test("the speed layer computes the watermark's definitions and the catalog's, once each", () => {
  const active = activeDefinitions(NEW, watermarkOf(OLD, 4));
  const names = active.map((d) => `${d.metric.name}@${d.fingerprint}`).sort();
  assert.deepEqual(names, [`added@${fp(NEW, "added")}`, `gone@${fp(OLD, "gone")}`, `kept@${fp(NEW, "kept")}`, `views@${fp(NEW, "views")}`, `views@${fp(OLD, "views")}`].sort());
  assert.equal(activeDefinitions(NEW, watermarkOf(NEW, 5)).length, NEW.metrics.size, "after the adoption, just the catalog");
});

test("speed state: both definitions of a redefined metric count side by side; narrowing drops the old one's states", () => {
  const wide = speedCatalog(activeDefinitions(NEW, watermarkOf(OLD, 4)));
  const narrow = speedCatalog(activeDefinitions(NEW, watermarkOf(NEW, 5)));
  assert.deepEqual(missingDefinitions(narrow, wide).sort(), [fp(OLD, "gone"), fp(OLD, "views")].sort(), "what a narrow actor would have to rebuild for");
  assert.deepEqual(missingDefinitions(wide, narrow), []);
  const s = createSpeedState(0, 100);
  const users = ["u1", "bot", "u2", "bot"];
  users.forEach((user, i) => applyRecord(s, i + 1, { k: "e", s: "pv", id: `e${i}`, ts: T0, v: { id: `e${i}`, article: "a", user, ts: T0 } }, wide));
  const count = (definition: string) => {
    const a = querySpeed(s, wide, { run: 0, metric: "views", definition, keys: ["a"], fromMs: T0, toMs: T0 + 60_000, series: false });
    assert.equal(a.kind, "value");
    return a.kind === "value" ? (a.keys[0]?.[1] as unknown[])[0] : null;
  };
  assert.equal(count(fp(OLD, "views")), 4, "the run's definition: every event");
  assert.equal(count(fp(NEW, "views")), 2, "the catalog's: bots filtered out");
  retainDefinitions(s, narrow);
  assert.deepEqual([...s.segments[0]!.states.keys()].sort(), [fp(NEW, "added"), fp(NEW, "kept"), fp(NEW, "views")].sort());
  assert.deepEqual(querySpeed(s, narrow, { run: 0, metric: "views", definition: fp(OLD, "views"), keys: ["a"], fromMs: T0, toMs: T0 + 60_000, series: false }), {
    kind: "missing_definition",
    definition: fp(OLD, "views"),
  });
});
