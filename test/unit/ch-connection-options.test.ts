/**
 * How a process reaches a ClickHouse server (src/ch/connection_options.ts), without one: the
 * password from a file (trailing line breaks trimmed), the TLS files read and checked into
 * @clickhouse/client's `tls` option, and every wrong setting refused with a ConfigError naming the
 * variable and the file, never the password. Files are real files in a temporary directory.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rootCertificates } from "node:tls";
import { ignoredByChdb, redactUrl, serverConnection, type ChOptions } from "../../src/ch/connection_options.js";
import { ConfigError } from "../../src/core/errors.js";

const SECRET = "hunter2-Ω-secret";

/** A temporary directory with the files a test writes, removed on dispose. */
function files() {
  const dir = mkdtempSync(join(tmpdir(), "lambda-ch-opts-"));
  return {
    write(name: string, content: string | Buffer) {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    },
    path: (name: string) => join(dir, name),
    [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const base = (over: Partial<ChOptions>): ChOptions => ({ url: "https://ch.example:8443", username: "writer", password: "", chdbPath: "", ...over });

/** Runs `f`, which must throw a ConfigError for `key` whose message matches each of `parts` and holds no secret. */
function refused(f: () => unknown, key: string, ...parts: RegExp[]): ConfigError {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConfigError, `expected a ConfigError for ${key}, got ${String(err)}`);
  assert.equal(err.key, key, err.message);
  for (const p of parts) assert.match(err.message, p);
  assert.ok(!JSON.stringify({ ...err, message: err.message }).includes(SECRET), `the error shows the password: ${err.message}`);
  return err;
}

const CA_PEM = rootCertificates[0]!;
const keyPem = () => generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }) as string;

test("the password comes from its file with the trailing line break trimmed, and only from there", () => {
  using f = files();
  for (const [name, content] of [
    ["plain", SECRET],
    ["newline", `${SECRET}\n`],
    ["crlf", `${SECRET}\r\n`],
    ["several", `${SECRET}\n\n`],
  ] as const) {
    const c = serverConnection(base({ passwordFile: f.write(name, content) }));
    assert.equal(c.password, SECRET, name);
  }
  // Spaces are the password's own: only line breaks are trimmed.
  assert.equal(serverConnection(base({ passwordFile: f.write("spaces", ` ${SECRET} \n`) })).password, ` ${SECRET} `);
  assert.equal(serverConnection(base({ password: SECRET })).password, SECRET, "from the variable");
  assert.deepEqual(serverConnection(base({})), { url: "https://ch.example:8443", username: "writer", password: "" }, "no password, no tls");
});

