/**
 * Ingest limits on a real nats-server (max_payload 1 MiB by default, read from
 * the connection): an event too large for one message is refused on its own
 * line, with the reason, and dead-lettered with its raw copy truncated so the
 * record fits; the rest of the input goes in. A huge invalid event's
 * dead-letter record fits too.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { IngestJson } from "../../src/cli/commands/ingest.js";
import { EventTooLargeError, type DeadLetter } from "../../src/ingest/index.js";
import { decode } from "../../src/nats/codec.js";
import { startTestCluster, type TestCluster } from "../harness/cluster.js";
import { lambdactl, parseJson } from "../harness/cli.js";

const T = Date.UTC(2026, 5, 8, 14, 23, 0);

async function streamMessages(cluster: TestCluster, stream: string): Promise<number> {
  return (await (await jetstreamManager(cluster.nc)).streams.info(stream)).state.messages;
}

async function deadLetters(cluster: TestCluster): Promise<DeadLetter[]> {
  const stored = await streamMessages(cluster, cluster.names.deadLetterStream);
  const consumer = await jetstream(cluster.nc).consumers.get(cluster.names.deadLetterStream);
  const out: DeadLetter[] = [];
  if (stored === 0) return out;
  for await (const m of await consumer.fetch({ max_messages: stored, expires: 5_000 })) {
    out.push(decode<DeadLetter>(m.data));
    if (out.length === stored) break;
  }
  return out;
}

test("an event over max_payload is refused on its line and dead-lettered truncated; the rest of the input goes in", { timeout: 120_000 }, async () => {
  await using cluster = await startTestCluster({ partitions: 2, speedNodes: 1 });
  const maxPayload = cluster.nc.info!.max_payload;
  const huge = "x".repeat(maxPayload + 1_000);
  const good = Array.from({ length: 20 }, (_, i) => ({ id: `ok-${i}`, article_id: `a-${i % 3}`, user_id: "u", ts: T }));
  const lines = [
    JSON.stringify({ id: "big-1", article_id: "a-0", user_id: "u", ts: T, device: huge }),
    ...good.slice(0, 10).map((e) => JSON.stringify(e)),
    // Invalid and huge: its dead-letter record must fit as well.
    JSON.stringify({ id: "big-2", article_id: "a-0", user_id: "u", ts: "not a time", device: huge }),
    ...good.slice(10).map((e) => JSON.stringify(e)),
  ];
  const dir = mkdtempSync(join(tmpdir(), "lambda-ingest-limits-"));
  try {
    writeFileSync(join(dir, "events.jsonl"), lines.join("\n") + "\n");
    const env = { LAMBDA_NATS_URL: cluster.cfg.natsUrl, LAMBDA_PREFIX: cluster.cfg.prefix, LAMBDA_PARTITIONS: String(cluster.cfg.partitions), LAMBDA_CATALOG: cluster.cfg.catalogPath };
    const r = await lambdactl(["ingest", "pageviews", "events.jsonl", "--json"], { cwd: dir, env });
    assert.equal(r.code, 1, `refused lines make exit 1; stderr: ${r.stderr}`);
    const out = parseJson<IngestJson>(r);
    assert.equal(out.accepted, good.length, "every other event went in");
    assert.deepEqual(out.refusals.map((f) => [f.line, f.eventId, f.field]), [
      [1, "big-1", "device"],
      [12, "big-2", "ts"],
    ]);
    assert.match(out.refusals[0]!.reason, new RegExp(`max_payload of ${maxPayload} bytes`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(await streamMessages(cluster, cluster.names.eventStream), good.length);

  const dead = await deadLetters(cluster);
  assert.deepEqual(dead.map((d) => d.eventId), ["big-1", "big-2"]);
  for (const d of dead) {
    const whole = JSON.stringify(JSON.parse(lines[d.eventId === "big-1" ? 0 : 11]!));
    assert.equal(d.rawTruncatedFrom, Buffer.byteLength(whole), `${d.eventId}: says how long the raw event was`);
    assert.equal(typeof d.raw, "string");
    assert.ok(whole.startsWith(d.raw as string) && (d.raw as string).length > 1_000, `${d.eventId}: raw is the start of the event's JSON`);
  }

  // The library refuses it the same way.
  await assert.rejects(cluster.ingest.publish("pageviews", { id: "big-3", article_id: "a-1", user_id: "u", ts: T, device: huge }), (err: unknown) => {
    assert.ok(err instanceof EventTooLargeError);
    assert.equal(err.maxPayload, maxPayload);
    assert.ok(err.bytes > maxPayload);
    return true;
  });
});
