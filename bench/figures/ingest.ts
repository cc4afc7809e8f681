/**
 * Ingest throughput, end to end: events/s from the first publish until the
 * speed actors have applied every event (the speed view holds them all).
 *
 * Product: `createIngest().publishBatch` (validate, partition, encode, publish
 * with msg id) from this process, which also runs the archiver, coordinator
 * and serving node as `npm start` does; two `lambda-node` speed processes apply
 * the events. Baselines, same layout (publisher here, two consumer processes
 * with four partitions each): (a) stock pipelined `js.publish` of the same
 * encoded payloads with msg ids; (b) the protocol ceiling, core `publish` with
 * a Nats-Msg-Id header and the acks read on one inbox. Each is consumed by
 * plain ordered consumers that decode into a Map. Each baseline repetition
 * gets a fresh stream with the product's stream settings; the product's
 * stream grows across repetitions, as it does in operation.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { namesFor } from "../../src/nats/names.js";
import { ensureStreams } from "../../src/nats/setup.js";
import { forkBenchChild, type BenchChild } from "../children/ipc.js";
import { startBenchCluster, type BenchCluster } from "../cluster.js";
import type { BenchContext } from "../context.js";
import { Better, row, type Figure, type FigureResult } from "../figure.js";
import { publishCore, publishPipelined } from "../raw_nats.js";
import { makeEvents, SOURCE, toStreamEvents } from "../workload.js";
import { startCpuMeter, type CpuByRole, type ProcessRoles } from "../proc_cpu.js";
import { median } from "../stats.js";

/** Speed processes of the product and consumer processes of the baselines. */
const CONSUMER_PROCESSES = 2;

/** One repetition of one path. */
export interface Pass {
  /** events/s from first publish to last event applied. */
  readonly endToEnd: number;
  /** events/s of the publish phase alone (until the last ack). */
  readonly publish: number;
  /** ms between the last ack and the last event applied. */
  readonly drainMs: number;
  /** CPU µs per event of each process of the layout, from first publish to last event applied (Linux only). */
  readonly cpuUsPerEvent?: CpuByRole;
}

const rate = (count: number, ms: number) => count / (ms / 1000);

/** CPU µs per event by role, or nothing when the meter could not read a process. */
const perEvent = (cpu: CpuByRole | undefined, count: number): { cpuUsPerEvent?: CpuByRole } =>
  cpu ? { cpuUsPerEvent: Object.fromEntries(Object.entries(cpu).map(([role, us]) => [role, us / count])) } : {};

/** The product's processes: this one (publisher and the ClickHouse roles), nats-server, the speed nodes. */
const productProcesses = (ctx: BenchContext, cluster: BenchCluster): ProcessRoles => ({
  "bench process (publisher, archiver, coordinator, serving)": [process.pid],
  "nats-server": [ctx.env.natsPid],
  "speed nodes": cluster.speedNodes.map((n) => n.pid),
});

/** A baseline's processes: this one (publisher), nats-server, the consumer processes. */
const rawProcesses = (ctx: BenchContext, consumers: readonly BenchChild[]): ProcessRoles => ({
  "bench process (publisher)": [process.pid],
  "nats-server": [ctx.env.natsPid],
  consumers: consumers.map((c) => c.pid),
});

/**
 * "CPU per event, <label>: <role> 40.1 µs + … = 101 µs": medians over the passes, so a gap in
 * events/s can be read as the process that spends more (on two cores the sum bounds the rate).
 */
function cpuNote(label: string, passes: readonly Pass[]): string[] {
  const metered = passes.flatMap((p) => (p.cpuUsPerEvent ? [p.cpuUsPerEvent] : []));
  if (metered.length === 0) return [];
  const roles = Object.keys(metered[0]!);
  const medians = roles.map((r) => [r, median(metered.map((m) => m[r] ?? 0))] as const);
  const total = medians.reduce((a, [, us]) => a + us, 0);
  return [`CPU per event, ${label} (median of ${metered.length}): ${medians.map(([r, us]) => `${r} ${us.toFixed(1)} µs`).join(" + ")} = ${total.toFixed(1)} µs`];
}

/** The product's path: publishBatch until every partition's speed actor applied its stream head. */
export async function productPass(cluster: BenchCluster, count: number, seed: number, processes?: ProcessRoles): Promise<Pass> {
  const raws = makeEvents(count, { idPrefix: `ing${seed}x`, seed });
  const meter = processes && startCpuMeter(processes);
  const t0 = performance.now();
  const res = await cluster.ingest.publishBatch(SOURCE, raws);
  const tPub = performance.now();
  if (res.accepted !== count) throw new Error(`ingest accepted ${res.accepted} of ${count} events (duplicates ${res.duplicates}, refused ${res.refused.length})`);
  await cluster.waitForSpeedCaughtUp();
  const tEnd = performance.now();
  return { endToEnd: rate(count, tEnd - t0), publish: rate(count, tPub - t0), drainMs: tEnd - tPub, ...perEvent(meter?.stop(), count) };
}

