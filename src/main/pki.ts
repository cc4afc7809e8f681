/**
 * A throwaway certificate authority for a local cluster and for tests: a CA, and server or client
 * certificates it signs for loopback names. Node's crypto makes the keys; node-forge writes the
 * X.509 structure (Node can read certificates but not write them), so no openssl binary is needed.
 * Not for production: operators bring their own certificates (cert-manager, docs/security.md).
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import forge from "node-forge";

/** A certificate and its private key, both PEM. */
export interface PemPair {
  readonly cert: string;
  readonly key: string;
}

export interface IssueOptions {
  /** The certificate's common name (a user or node name for a client certificate). */
  readonly commonName: string;
  /** DNS names and IP addresses it is valid for (servers); none for a pure client certificate. */
  readonly hosts?: readonly string[];
  /** What it may be used for; both by default. */
  readonly usage?: "server" | "client" | "both";
  /** The subject's Organizational Unit, e.g. a client's role (`lambda-admin`, docs/security.md); none by default. */
  readonly unit?: string;
}

export interface LocalCa {
  readonly ca: PemPair;
  /** A certificate signed by this CA. */
  issue(opts: IssueOptions): PemPair;
}

/** How long the local certificates stay valid: a local cluster is started again long before. */
const VALID_DAYS = 365;
/** Clocks of the processes of a local cluster may disagree a little (and faketime runs skewed ones). */
const BACKDATE_MS = 24 * 3600_000;

const IP = /^(\d{1,3}\.){3}\d{1,3}$|:/;

function keyPair(): { publicKey: forge.pki.PublicKey; privateKey: forge.pki.PrivateKey; privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const privatePem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  return {
    publicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }).toString()),
    privateKey: forge.pki.privateKeyFromPem(privatePem),
    privatePem,
  };
}

function newCertificate(publicKey: forge.pki.PublicKey, commonName: string): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // A positive serial in minimal DER: the high bit of the first byte clear (RFC 5280), and that
  // byte never 0 (a leading zero byte before one below 0x80 is "illegal padding" to OpenSSL,
  // which refused such a certificate now and then).
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x3f) | 0x40;
  cert.serialNumber = serial.toString("hex");
  const now = Date.now();
  cert.validity.notBefore = new Date(now - BACKDATE_MS);
  cert.validity.notAfter = new Date(now + VALID_DAYS * 24 * 3600_000);
  cert.setSubject([{ name: "commonName", value: commonName }]);
  return cert;
}

/** A new CA, named `name`, and what it signs. */
export function createLocalCa(name = "lambda local CA"): LocalCa {
  const caKeys = keyPair();
  const caCert = newCertificate(caKeys.publicKey, name);
  caCert.setIssuer(caCert.subject.attributes);
  caCert.setExtensions([
    { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  caCert.sign(caKeys.privateKey as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  const ca: PemPair = { cert: forge.pki.certificateToPem(caCert), key: caKeys.privatePem };

  return {
    ca,
    issue({ commonName, hosts = [], usage = "both", unit }) {
      const keys = keyPair();
      const cert = newCertificate(keys.publicKey, commonName);
      if (unit !== undefined) cert.setSubject([...cert.subject.attributes, { name: "organizationalUnitName", value: unit }]);
      cert.setIssuer(caCert.subject.attributes);
      const extensions: unknown[] = [
        { name: "basicConstraints", cA: false },
        { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
        { name: "extKeyUsage", serverAuth: usage !== "client", clientAuth: usage !== "server" },
        { name: "subjectKeyIdentifier" },
        { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
      ];
      if (hosts.length > 0) {
        extensions.push({ name: "subjectAltName", altNames: hosts.map((h) => (IP.test(h) ? { type: 7, ip: h } : { type: 2, value: h })) });
      }
      cert.setExtensions(extensions as never[]);
      cert.sign(caKeys.privateKey as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
      return { cert: forge.pki.certificateToPem(cert), key: keys.privatePem };
    },
  };
}

/** The names a local cluster's servers are reached by. */
export const LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "::1"] as const;
