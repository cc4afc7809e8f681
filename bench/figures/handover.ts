/**
 * Speed-node failover: one of three speed nodes is SIGKILLed while queries run
 * without pause, and the figure times, from the kill, the first answer that is
 * complete again with the killed node's partitions served by their new owners
 * (a query started after the kill, answered complete, whose provenance names a
 * newer generation for each of those partitions). The baseline is the node
 * timeout (LAMBDA_NODE_TIMEOUT_MS): a dead node's partitions move only once its
 * heartbeat is that old, so the timeout is the floor, and the ratio says how
 * close to it the product comes (timeout / time). What it adds: the next
 * membership check, the new owner's restore from the snapshot and replay.
 *
 * The queries are TopK over every partition, without strict, one started every
 * 25 ms whatever the earlier ones do (an answer waiting out a dead actor's
 * timeout must not delay the next): the figure also counts the answers that
 * were partial and the calls that failed (none should).
 * After each kill a new speed node replaces the dead one, so every try starts
 * from three.
 */
import { TopKRequest, type LambdaServiceClient, type TopKResponse } from "../../src/gen/lambda/v1/serving.js";
import type { ServiceError } from "@grpc/grpc-js";
import { startBenchCluster } from "../cluster.js";
import type { BenchContext } from "../context.js";
import { Better, row, type Figure, type FigureResult } from "../figure.js";
import { waitFor } from "../wait.js";
import { makeEvents, METRIC, SOURCE } from "../workload.js";

/** The node timeout and heartbeat the figure runs with: the defaults; --quick a fifth of them. */
const FULL = { nodeTimeoutMs: 5_000, heartbeatIntervalMs: 1_000 };
const QUICK = { nodeTimeoutMs: 1_000, heartbeatIntervalMs: 200 };
const SPEED_NODES = 3;
/** The issue asks for at least five tries. */
const MIN_TRIES = 5;

function topK(client: LambdaServiceClient, fromMs: number, toMs: number): Promise<TopKResponse> {
  const req = TopKRequest.fromPartial({ metric: METRIC, k: 1, from: new Date(fromMs), to: new Date(toMs) });
  return new Promise((resolve, reject) => client.topK(req, (err: ServiceError | null, res: TopKResponse) => (err ? reject(err) : resolve(res))));
}

/** A query is started this often, whatever the earlier ones are doing, so a slow answer never hides a quick one. */
const ASK_EVERY_MS = 25;

/** Starts a query every ASK_EVERY_MS and keeps each answer with when it was asked and answered. */
function queryLoop(client: LambdaServiceClient, fromMs: number, toMs: number) {
  const answers: { askedAt: number; answeredAt: number; r: TopKResponse }[] = [];
  const inFlight = new Set<Promise<void>>();
  let failed = 0;
  const ask = () => {
    const askedAt = performance.now();
    const call: Promise<void> = topK(client, fromMs, toMs).then(
      (r) => void answers.push({ askedAt, answeredAt: performance.now(), r }),
      () => void failed++,
    );
    inFlight.add(call);
    void call.finally(() => inFlight.delete(call));
  };
  const timer = setInterval(ask, ASK_EVERY_MS);
  ask();
  return {
    answers,
    failed: () => failed,
    stop: async () => {
      clearInterval(timer);
      await Promise.all(inFlight);
    },
  };
}

