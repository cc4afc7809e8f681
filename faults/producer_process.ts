#!/usr/bin/env node
/**
 * F5's ingest process: a producer of its own, killed by the matrix before it has
 * seen every acknowledgement. It publishes the events it is handed (JSON lines on
 * stdin, pageviews) through the project's ingest library, four at a time, and
 * prints `acked <id> <partition> <seq> [duplicate]` for each acknowledgement, so that the
 * ledger learns exactly which publishes a client saw succeed. Settings come from
 * the same LAMBDA_* variables as the roles.
 */
import { createInterface } from "node:readline";
import { loadCatalog } from "../src/core/catalog.js";
import { silentLogger } from "../src/core/logger.js";
import { createIngest } from "../src/ingest/index.js";
import { connectNats } from "../src/nats/connect.js";
import { namesFor } from "../src/nats/names.js";

const CONCURRENCY = 4;

async function main() {
  const env = (k: string) => {
    const v = process.env[k];
    if (!v) throw new Error(`${k} is not set`);
    return v;
  };
  const nc = await connectNats(env("LAMBDA_NATS_URL"), "fault producer");
  const ingest = createIngest({ nc, catalog: loadCatalog(env("LAMBDA_CATALOG")), names: namesFor(env("LAMBDA_PREFIX")), partitions: Number(env("LAMBDA_PARTITIONS")), log: silentLogger });
  const queue: unknown[] = [];
  for await (const line of createInterface({ input: process.stdin })) if (line.trim()) queue.push(JSON.parse(line));
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let e = queue.shift(); e !== undefined; e = queue.shift()) {
        const ack = await ingest.publish("pageviews", e);
        process.stdout.write(`acked ${(e as { id: string }).id} ${ack.partition} ${ack.seq}${ack.duplicate ? " duplicate" : ""}\n`);
      }
    }),
  );
  await nc.drain();
}

main().catch((err) => {
  process.stderr.write(`fault producer: ${(err as Error).stack ?? err}\n`);
  process.exit(2);
});