/** A raw path on a fresh stream: `js` (stock pipelined js.publish) or `core` (the protocol ceiling), one partition set per consumer. */
export async function rawPass(ctx: BenchContext, cluster: BenchCluster, consumers: BenchChild[], mode: "js" | "core", count: number, seed: number): Promise<Pass> {
  const names = namesFor(ctx.env.prefix("raw"));
  const jsm = await jetstreamManager(cluster.nc);
  await ensureStreams(cluster.nc, names, { duplicateWindowMs: cluster.cfg.duplicateWindowMs });
  try {
    const partitions = cluster.cfg.partitions;
    const events = toStreamEvents(ctx.env.catalog, names, partitions, makeEvents(count, { idPrefix: `raw${seed}x`, seed }));
    const expected = consumers.map((_, i) => events.filter((e) => e.partition % consumers.length === i).length);
    await Promise.all(
      consumers.map((c, i) =>
        c.call("start", {
          natsUrl: ctx.env.natsUrl,
          stream: names.eventStream,
          subjects: Array.from({ length: partitions }, (_, p) => p).filter((p) => p % consumers.length === i).map((p) => names.eventSubject(p)),
          expected: expected[i],
        }),
      ),
    );
    const waits = consumers.map((c) => c.call("wait"));
    const meter = startCpuMeter(rawProcesses(ctx, consumers));
    const t0 = performance.now();
    if (mode === "js") await publishPipelined(jetstream(cluster.nc), events);
    else await publishCore(cluster.nc, events);
    const tPub = performance.now();
    await Promise.all(waits);
    const tEnd = performance.now();
    const cpu = meter.stop();
    const stored = (await jsm.streams.info(names.eventStream)).state.messages;
    if (stored !== count) throw new Error(`raw ${mode} publish stored ${stored} of ${count} events`);
    await Promise.all(consumers.map((c) => c.call("stop")));
    return { endToEnd: rate(count, tEnd - t0), publish: rate(count, tPub - t0), drainMs: tEnd - tPub, ...perEvent(cpu, count) };
  } finally {
    for (const s of [names.eventStream, names.deadLetterStream]) await jsm.streams.delete(s).catch(() => undefined); // best effort: frees the server
  }
}

/** The ingest figure (see the module header). */
export const ingestFigure: Figure = {
  name: "ingest",
  summary: "events/s from publish until the speed actors applied them, vs stock js.publish and the protocol ceiling",
  async run(ctx): Promise<FigureResult> {
    const n = ctx.opts.sizes.events;
    const warm = Math.max(2_000, Math.floor(n / 10));
    const cluster = await startBenchCluster(ctx.env, { roles: ["archiver", "coordinator", "executor", "serving"], speedNodes: CONSUMER_PROCESSES, prefix: ctx.env.prefix("ing") });
    const consumers = Array.from({ length: CONSUMER_PROCESSES }, () => forkBenchChild("raw_consumer", { env: ctx.env.childEnv }));
    try {
      let seed = 1;
      const passes = { product: [] as Pass[], js: [] as Pass[], core: [] as Pass[] };
      ctx.progress(`ingest: warm-up with ${warm} events per path`);
      await productPass(cluster, warm, seed++);
      await rawPass(ctx, cluster, consumers, "js", warm, seed++);
      await rawPass(ctx, cluster, consumers, "core", warm, seed++);
      for (let r = 0; r < ctx.opts.reps; r++) {
        ctx.progress(`ingest: repetition ${r + 1}/${ctx.opts.reps}, ${n} events per path`);
        passes.product.push(await productPass(cluster, n, seed++, productProcesses(ctx, cluster)));
        passes.js.push(await rawPass(ctx, cluster, consumers, "js", n, seed++));
        passes.core.push(await rawPass(ctx, cluster, consumers, "core", n, seed++));
      }
      const pick = (ps: Pass[], k: "endToEnd" | "publish") => ps.map((p) => p[k]);
      const jsLabel = "stock js.publish + ordered consumers";
      const coreLabel = "protocol ceiling + ordered consumers";
      const base = { figure: "ingest", unit: "events/s", better: Better.higher };
      return {
        name: "ingest",
        rows: [
          row({ ...base, label: "end to end", product: pick(passes.product, "endToEnd"), baseline: { label: jsLabel, samples: pick(passes.js, "endToEnd") } }),
          row({
            ...base,
            label: "end to end",
            product: pick(passes.product, "endToEnd"),
            baseline: { label: coreLabel, samples: pick(passes.core, "endToEnd") },
            goal: { kind: "ratio_at_least", value: 0.7 }, // issue #15
          }),
          row({ ...base, label: "publish phase", product: pick(passes.product, "publish"), baseline: { label: "stock js.publish", samples: pick(passes.js, "publish") } }),
          row({ ...base, label: "publish phase", product: pick(passes.product, "publish"), baseline: { label: "protocol ceiling", samples: pick(passes.core, "publish") } }),
        ],
        details: { eventsPerRepetition: n, warmUpEvents: warm, partitions: cluster.cfg.partitions, passes },
        notes: [
          `ingest: ${n} events per repetition over ${cluster.cfg.partitions} partitions; product = ingest.publishBatch in the process that also runs archiver, coordinator and serving, ${CONSUMER_PROCESSES} speed-node processes; ` +
            `baselines publish the same encoded payloads from the same process to ${CONSUMER_PROCESSES} consumer processes (ordered consumers, msgpack decode, Map count). ` +
            `End to end stops when every partition's consumer has applied its stream head (polled every 25 ms).`,
          ...cpuNote("product", passes.product),
          ...cpuNote("protocol ceiling", passes.core),
          ...cpuNote("stock js.publish", passes.js),
        ],
      };
    } finally {
      await Promise.all(consumers.map((c) => c.stop()));
      await cluster.close();
    }
  },
};
