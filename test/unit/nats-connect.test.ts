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

test("credentials in a URL are taken out of the server list and passed as options; errors mask them", async () => {
  const { parseNatsUrl, redactNatsUrl, natsAuthOptions } = await import("../../src/nats/connect.js");
  assert.deepEqual(parseNatsUrl("nats://alice:s3cret@a:4222,nats://alice:s3cret@b:4222"), { servers: ["nats://a:4222", "nats://b:4222"], credentials: { user: "alice", pass: "s3cret" } });
  assert.deepEqual(parseNatsUrl("tls://t0ken@a:4222").credentials, { token: "t0ken" });
  assert.deepEqual(natsAuthOptions({}, { user: "alice", pass: "s3cret" }), { user: "alice", pass: "s3cret" });
  assert.equal(redactNatsUrl("nats://alice:s3cret@a:4222,nats://t0ken@b:1"), "nats://alice:***@a:4222,nats://***@b:1");
  assert.throws(() => natsServers("nats://alice:s3cret@a:4222,nats://bob:other@b:4222"), (e: unknown) => e instanceof NatsUrlError && /other credentials/.test(e.message) && !/s3cret|other@/.test(e.message));
  assert.throws(() => natsServers("nats://alice:s3cret@a:notaport"), (e: unknown) => e instanceof NatsUrlError && !e.message.includes("s3cret"));
});

test("two ways to authenticate, a certificate without its key, an unreadable file: refused, naming the setting", async () => {
  const { natsAuthOptions, natsSecurityOf, NatsSecurityError } = await import("../../src/nats/connect.js");
  const { defaultConfig } = await import("../../src/core/config.js");
  const { mkdtempSync, writeFileSync } = await import("node:fs");
  const { join } = await import("node:path");
  const { tmpdir } = await import("node:os");
  const refusedFor = (setting: RegExp) => (e: unknown) => e instanceof NatsSecurityError && setting.test(e.message);
  assert.throws(() => natsAuthOptions({ user: "a", token: "t" }), refusedFor(/LAMBDA_NATS_USER and LAMBDA_NATS_TOKEN/));
  assert.throws(() => natsAuthOptions({ token: "t" }, { user: "a", pass: "p" }), refusedFor(/LAMBDA_NATS_URL/));
  assert.throws(() => natsAuthOptions({ tlsCertFile: "/x" }), refusedFor(/LAMBDA_NATS_TLS_CERT_FILE: needs LAMBDA_NATS_TLS_KEY_FILE/));
  assert.throws(() => natsAuthOptions({ nkeySeedFile: "/nonexistent/seed" }), refusedFor(/LAMBDA_NATS_NKEY_SEED_FILE: cannot read \/nonexistent\/seed: ENOENT/));
  assert.throws(() => natsAuthOptions({ password: "p" }), refusedFor(/LAMBDA_NATS_PASSWORD: is set without LAMBDA_NATS_USER/));
  const dir = mkdtempSync(join(tmpdir(), "nats-sec-"));
  writeFileSync(join(dir, "pw"), "from-a-file\n");
  const cfg = { ...defaultConfig(), natsUser: "alice", natsPasswordFile: join(dir, "pw"), natsTlsCaFile: join(dir, "pw"), natsInboxPrefix: "_INBOX.alice" };
  const security = natsSecurityOf(cfg);
  assert.equal(security.password, "from-a-file");
  assert.deepEqual(natsAuthOptions(security), { inboxPrefix: "_INBOX.alice", user: "alice", pass: "from-a-file", tls: { caFile: join(dir, "pw") } });
  assert.throws(() => natsSecurityOf({ ...cfg, natsPassword: "inline" }), refusedFor(/LAMBDA_NATS_PASSWORD and LAMBDA_NATS_PASSWORD_FILE/));
});
