/**
 * Speed-actor memory: bytes a speed node holds per event before a watermark
 * covers the events, and after it.
 *
 * The speed node (createSpeedNode, all partitions) runs alone in a bench
 * helper process started with --expose-gc; its memory is read after two full
 * collections as heapUsed + arrayBuffers (typed arrays keep their bytes outside
 * the V8 heap: the dedupe horizon's ring and table, actors/dedupe_horizon.ts,
 * would not show in heapUsed alone): once idle (after a warm-up round of N/10 events and a batch
 * run that covers them), once after N events were applied, once after a batch
 * run's watermark reached every actor (heldEvents = 0).
 * The archiver and coordinator run in this process, as usual.
 */
import { forkBenchChild } from "../children/ipc.js";
import type { SpeedHostStart } from "../children/speed_host.js";
import { startBenchCluster } from "../cluster.js";
import type { BenchContext } from "../context.js";
import { Better, row, type Figure, type FigureResult } from "../figure.js";
import { waitFor } from "../wait.js";
import { makeEvents, SOURCE } from "../workload.js";

/** Share of the held memory that may stay after a watermark covering every event (issue #15). */
export const KEPT_GOAL_PCT = 10;
/** Memory per held event before the watermark (issue #15). */
export const HELD_GOAL_BYTES = 64;

/** What the figure counts of a process's memory: the V8 heap and the bytes of its ArrayBuffers. */
function speedMemory(m: NodeJS.MemoryUsage): number {
  return m.heapUsed + m.arrayBuffers;
}

/** One repetition's readings, in bytes (heapUsed + arrayBuffers, see speedMemory). */
interface Pass {
  idleHeap: number;
  heldHeap: number;
  afterHeap: number;
  heldEvents: number;
  rssHeld: number;
  /** The arrayBuffers part of idleHeap, heldHeap and afterHeap (the dedupe horizon, and buffers of msgpackr and the NATS client). */
  arrayBuffers: { idle: number; held: number; after: number };
}

async function pass(ctx: BenchContext, n: number, warm: number, seed: number): Promise<Pass> {
  const prefix = ctx.env.prefix("mem");
  const cluster = await startBenchCluster(ctx.env, { roles: ["archiver", "coordinator", "executor"], speedNodes: 0, prefix });
  const host = forkBenchChild("speed_host", { env: ctx.env.childEnv, execArgv: ["--expose-gc"] });
  try {
    const start: SpeedHostStart = {
      natsUrl: ctx.env.natsUrl,
      prefix,
      catalogPath: ctx.env.catalogPath,
      nodeId: `${prefix}-speed`,
      heartbeatIntervalMs: cluster.cfg.heartbeatIntervalMs,
      snapshotIntervalMs: cluster.cfg.snapshotIntervalMs,
      dedupeHorizonIds: cluster.cfg.dedupeHorizonIds,
      partitions: cluster.cfg.partitions,
    };
    await host.call("start", start);
    await cluster.waitForSpeedCaughtUp({ timeoutMs: 30_000 });
    const reading = () => host.call<NodeJS.MemoryUsage>("heap");
    const applyAndCover = async (count: number, tag: string) => {
      const res = await cluster.ingest.publishBatch(SOURCE, makeEvents(count, { idPrefix: `m${seed}${tag}x`, seed }));
      if (res.accepted !== count) throw new Error(`memory: ${res.accepted} of ${count} events accepted`);
      const statuses = await cluster.waitForSpeedCaughtUp();
      const held = await host.call<NodeJS.MemoryUsage>("heap");
      const w = await cluster.roles.coordinator!.runNow();
      await waitFor(
        "every speed actor to drop what the watermark covers",
        async () => (await cluster.speedStatuses()).every((s) => s.watermarkRun >= w.run && s.heldEvents === 0),
        { timeoutMs: 60_000, intervalMs: 25 },
      );
      return { held, heldEvents: statuses.reduce((s, x) => s + x.heldEvents, 0) };
    };
    // Warm-up in the measured process: its code paths run once before the idle reading.
    await applyAndCover(warm, "w");
    const idle = await reading();
    const { held, heldEvents } = await applyAndCover(n, "m");
    const after = await reading();
    return {
      idleHeap: speedMemory(idle),
      heldHeap: speedMemory(held),
      afterHeap: speedMemory(after),
      heldEvents,
      rssHeld: held.rss,
      arrayBuffers: { idle: idle.arrayBuffers, held: held.arrayBuffers, after: after.arrayBuffers },
    };
  } finally {
    await host.stop();
    await cluster.close();
  }
}

/** The memory figure (see the module header). */
export const memoryFigure: Figure = {
  name: "memory",
  summary: "speed node memory (heap + array buffers) per held event before a watermark, and what stays after it",
  async run(ctx): Promise<FigureResult> {
    const n = ctx.opts.sizes.events;
    const warm = Math.max(1_000, Math.floor(n / 10));
    const passes: Pass[] = [];
    for (let r = 0; r < ctx.opts.reps; r++) {
      ctx.progress(`memory: repetition ${r + 1}/${ctx.opts.reps}: a fresh speed node, ${warm} warm-up events and a batch run, then ${n} events`);
      passes.push(await pass(ctx, n, warm, 101 + r));
    }
    const base = { figure: "memory", better: Better.lower };
    return {
      name: "memory",
      rows: [
        row({
          ...base,
          label: "speed node memory per held event, before the watermark",
          unit: "B/event",
          product: passes.map((p) => (p.heldHeap - p.idleHeap) / p.heldEvents),
          goal: { kind: "product_at_most", value: HELD_GOAL_BYTES },
        }),
        row({ ...base, label: "speed node memory per covered event, after the watermark", unit: "B/event", product: passes.map((p) => (p.afterHeap - p.idleHeap) / p.heldEvents) }),
        row({
          ...base,
          label: "memory kept after the watermark (share of what was held)",
          unit: "%",
          product: passes.map((p) => ((p.afterHeap - p.idleHeap) / (p.heldHeap - p.idleHeap)) * 100),
          goal: { kind: "product_at_most", value: KEPT_GOAL_PCT },
        }),
      ],
      details: { eventsPerRepetition: n, passes },
      notes: [
        `memory: one speed node (all partitions) alone in a bench process with --expose-gc, heapUsed + arrayBuffers after gc() above its idle reading (taken after a warm-up round); ${n} events applied, then a batch run whose watermark covers them all. ` +
          `Goals of issue #15: held <= ${HELD_GOAL_BYTES} B/event, kept <= ${KEPT_GOAL_PCT} %. What stays by design is the dedupe horizon (up to dedupeHorizonIds ids per partition, every id of this run).`,
      ],
    };
  },
};
