/** The local cluster's throwaway CA: what it signs verifies, and TLS with it works both ways. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import tls from "node:tls";
import { createLocalCa } from "../../src/main/pki.js";

test("a server certificate is signed by the CA and names the loopback hosts", () => {
  const ca = createLocalCa("test CA");
  const server = ca.issue({ commonName: "nats", hosts: ["localhost", "127.0.0.1"], usage: "server" });
  const caCert = new X509Certificate(ca.ca.cert);
  const cert = new X509Certificate(server.cert);
  assert.ok(caCert.ca, "the CA certificate is a CA");
  assert.ok(cert.verify(caCert.publicKey), "signed by the CA");
  assert.ok(cert.checkIssued(caCert));
  assert.equal(cert.ca, false);
  assert.equal(cert.checkHost("localhost"), "localhost");
  assert.equal(cert.checkIP("127.0.0.1"), "127.0.0.1");
  assert.equal(cert.checkHost("example.com"), undefined);
  // Another CA did not sign it.
  assert.equal(cert.verify(new X509Certificate(createLocalCa("other").ca.cert).publicKey), false);
});

test("mutual TLS with the CA's certificates works; a client that trusts another CA refuses the server", async () => {
  const ca = createLocalCa();
  const server = ca.issue({ commonName: "server", hosts: ["localhost", "127.0.0.1"], usage: "server" });
  const client = ca.issue({ commonName: "lambdactl", usage: "client" });
  const srv = tls.createServer({ cert: server.cert, key: server.key, ca: ca.ca.cert, requestCert: true, rejectUnauthorized: true }, (s) => s.end(`hello ${s.authorized ? s.getPeerCertificate().subject.CN : "stranger"}`));
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const port = (srv.address() as { port: number }).port;
  try {
    const ok = tls.connect({ port, host: "127.0.0.1", servername: "localhost", ca: ca.ca.cert, cert: client.cert, key: client.key });
    let text = "";
    ok.on("data", (d) => (text += d));
    await once(ok, "end");
    assert.equal(text, "hello lambdactl");

    // A client that trusts another CA refuses this server.
    const other = createLocalCa("stranger");
    const bad = tls.connect({ port, host: "127.0.0.1", servername: "localhost", ca: other.ca.cert, cert: client.cert, key: client.key });
    const [err] = (await once(bad, "error")) as [NodeJS.ErrnoException];
    // The server sends its chain up to its CA, which the client does not trust.
    assert.ok(err.code === "SELF_SIGNED_CERT_IN_CHAIN" || err.code === "UNABLE_TO_VERIFY_LEAF_SIGNATURE", `${err.code}: ${err.message}`);
  } finally {
    srv.close();
  }
});
