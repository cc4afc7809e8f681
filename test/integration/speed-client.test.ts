/**
 * The speed client's request-reply over one reply inbox (src/nats/reply_inbox.ts)
 * on a real nats-server, with plain NATS responders standing in for actors:
 * replies that come back out of order reach their own callers, a partition
 * nobody listens for fails at once, a silent one after its own timeout (short
 * timeouts are not held up by longer ones), and close() rejects what waits.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { createSpeedClient, SpeedActorUnavailableError, SpeedUnavailableReasons, type SpeedClient } from "../../src/actors/index.js";
import { UnavailableError } from "../../src/core/errors.js";
import { decode, encode } from "../../src/nats/codec.js";
import { connectNats } from "../../src/nats/connect.js";
import { namesFor, type Names } from "../../src/nats/names.js";
import { startTestNats } from "../harness/nats.js";

const query = (metric: string) => ({ run: 0, metric, definition: `${metric}-definition`, keys: ["k"], fromMs: 0, toMs: 1, series: false, generation: 0 });

/** A nats-server, a connection and a speed client for one test; all closed after it. */
async function withSpeedClient(tag: string, body: (t: { nc: NatsConnection; names: Names; speed: SpeedClient }) => Promise<void>): Promise<void> {
  const nats = await startTestNats();
  try {
    const nc = await connectNats(nats.url, `speed-client-${tag}`);
    const names = namesFor(`${tag}${process.pid}`);
    const speed = createSpeedClient(nc, names);
    try {
      await body({ nc, names, speed });
    } finally {
      speed.close();
      await nc.close();
    }
  } finally {
    await nats.close();
  }
}

test("speed client: correlation, no responders, timeouts and close", { timeout: 30_000 }, () =>
  withSpeedClient("sc", async ({ nc, names, speed }) => {
    // Partitions 0..3 answer with their partition and the metric asked, later for lower partitions,
    // so replies arrive in the reverse order of the requests. Partition 5 listens and never answers.
    const held: Msg[] = [];
    for (let p = 0; p < 4; p++) {
      nc.subscribe(names.speedQuerySubject(p), {
        callback: (_err, m) => {
          const q = decode<{ metric: string }>(m.data);
          setTimeout(() => m.respond(encode({ kind: "moved_on", run: p, metric: q.metric })), (4 - p) * 20);
        },
      });
    }
    nc.subscribe(names.speedQuerySubject(5), { callback: (_err, m) => void held.push(m) });
    await nc.flush();

    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => speed.query(i % 4, query(`m${i}`))));
    for (const [i, r] of replies.entries()) assert.deepEqual(r, { kind: "moved_on", run: i % 4, metric: `m${i}` }, `request ${i}`);

    const t0 = Date.now();
    await assert.rejects(speed.query(4, query("x")), (e: unknown) => {
      assert.ok(e instanceof SpeedActorUnavailableError && e instanceof UnavailableError);
      assert.equal(e.reason, SpeedUnavailableReasons.noResponders);
      assert.equal(e.partition, 4);
      assert.match(e.message, /no speed actor listens for partition 4 \(query\)/);
      return true;
    });
    assert.ok(Date.now() - t0 < 1_000, "no responders fails at once, not after the timeout");

    // A long wait first, then a short one: the short one fails on its own time.
    const long = speed.query(5, query("long"), 3_000).then(
      () => assert.fail("partition 5 never answers"),
      (e: unknown) => e,
    );
    const t1 = Date.now();
    const short = await speed.query(5, query("short"), 150).then(
      () => assert.fail("partition 5 never answers"),
      (e: unknown) => e,
    );
    const waited = Date.now() - t1;
    assert.ok(short instanceof SpeedActorUnavailableError);
    assert.equal(short.reason, SpeedUnavailableReasons.timeout);
    assert.equal(short.partition, 5);
    assert.ok(short.waitedMs >= 150 && waited < 1_500, `the 150 ms request failed after ${short.waitedMs} ms (observed ${waited} ms)`);
    assert.match(short.message, /speed actor of partition 5 did not answer a query within \d+ ms/);

    // A reply after its timeout is dropped; the client goes on answering.
    held[1]!.respond(encode({ kind: "moved_on", run: 9 }));
    assert.deepEqual(await speed.query(2, query("after")), { kind: "moved_on", run: 2, metric: "after" });

    // close() rejects what still waits (the long request), and every later request.
    speed.close();
    const closed = await long;
    assert.ok(closed instanceof UnavailableError && /speed client is closed/.test(closed.message), String(closed));
    await assert.rejects(speed.status(0), (e: unknown) => e instanceof UnavailableError && /closed/.test(e.message));
  }),
);

test("speed client: requests waiting when the connection closes fail at once", { timeout: 30_000 }, () =>
  withSpeedClient("scc", async ({ nc, names, speed }) => {
    nc.subscribe(names.speedStatusSubject(0), { callback: () => undefined }); // listens, never answers
    await nc.flush();
    const pending = speed.status(0, 20_000).then(
      () => assert.fail("nobody answers"),
      (e: unknown) => e,
    );
    const t0 = Date.now();
    await nc.close();
    const err = await pending;
    assert.ok(err instanceof UnavailableError, String(err));
    assert.match(err.message, /subscription ended/);
    assert.ok(Date.now() - t0 < 5_000, "not held until the 20 s timeout");
  }),
);
