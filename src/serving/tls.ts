/**
 * The serving node's TLS: a certificate and key (and for mutual TLS a client CA) from PEM files
 * that are read again every `reloadMs`, so a renewed certificate (cert-manager, a new local CA)
 * is served without a restart. grpc-js does the watching: its FileWatcherCertificateProvider
 * re-reads the files and its certificate-provider server credentials swap the listener's
 * secure context (both under `experimental` in @grpc/grpc-js 1.14). Connections already open
 * keep the context they were made with.
 *
 * The files are also read once here before anything listens, so a bad setting stops the start
 * with an error that names the variable and the path. A renewal should replace the files by
 * renaming (as Kubernetes' secret volumes and cert-manager do): between a new certificate and
 * its new key, grpc-js cannot set the context and refuses new connections until the next read
 * finds a matching pair; this module logs that state and its end.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { experimental, type ServerCredentials } from "@grpc/grpc-js";
import { ConfigError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";

/** How long the first read of the files may take before the start fails. */
const FIRST_READ_TIMEOUT_MS = 10_000;

export interface ServingTlsOptions {
  /** PEM certificate chain (LAMBDA_GRPC_TLS_CERT_FILE). */
  readonly certFile: string;
  /** PEM private key (LAMBDA_GRPC_TLS_KEY_FILE). */
  readonly keyFile: string;
  /** PEM CA bundle that must have signed every client's certificate (LAMBDA_GRPC_TLS_CLIENT_CA_FILE); "" for no client certificates. */
  readonly clientCaFile: string;
  /** Period of re-reading the files, ms (LAMBDA_GRPC_TLS_RELOAD_MS). */
  readonly reloadMs: number;
}

export interface ServingTls {
  /** Credentials for Server.bindAsync (one set may serve several listeners). */
  readonly credentials: ServerCredentials;
  /** Resolves once the files have been read for the listeners: call after binding, before taking calls. @throws Error after FIRST_READ_TIMEOUT_MS */
  ready(): Promise<void>;
  /** Stops this module's own watching (the listeners stop theirs when they close). */
  stop(): void;
}

function readPem(envVar: string, path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(envVar, path, `a readable ${what} file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

function parseCert(envVar: string, path: string, pem: Buffer): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new ConfigError(envVar, path, `a PEM certificate (${(err as Error).message})`);
  }
}

function parseKey(envVar: string, path: string, pem: Buffer): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new ConfigError(envVar, path, `a PEM private key (${(err as Error).message})`);
  }
}

/** The subject, expiry and fingerprint of a certificate, for log lines (nothing secret). */
function describe(cert: X509Certificate) {
  return { subject: cert.subject.replace(/\n/g, ", "), notAfter: cert.validTo, fingerprint256: cert.fingerprint256 };
}

/**
 * Reads and checks the files once: readable, PEM, and a key that belongs to the certificate.
 * @returns the certificate (the first of the chain).
 * @throws ConfigError naming the variable and the path.
 */
export function checkTlsFiles(opts: ServingTlsOptions): X509Certificate {
  const cert = parseCert("LAMBDA_GRPC_TLS_CERT_FILE", opts.certFile, readPem("LAMBDA_GRPC_TLS_CERT_FILE", opts.certFile, "PEM certificate"));
  const key = parseKey("LAMBDA_GRPC_TLS_KEY_FILE", opts.keyFile, readPem("LAMBDA_GRPC_TLS_KEY_FILE", opts.keyFile, "PEM private key"));
  if (!cert.checkPrivateKey(key)) throw new ConfigError("LAMBDA_GRPC_TLS_KEY_FILE", opts.keyFile, `the private key of the certificate in LAMBDA_GRPC_TLS_CERT_FILE (${opts.certFile})`);
  if (opts.clientCaFile) {
    const ca = parseCert("LAMBDA_GRPC_TLS_CLIENT_CA_FILE", opts.clientCaFile, readPem("LAMBDA_GRPC_TLS_CLIENT_CA_FILE", opts.clientCaFile, "PEM CA certificate"));
    if (!ca.ca) throw new ConfigError("LAMBDA_GRPC_TLS_CLIENT_CA_FILE", opts.clientCaFile, `a CA certificate (this one, ${ca.subject.replace(/\n/g, ", ")}, is not a CA)`);
  }
  return cert;
}

/**
 * Credentials that serve the files' certificate, reloaded every `opts.reloadMs`.
 * @throws ConfigError from checkTlsFiles
 */
export function servingTls(opts: ServingTlsOptions, log: Logger): ServingTls {
  let current = describe(checkTlsFiles(opts));
  log.info("gRPC TLS certificate loaded", { ...current, certFile: opts.certFile, clientCertificates: opts.clientCaFile ? "required" : "not asked" });

  const provider = new experimental.FileWatcherCertificateProvider({
    certificateFile: opts.certFile,
    privateKeyFile: opts.keyFile,
    ...(opts.clientCaFile ? { caCertificateFile: opts.clientCaFile } : {}),
    refreshIntervalMs: opts.reloadMs,
  });
  // grpc-js names this function's parameters the other way round; it passes the first on as the
  // identity provider and the second (nullable) as the CA provider. Required and verified client
  // certificates when a client CA is set.
  const credentials = experimental.createCertificateProviderServerCredentials(provider, opts.clientCaFile ? provider : null, opts.clientCaFile !== "");

  let firstRead: (() => void) | undefined;
  const read = new Promise<void>((resolve) => (firstRead = resolve));
  let usable = true;
  // Sees what grpc-js sees, every period: logs a renewal and a pair that cannot be served.
  const onIdentity: experimental.IdentityCertificateUpdateListener = (update) => {
    let problem: string | undefined;
    if (update === null) problem = "the certificate or key file cannot be read";
    else {
      try {
        const cert = new X509Certificate(update.certificate);
        if (!cert.checkPrivateKey(createPrivateKey(update.privateKey))) problem = "the key file does not belong to the certificate file (a renewal half written?)";
        else if (cert.fingerprint256 !== current.fingerprint256) {
          current = describe(cert);
          log.info("gRPC TLS certificate reloaded", { ...current, certFile: opts.certFile });
        }
      } catch (err) {
        problem = `the files are not a PEM certificate and key (${(err as Error).message})`;
      }
    }
    if (problem !== undefined && usable) log.warn(`gRPC TLS: ${problem}; new connections are refused until the next read finds a usable pair: replace the files by renaming them`, { certFile: opts.certFile, keyFile: opts.keyFile, reloadMs: opts.reloadMs });
    if (problem === undefined && !usable) log.info("gRPC TLS files usable again", { certFile: opts.certFile });
    usable = problem === undefined;
    firstRead?.();
  };
  provider.addIdentityCertificateListener(onIdentity);

  return {
    credentials,
    async ready() {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`gRPC TLS: the certificate files (${opts.certFile}, ${opts.keyFile}) were not read within ${FIRST_READ_TIMEOUT_MS} ms`)), FIRST_READ_TIMEOUT_MS);
      });
      try {
        await Promise.race([read, late]);
      } finally {
        clearTimeout(timer);
      }
      // The listeners hear the same read in the same turn, identity before CA: after this turn
      // every listener has its secure context.
      await new Promise((resolve) => setImmediate(resolve));
    },
    stop: () => provider.removeIdentityCertificateListener(onIdentity),
  };
}