test("an unreadable or empty password file, or two sources of the password, are refused naming the variable and the path", () => {
  using f = files();
  const missing = f.path("no-such-file");
  const err = refused(() => serverConnection(base({ passwordFile: missing })), "LAMBDA_CLICKHOUSE_PASSWORD_FILE", new RegExp(missing.replace(/[/.]/g, "\\$&")), /a readable file \(ENOENT/);
  assert.equal((err.cause as NodeJS.ErrnoException).code, "ENOENT", "the fs error is the cause");
  refused(() => serverConnection(base({ passwordFile: f.path("") })), "LAMBDA_CLICKHOUSE_PASSWORD_FILE", /a readable file \(EISDIR/);
  refused(() => serverConnection(base({ passwordFile: f.write("empty", "\n") })), "LAMBDA_CLICKHOUSE_PASSWORD_FILE", /it is empty/);
  refused(() => serverConnection(base({ password: SECRET, passwordFile: f.write("pw", SECRET) })), "LAMBDA_CLICKHOUSE_PASSWORD_FILE", /unset LAMBDA_CLICKHOUSE_PASSWORD or this/);
  const url = `https://writer:${encodeURIComponent(SECRET)}@ch.example:8443`;
  refused(() => serverConnection(base({ url, password: "other" })), "LAMBDA_CLICKHOUSE_URL", /https:\/\/writer:\*\*\*@ch\.example:8443/, /no password in the URL while LAMBDA_CLICKHOUSE_PASSWORD sets one/);
  refused(() => serverConnection(base({ url, passwordFile: f.write("pw2", "other") })), "LAMBDA_CLICKHOUSE_URL", /while LAMBDA_CLICKHOUSE_PASSWORD_FILE sets one/);
  assert.equal(serverConnection(base({ url })).password, "", "a URL's own password alone is @clickhouse/client's to use");
});

test("a CA file becomes the tls option's ca_cert; a certificate and key add mutual TLS", () => {
  using f = files();
  const ca = f.write("ca.pem", CA_PEM);
  const basic = serverConnection(base({ caFile: ca }));
  assert.deepEqual(basic.tls, { ca_cert: readFileSync(ca) });
  const cert = f.write("client.pem", rootCertificates[1]!);
  const key = f.write("client.key", keyPem());
  const mutual = serverConnection(base({ caFile: ca, certFile: cert, keyFile: key, passwordFile: f.write("pw", `${SECRET}\n`) }));
  assert.deepEqual(mutual, { url: "https://ch.example:8443", username: "writer", password: SECRET, tls: { ca_cert: readFileSync(ca), cert: readFileSync(cert), key: readFileSync(key) } });
  assert.equal(serverConnection(base({ url: "HTTPS://ch.example:8443", caFile: ca })).tls?.ca_cert.length, readFileSync(ca).length, "the scheme in any case");
});

test("TLS settings that cannot work are refused naming the variable: an http URL, a certificate without its key, a key without its certificate, no CA", () => {
  using f = files();
  const ca = f.write("ca.pem", CA_PEM);
  const cert = f.write("client.pem", rootCertificates[1]!);
  const key = f.write("client.key", keyPem());
  refused(() => serverConnection(base({ url: "http://ch.example:8123", caFile: ca })), "LAMBDA_CLICKHOUSE_CA_FILE", /an https:\/\/ LAMBDA_CLICKHOUSE_URL/, /scheme is http:/);
  refused(() => serverConnection(base({ url: "http://ch.example:8123", certFile: cert, keyFile: key, caFile: ca })), "LAMBDA_CLICKHOUSE_CA_FILE", /https/);
  refused(() => serverConnection(base({ url: "http://ch.example:8123", keyFile: key })), "LAMBDA_CLICKHOUSE_KEY_FILE", /https/);
  refused(() => serverConnection(base({ caFile: ca, certFile: cert })), "LAMBDA_CLICKHOUSE_CERT_FILE", /LAMBDA_CLICKHOUSE_KEY_FILE set too/);
  refused(() => serverConnection(base({ caFile: ca, keyFile: key })), "LAMBDA_CLICKHOUSE_KEY_FILE", /LAMBDA_CLICKHOUSE_CERT_FILE set too/);
  refused(() => serverConnection(base({ certFile: cert, keyFile: key })), "LAMBDA_CLICKHOUSE_CA_FILE", /the CA that verifies the server/);
});

test("a TLS file that is missing or holds no certificate or key is refused naming the variable and the path", () => {
  using f = files();
  const ca = f.write("ca.pem", CA_PEM);
  const cert = f.write("client.pem", rootCertificates[1]!);
  const key = f.write("client.key", keyPem());
  const junk = f.write("junk.pem", "not a certificate\n");
  refused(() => serverConnection(base({ caFile: f.path("gone.pem") })), "LAMBDA_CLICKHOUSE_CA_FILE", /gone\.pem/, /a readable file \(ENOENT/);
  refused(() => serverConnection(base({ caFile: junk })), "LAMBDA_CLICKHOUSE_CA_FILE", /junk\.pem/, /a file holding a PEM certificate/);
  refused(() => serverConnection(base({ caFile: ca, certFile: junk, keyFile: key })), "LAMBDA_CLICKHOUSE_CERT_FILE", /a file holding a PEM certificate/);
  refused(() => serverConnection(base({ caFile: ca, certFile: cert, keyFile: junk })), "LAMBDA_CLICKHOUSE_KEY_FILE", /junk\.pem/, /an unencrypted PEM private key/);
  refused(() => serverConnection(base({ caFile: ca, certFile: cert, keyFile: f.path("gone.key") })), "LAMBDA_CLICKHOUSE_KEY_FILE", /gone\.key/, /ENOENT/);
});

test("chDB's ignored settings are named by variable, never by value; URLs are printed without their password", () => {
  assert.deepEqual(ignoredByChdb({ url: "", username: "default", password: "", chdbPath: "/d" }), []);
  const ignored = ignoredByChdb({ url: "", username: "default", password: SECRET, chdbPath: "/d", passwordFile: "/p", caFile: "/ca", certFile: "", keyFile: "/k" });
  assert.deepEqual(ignored, ["LAMBDA_CLICKHOUSE_PASSWORD", "LAMBDA_CLICKHOUSE_PASSWORD_FILE", "LAMBDA_CLICKHOUSE_CA_FILE", "LAMBDA_CLICKHOUSE_KEY_FILE"]);
  assert.equal(redactUrl(`https://u:${encodeURIComponent(SECRET)}@ch:8443/db`), "https://u:***@ch:8443/db");
  assert.equal(redactUrl("http://ch:8123"), "http://ch:8123");
  assert.ok(!redactUrl(`not a url ${SECRET}`).includes(SECRET));
});
