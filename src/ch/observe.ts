/**
 * ClickHouse as the process's metrics and health see it: every failed call counted by
 * operation (lambda_clickhouse_errors_total), and a readiness check that the engine answers
 * (`SELECT 1`, its result kept for a moment so probes and scrapes do not add load).
 */
import type { ClickHouseClient } from "@clickhouse/client";
import { ensureError } from "../core/errors.js";
import type { Health } from "../core/health.js";
import { OPERATIONS as CLICKHOUSE_OPERATIONS, type Metrics } from "../core/metrics.js";
import type { ChHandle } from "./client.js";

/** How long one answer of the readiness check is reused. */
export const CH_CHECK_CACHE_MS = 2_000;

const OPERATIONS = new Set<string>(CLICKHOUSE_OPERATIONS);

/** `handle` with every failed call counted in `metrics`. */
export function countClickHouseErrors(handle: ChHandle, metrics: Metrics): ChHandle {
  const counted = <T>(operation: string, call: () => Promise<T>): Promise<T> =>
    call().catch((err: unknown) => {
      metrics.clickhouseErrors.inc({ operation });
      throw err;
    });
  const client = new Proxy(handle.client, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof prop === "string" && OPERATIONS.has(prop)) return (...args: unknown[]) => counted(prop, () => (v as (...a: unknown[]) => Promise<unknown>).apply(target, args));
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    ...handle,
    client,
    master: { format: handle.master.format, insert: (...args: Parameters<ChHandle["master"]["insert"]>) => counted("insert", () => handle.master.insert(...args)) },
  };
}

/** Registers the readiness check "clickhouse" on `health`: the engine answers a `SELECT 1`. */
export function checkClickHouseReachable(client: ClickHouseClient, health: Health): () => void {
  let last: { atMs: number; result: Promise<string | null> } | undefined;
  return health.addCheck("clickhouse", () => {
    if (last && Date.now() - last.atMs < CH_CHECK_CACHE_MS) return last.result;
    const result = client
      .query({ query: "SELECT 1", format: "JSONEachRow" })
      .then((rs) => rs.json())
      .then(
        () => null,
        (err: unknown) => `ClickHouse does not answer: ${ensureError(err).message}`,
      );
    last = { atMs: Date.now(), result };
    return result;
  });
}
