/**
 * The ways a role proves who it is to NATS, each against a real nats-server that requires it:
 * a token (a file, or in the URL), a user and password in the URL, an nkey seed file, and
 * mutual TLS with server name checking. The wrong secret, no certificate, or a certificate name
 * that does not match are refused.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { connectNats, natsSecurityOf, type NatsSecurity } from "../../src/nats/connect.js";
import { defaultConfig } from "../../src/core/config.js";
import { startNatsServer } from "../../src/nats/server_process.js";
import { createLocalCa, LOOPBACK_HOSTS } from "../../src/main/pki.js";

/** A server started with `config`, a directory for files, and a way to try a connection. */
async function withServer(config: (dir: string) => string, body: (url: string, dir: string) => Promise<void>) {
  const dir = mkdtempSync(join(tmpdir(), "lambda-nats-auth-"));
  writeFileSync(join(dir, "nats.conf"), config(dir));
  const server = await startNatsServer({ path: process.env.PATH ?? "", args: ["-c", join(dir, "nats.conf")] });
  try {
    await body(server.url, dir);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function connects(url: string, security: NatsSecurity = {}): Promise<void> {
  const nc = await connectNats(url, "auth-methods test", security);
  // Connected and answered: a round trip through the server.
  await nc.flush();
  await nc.close();
}

/** The first connection attempt's error (connectNats keeps retrying a lost server, not a refused first connect). */
async function refusedWith(url: string, security: NatsSecurity, pattern: RegExp): Promise<void> {
  await assert.rejects(connectNats(url, "auth-methods test", security), (err: Error) => {
    assert.match(String(err), pattern);
    return true;
  });
}

test("a token from a file, or in the URL; a wrong one is refused", { timeout: 60_000 }, async () => {
  await withServer(
    () => `authorization { token: "s3cret-token" }\n`,
    async (url, dir) => {
      writeFileSync(join(dir, "token"), "s3cret-token\n");
      await connects(url, natsSecurityOf({ ...defaultConfig(), natsTokenFile: join(dir, "token") }));
      await connects(url.replace("nats://", "nats://s3cret-token@"));
      await refusedWith(url, { token: "wrong" }, /Authorization Violation/i);
      await refusedWith(url, {}, /Authorization Violation/i);
    },
  );
});

test("a user and password in the URL; an nkey seed file", { timeout: 60_000 }, async () => {
  const kp = createUser();
  await withServer(
    () => `authorization { users = [ { user: "alice", password: "pa55" }, { nkey: "${kp.getPublicKey()}" } ] }\n`,
    async (url, dir) => {
      await connects(url.replace("nats://", "nats://alice:pa55@"));
      await refusedWith(url.replace("nats://", "nats://alice:wrong@"), {}, /Authorization Violation/i);
      writeFileSync(join(dir, "user.nk"), kp.getSeed(), { mode: 0o600 });
      await connects(url, { nkeySeedFile: join(dir, "user.nk") });
      writeFileSync(join(dir, "other.nk"), createUser().getSeed(), { mode: 0o600 });
      await refusedWith(url, { nkeySeedFile: join(dir, "other.nk") }, /Authorization Violation/i);
    },
  );
});

test("mutual TLS: the CA checks the server and its name, the server checks the client's certificate", { timeout: 60_000 }, async () => {
  const ca = createLocalCa("auth-methods test CA");
  const server = ca.issue({ commonName: "nats", hosts: [...LOOPBACK_HOSTS], usage: "server" });
  const client = ca.issue({ commonName: "speed", usage: "client" });
  const stranger = createLocalCa("stranger").issue({ commonName: "x", usage: "client" });
  await withServer(
    (dir) => {
      for (const [name, text] of Object.entries({ "ca.pem": ca.ca.cert, "server.pem": server.cert, "server.key": server.key, "client.pem": client.cert, "client.key": client.key, "stranger.pem": stranger.cert, "stranger.key": stranger.key })) {
        writeFileSync(join(dir, name), text, { mode: 0o600 });
      }
      return `tls { cert_file: "${join(dir, "server.pem")}", key_file: "${join(dir, "server.key")}", ca_file: "${join(dir, "ca.pem")}", verify: true }\n`;
    },
    async (url, dir) => {
      const f = (name: string) => join(dir, name);
      const localhost = url.replace("127.0.0.1", "localhost");
      await connects(localhost, { tlsCaFile: f("ca.pem"), tlsCertFile: f("client.pem"), tlsKeyFile: f("client.key") });
      // No client certificate, or one of another CA: the server refuses (under TLS 1.3 after the
      // handshake, so nats.js sees the connection go and, on a first connect, gives up at its timeout).
      await refusedWith(localhost, { tlsCaFile: f("ca.pem") }, /certificate|socket|closed|TLS|ECONNRESET|timeout/i);
      await refusedWith(localhost, { tlsCaFile: f("ca.pem"), tlsCertFile: f("stranger.pem"), tlsKeyFile: f("stranger.key") }, /certificate|socket|closed|TLS|ECONNRESET|timeout/i);
      // The server's certificate must carry the name asked for.
      await refusedWith(localhost, { tlsCaFile: f("ca.pem"), tlsCertFile: f("client.pem"), tlsKeyFile: f("client.key"), tlsServerName: "nats.example.com" }, /altnames|Hostname|does not match|ERR_TLS_CERT_ALTNAME_INVALID/i);
      // Trusting another CA: the client refuses the server.
      writeFileSync(f("other-ca.pem"), createLocalCa("other").ca.cert);
      await refusedWith(localhost, { tlsCaFile: f("other-ca.pem"), tlsCertFile: f("client.pem"), tlsKeyFile: f("client.key") }, /self.signed|unable to verify|certificate/i);
    },
  );
});
