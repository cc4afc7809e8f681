/**
 * Bench helper process: the gRPC load generator. It runs apart from the
 * server it loads (as a client would), so the server's process does only the
 * server's work.
 *
 * Calls: latency {target, calls, keysPerCall, firstCall?} → latency percentiles of
 * sequential Query calls (keys rotating over the target's keys, starting at call
 * number firstCall);
 * throughput {target, calls, concurrency} → elapsed ms for `calls` one-key calls.
 */
import { credentials } from "@grpc/grpc-js";
import { LambdaServiceClient } from "../../src/gen/lambda/v1/serving.js";
import { query } from "../grpc_util.js";
import { percentiles } from "../stats.js";
import { serveParent } from "./ipc.js";

/** A server to load and what to ask it. */
export interface QueryTarget {
  address: string;
  metric: string;
  keys: string[];
  fromMs: number;
  toMs: number;
  /** Ask for [now − (toMs − fromMs), now) at each call, as a "last 30 minutes" dashboard does, instead of the fixed range. */
  sliding?: boolean;
  /**
   * Move the fixed range back by `stepMs` once every key has been asked, up to `count`
   * steps, so that calls ask for (key, range) pairs a cache has not seen.
   */
  shift?: { stepMs: number; count: number };
}

/** Calls made and failed (a failed call still counts in the latency). */
export interface LoadResult {
  calls: number;
  errors: number;
  firstError: string | null;
}

const clients = new Map<string, LambdaServiceClient>();

function client(address: string): LambdaServiceClient {
  let c = clients.get(address);
  if (!c) clients.set(address, (c = new LambdaServiceClient(address, credentials.createInsecure())));
  return c;
}

function makeCaller(t: QueryTarget, keysPerCall: number, firstCall = 0) {
  const c = client(t.address);
  const stats: LoadResult = { calls: 0, errors: 0, firstError: null };
  const call = async (callIndex: number) => {
    const i = callIndex + firstCall;
    const keys = Array.from({ length: keysPerCall }, (_, j) => t.keys[(i * keysPerCall + j) % t.keys.length]!);
    const back = t.shift ? (Math.floor((i * keysPerCall) / t.keys.length) % t.shift.count) * t.shift.stepMs : 0;
    try {
      const now = Date.now();
      const res = t.sliding ? await query(c, t.metric, keys, now - (t.toMs - t.fromMs), now) : await query(c, t.metric, keys, t.fromMs - back, t.toMs - back);
      if (res.answers.length !== keys.length) throw new Error(`${res.answers.length} answers for ${keys.length} keys`);
    } catch (err) {
      stats.errors++;
      stats.firstError ??= err instanceof Error ? err.message : String(err);
    } finally {
      stats.calls++;
    }
  };
  return { call, stats };
}

serveParent(
  {
    async latency(b: { target: QueryTarget; calls: number; keysPerCall: number; firstCall?: number }) {
      const { call, stats } = makeCaller(b.target, b.keysPerCall, b.firstCall);
      const ms: number[] = [];
      for (let i = 0; i < b.calls; i++) {
        const t0 = performance.now();
        await call(i);
        ms.push(performance.now() - t0);
      }
      return { ...percentiles(ms), ...stats };
    },
    async throughput(b: { target: QueryTarget; calls: number; concurrency: number }) {
      const { call, stats } = makeCaller(b.target, 1);
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: b.concurrency }, async () => {
          while (next < b.calls) await call(next++);
        }),
      );
      return { elapsedMs: performance.now() - t0, ...stats };
    },
  },
  async () => {
    for (const c of clients.values()) c.close();
  },
);
