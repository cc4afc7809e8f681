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

/** What the figures count of a process's memory: the V8 heap and the bytes of its ArrayBuffers. */
export function speedMemory(m: NodeJS.MemoryUsage): number {
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

/** What one batch of events cost a measured speed node. */
export interface Covered {
  /** The node's memory after gc(), with the events held (before the watermark). */
  readonly held: NodeJS.MemoryUsage;
  /** Events the actors held then, summed over the partitions. */
  readonly heldEvents: number;
}

/** A speed node alone in a process with --expose-gc, fed by a cluster's ingest and covered by its batch runs. */
export interface MeasuredSpeedNode {
  /** The process's memory after two full collections (speedMemory counts heapUsed + arrayBuffers of it). */
  reading(): Promise<NodeJS.MemoryUsage>;
  /** speedMemory of a reading. */
  heap(): Promise<number>;
  /**
   * Publishes `count` new events (ids tagged with `tag`), reads the memory once the
   * actors applied them, then runs a batch whose watermark covers them and waits
   * until every actor dropped them.
   */
  applyAndCover(count: number, tag: string, keys?: number): Promise<Covered>;
  close(): Promise<void>;
}

/** Starts the cluster (archiver, coordinator, executor) and the measured speed node. */
export async function startMeasuredSpeedNode(ctx: BenchContext, seed: number, config: { dedupeHorizonIds?: number } = {}): Promise<MeasuredSpeedNode> {
  const prefix = ctx.env.prefix("mem");
  const cluster = await startBenchCluster(ctx.env, { roles: ["archiver", "coordinator", "executor"], speedNodes: 0, prefix, config });
  const host = forkBenchChild("speed_host", { env: ctx.env.childEnv, execArgv: ["--expose-gc"] });
  const reading = () => host.call<NodeJS.MemoryUsage>("heap");
  const close = async () => {
    await host.stop();
    await cluster.close();
  };
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
  } catch (err) {
    await close().catch(() => undefined); // best effort: the start failure is what matters
    throw err;
  }
  return {
    reading,
    heap: async () => speedMemory(await reading()),
    async applyAndCover(count, tag, keys) {
      const res = await cluster.ingest.publishBatch(SOURCE, makeEvents(count, { idPrefix: `m${seed}${tag}x`, seed, ...(keys === undefined ? {} : { keys }) }));
      if (res.accepted !== count) throw new Error(`memory: ${res.accepted} of ${count} events accepted`);
      const statuses = await cluster.waitForSpeedCaughtUp();
      const held = await reading();
      const w = await cluster.roles.coordinator!.runNow();
      await waitFor(
        "every speed actor to drop what the watermark covers",
        async () => (await cluster.speedStatuses()).every((s) => s.watermarkRun >= w.run && s.heldEvents === 0),
        { timeoutMs: 60_000, intervalMs: 25 },
      );
      return { held, heldEvents: statuses.reduce((s, x) => s + x.heldEvents, 0) };
    },
    close,
  };
}

async function pass(ctx: BenchContext, n: number, warm: number, seed: number): Promise<Pass> {
  const node = await startMeasuredSpeedNode(ctx, seed);
  try {
    // Warm-up in the measured process: its code paths run once before the idle reading.
    await node.applyAndCover(warm, "w");
    const idle = await node.reading();
    const { held, heldEvents } = await node.applyAndCover(n, "m");
    const after = await node.reading();
    return {
      idleHeap: speedMemory(idle),
      heldHeap: speedMemory(held),
      afterHeap: speedMemory(after),
      heldEvents,
      rssHeld: held.rss,
      arrayBuffers: { idle: idle.arrayBuffers, held: held.arrayBuffers, after: after.arrayBuffers },
    };
  } finally {
    await node.close();
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
