/** Reads of batch views (the serving layer's side of ClickHouse). */
import type { ClickHouseClient } from "@clickhouse/client";
import { queryRows } from "./client.js";
import { viewTable } from "./schema.js";

/** Sum of `metric` for `key` over windows starting in [fromMs, toMs) in view version `run`. */
export async function readBatchTotal(client: ClickHouseClient, db: string, metric: string, run: number, key: string, fromMs: number, toMs: number): Promise<number> {
  const rows = await queryRows<{ v: number | string }>(
    client,
    `SELECT sum(value) AS v FROM ${viewTable(db, metric)} ` +
      "WHERE run = {run:UInt64} AND key = {key:String} " +
      "AND window_start >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND window_start < fromUnixTimestamp64Milli({to:Int64}, 'UTC')",
    { run, key, from: fromMs, to: toMs },
  );
  return Number(rows[0]?.v ?? 0);
}
