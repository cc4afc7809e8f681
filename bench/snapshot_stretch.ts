#!/usr/bin/env node
/**
 * How long a speed actor's snapshot holds its node's event loop (docs/performance.md, section 5):
 * for one partition's share of the bench workload at a few sizes, the CPU time of the longest
 * stretch `encodeSnapshotInSlices` runs at once, with the figure's feed (1,000 events/s over
 * eight partitions, 2 s) applied between two snapshots, next to encoding every state at once (a
 * fresh encoder: the work of an actor's first snapshot). CPU time (process.cpuUsage), not wall
 * time, so that other work on the machine does not count.
 *
 *   node dist/bench/snapshot_stretch.js [events per partition...]   (default 3000 12500 50000)
 */
import { resolve } from "node:path";
import { loadCatalog } from "../src/core/catalog.js";
import { partitionOf, validateEvent } from "../src/core/events.js";
import type { StreamRecord } from "../src/nats/codec.js";
import { encodeSnapshot, encodeSnapshotInSlices } from "../src/actors/snapshot.js";
import { createSegmentStatesEncoder } from "../src/actors/snapshot_states.js";
import { applyRecord, createSpeedState, speedCatalogOf } from "../src/actors/speed_state.js";
import { REPO_ROOT } from "./paths.js";
import { makeEvents, SOURCE } from "./workload.js";

const PARTITIONS = 8;
/** Events applied between two snapshots: 2 s of 1,000 events/s over eight partitions. */
const EVENTS_BETWEEN = 250;
const SNAPSHOTS = 16;
/** The default horizon, as an actor holds it. */
const DEDUPE_HORIZON_IDS = 100_000;
const SLICE_MS = 2;

const catalog = loadCatalog(resolve(REPO_ROOT, "catalog/catalog.json"));
const speed = speedCatalogOf(catalog);
const source = catalog.sources.get(SOURCE)!;

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

// A stretch run at once ends where the slicer calls setImmediate and starts where that fires.
const stretches: number[] = [];
let stretchStart = 0;
const setImmediateAsIs = globalThis.setImmediate;
(globalThis as { setImmediate: unknown }).setImmediate = (fn: () => void) => {
  stretches.push(cpuMs() - stretchStart);
  return setImmediateAsIs(() => {
    stretchStart = cpuMs();
    fn();
  });
};

/** `count` events of partition 0, as the stream holds them. */
function partitionRecords(count: number, seed: number, spreadMs: number): StreamRecord[] {
  const out: StreamRecord[] = [];
  for (const raw of makeEvents(count * PARTITIONS * 2, { idPrefix: `s${seed}x`, seed, spreadMs })) {
    const e = validateEvent(catalog, SOURCE, raw);
    if (partitionOf(source, e, PARTITIONS) !== 0) continue;
    out.push({ k: "e", s: SOURCE, id: e.id, ts: e.ts, v: e.fields });
    if (out.length === count) break;
  }
  return out;
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(1)} ms`;

const sizes = process.argv.slice(2).map(Number);
for (const held of sizes.length > 0 ? sizes : [3_000, 12_500, 50_000]) {
  const state = createSpeedState(0, DEDUPE_HORIZON_IDS);
  let seq = 0;
  for (const r of partitionRecords(held, 1, 30 * 60_000)) applyRecord(state, ++seq, r, speed);
  const feed = partitionRecords(EVENTS_BETWEEN * SNAPSHOTS, 2, 0);
  const meta = { partition: 0, generation: 1, catalog: speed };
  const states = createSegmentStatesEncoder();
  await encodeSnapshotInSlices(state, meta, states, SLICE_MS); // the first snapshot: nothing cached yet
  const whole: number[] = [];
  const longest: number[] = [];
  const total: number[] = [];
  let bytes = 0;
  for (let i = 0; i < SNAPSHOTS; i++) {
    for (const r of feed.slice(i * EVENTS_BETWEEN, (i + 1) * EVENTS_BETWEEN)) applyRecord(state, ++seq, r, speed);
    let t = cpuMs();
    bytes = encodeSnapshot(state, meta).length;
    whole.push(cpuMs() - t);
    stretches.length = 0;
    t = stretchStart = cpuMs();
    await encodeSnapshotInSlices(state, meta, states, SLICE_MS);
    stretches.push(cpuMs() - stretchStart);
    longest.push(Math.max(...stretches));
    total.push(cpuMs() - t);
  }
  console.log(
    `${held} events held (${(bytes / 1024).toFixed(0)} KiB): every state at once ${ms(median(whole))}; ` +
      `in slices, with ${EVENTS_BETWEEN} new events since the last: longest stretch ${ms(median(longest))} (${ms(Math.min(...longest))}–${ms(Math.max(...longest))}), all slices ${ms(median(total))}`,
  );
}
