/**
 * Creating streams and buckets on a cluster whose nodes have just started: JetStream refuses
 * with "no suitable peers for placement" until its meta leader knows enough current peers, and
 * the creation is tried again for a while; any other refusal is not.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { JetStreamApiError } from "@nats-io/jetstream";
import { whenPlaceable } from "../../src/nats/setup.js";

const refusal = (code: number, description: string) => new JetStreamApiError({ code: 500, err_code: code, description });

test("a creation refused for want of peers is tried again until it is placed", async () => {
  let calls = 0;
  const got = await whenPlaceable(async () => {
    if (++calls < 3) throw refusal(10005, "no suitable peers for placement");
    return "created";
  });
  assert.equal(got, "created");
  assert.equal(calls, 3);
});

test("any other refusal is thrown at once; a cluster that never places is given up at the deadline", async () => {
  let calls = 0;
  await assert.rejects(
    whenPlaceable(async () => {
      calls++;
      throw refusal(10058, "stream name already in use with a different configuration");
    }),
    /already in use/,
  );
  assert.equal(calls, 1);
  calls = 0;
  await assert.rejects(
    whenPlaceable(async () => {
      calls++;
      throw refusal(10005, "no suitable peers for placement");
    }, 0),
    /no suitable peers/,
  );
  assert.equal(calls, 1, "a wait of 0 tries once");
});
