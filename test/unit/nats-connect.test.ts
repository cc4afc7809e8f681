/** NATS server lists (LAMBDA_NATS_URL, --nats-url) and the replica count a cluster's streams and buckets get. */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { NatsConnection } from "@nats-io/transport-node";
import { natsServers, NatsUrlError } from "../../src/nats/connect.js";
import { CLUSTER_REPLICAS, streamReplicas } from "../../src/nats/setup.js";

test("a URL list gives every server, bare host:port as nats://, spaces trimmed", () => {
  assert.deepEqual(natsServers("nats://127.0.0.1:4222"), ["nats://127.0.0.1:4222"]);
  assert.deepEqual(natsServers("nats://a:4222, nats://b:4222 ,c:4223"), ["nats://a:4222", "nats://b:4222", "nats://c:4223"]);
  assert.deepEqual(natsServers("tls://nats.example:4222"), ["tls://nats.example:4222"]);
});

test("a malformed entry is refused, naming it", () => {
  for (const [url, entry, reason] of [
    ["", "", /is empty/],
    ["nats://a:4222,,nats://b:4222", "", /is an empty entry/],
    ["nats://a:4222,http://b:4222", "http://b:4222", /has scheme http/],
    ["nats://a:4222,nats://b:notaport", "nats://b:notaport", /is not a URL/],
  ] as const) {
    assert.throws(
      () => natsServers(url),
      (e: unknown) => e instanceof NatsUrlError && e.entry === entry && reason.test(e.message) && /several separated by commas/.test(e.message),
      url,
    );
  }
});

/** A connection as streamReplicas reads it: only the server's INFO. */
const connectedTo = (info: Partial<NonNullable<NatsConnection["info"]>> | undefined) => ({ info }) as unknown as NatsConnection;

test("replicas: the setting when given; else 1 on a single server and up to 3 on a cluster", () => {
  assert.equal(streamReplicas(connectedTo({}), 0), 1, "a single server");
  assert.equal(streamReplicas(connectedTo(undefined), 0), 1, "no INFO yet");
  assert.equal(streamReplicas(connectedTo({ cluster: "c", connect_urls: ["a:1", "b:1", "c:1"] })), CLUSTER_REPLICAS);
  assert.equal(streamReplicas(connectedTo({ cluster: "c", connect_urls: ["a:1", "b:1", "c:1", "d:1", "e:1"] })), 3, "never more than 3 by default");
  assert.equal(streamReplicas(connectedTo({ cluster: "c", connect_urls: ["a:1", "b:1"] })), 2, "a cluster of two");
  assert.equal(streamReplicas(connectedTo({ cluster: "c", connect_urls: ["a:1", "b:1", "c:1"] }), 1), 1, "the setting wins");
  assert.equal(streamReplicas(connectedTo({}), 5), 5);
});