/** The speed-node failover figure (see the module header). */
export const handoverFigure: Figure = {
  name: "handover",
  summary: "speed node SIGKILL → its partitions complete again in answers, vs the node timeout (3 speed nodes, queries without pause)",
  async run(ctx: BenchContext): Promise<FigureResult> {
    const tries = Math.max(MIN_TRIES, ctx.opts.reps);
    const { nodeTimeoutMs, heartbeatIntervalMs } = ctx.opts.quick ? QUICK : FULL;
    const prefix = ctx.env.prefix("ho");
    const cluster = await startBenchCluster(ctx.env, {
      roles: ["archiver", "coordinator", "executor", "serving"],
      speedNodes: SPEED_NODES,
      prefix,
      config: { nodeTimeoutMs, heartbeatIntervalMs, snapshotIntervalMs: 1_000 },
    });
    const completeMs: number[] = [];
    const perTry: { killed: string; partitions: number[]; completeMs: number; partialAnswers: number; failedCalls: number }[] = [];
    const events = makeEvents(20_000, { idPrefix: "ho", seed: 17 });
    const fromMs = Math.min(...events.map((e) => e.ts)) - 60_000;
    const toMs = Math.max(...events.map((e) => e.ts)) + 60_000;
    try {
      await cluster.ingest.publishBatch(SOURCE, events);
      await cluster.roles.coordinator!.runNow();
      await cluster.ingest.publishBatch(SOURCE, makeEvents(20_000, { idPrefix: "ho2", seed: 19 }));
      await cluster.waitForSpeedCaughtUp();
      let spawned = SPEED_NODES;
      for (let t = 0; t < tries; t++) {
        ctx.progress(`handover: try ${t + 1}/${tries}: SIGKILL a speed node under queries`);
        const before = cluster.roles.coordinator!.assignments();
        const victim = cluster.speedNodes[t % cluster.speedNodes.length]!;
        const moved = before.filter((a) => a.node === victim.nodeId);
        if (moved.length === 0) throw new Error(`speed node ${victim.nodeId} owns no partition to move`);
        const q = queryLoop(cluster.grpc!, fromMs, toMs);
        await waitFor("a complete answer before the kill", () => q.answers.some((a) => a.r.complete), { timeoutMs: 30_000 });
        const killedAt = performance.now();
        await cluster.killSpeedNode(victim);
        // Complete again: asked after the kill, complete, each moved partition answered by a newer generation.
        const served = (r: TopKResponse) => r.complete && moved.every((m) => r.partitions.some((p) => p.partition === m.partition && p.generation > m.generation));
        const first = await waitFor("an answer with the moved partitions complete again", () => q.answers.find((a) => a.askedAt > killedAt && served(a.r)), { timeoutMs: 120_000 });
        await q.stop();
        const ms = first.answeredAt - killedAt;
        completeMs.push(ms);
        perTry.push({ killed: victim.nodeId, partitions: moved.map((m) => m.partition), completeMs: ms, partialAnswers: q.answers.filter((a) => !a.r.complete).length, failedCalls: q.failed() });
        const joiner = await cluster.addSpeedNode(`${prefix}-speed-${spawned++}`);
        // The next try starts from three nodes that each own their share.
        await waitFor("the new speed node to own partitions", () => cluster.roles.coordinator!.assignments().some((a) => a.node === joiner.nodeId), { timeoutMs: 60_000 });
        await cluster.waitForSpeedCaughtUp();
      }
    } finally {
      await cluster.close();
    }
    const multiples = completeMs.map((x) => (x / nodeTimeoutMs).toFixed(2)).join(", ");
    return {
      name: "handover",
      rows: [
        row({
          figure: "handover",
          label: "speed node SIGKILL → partitions complete again",
          unit: "ms",
          better: Better.lower,
          product: completeMs,
          baseline: { label: `the node timeout (${nodeTimeoutMs} ms)`, samples: completeMs.map(() => nodeTimeoutMs) },
        }),
      ],
      details: { nodeTimeoutMs, heartbeatIntervalMs, speedNodes: SPEED_NODES, tries: perTry },
      notes: [
        `handover: ${tries} tries, ${SPEED_NODES} speed nodes, node timeout ${nodeTimeoutMs} ms, heartbeat ${heartbeatIntervalMs} ms, a TopK over every partition started every ${ASK_EVERY_MS} ms (not strict).`,
        `handover: as multiples of the node timeout: ${multiples}; partial answers per try: ${perTry.map((p) => p.partialAnswers).join(", ")}; failed calls: ${perTry.reduce((n, p) => n + p.failedCalls, 0)}.`,
      ],
    };
  },
};
