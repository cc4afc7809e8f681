/**
 * How a process reaches ClickHouse, resolved once: for a server, the URL, the user, the password
 * and TLS, with the secrets read from their files; for embedded chDB, which of those settings it
 * ignores. Every refusal is a ConfigError naming the variable and, for a file, its path; none
 * carries a secret (a password is never put in a message or a log line).
 *
 * - The password comes from LAMBDA_CLICKHOUSE_PASSWORD or from the file that
 *   LAMBDA_CLICKHOUSE_PASSWORD_FILE names (a mounted Secret), its trailing line breaks trimmed.
 * - TLS needs an https:// URL. LAMBDA_CLICKHOUSE_CA_FILE verifies the server (without it, the
 *   system's CAs do); LAMBDA_CLICKHOUSE_CERT_FILE + LAMBDA_CLICKHOUSE_KEY_FILE add a client
 *   certificate (mutual TLS), which @clickhouse/client takes only together with a CA.
 * - chDB (no URL) runs in the process: no network hop, no user, nothing to encrypt.
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import type { ClickHouseClientConfigOptions, ClickHouseSettings } from "@clickhouse/client";
import { envVarFor, type ResolvedConfig } from "../core/config.js";
import { layoutOf, type ChLayout } from "./layout.js";
import { ConfigError, ensureError } from "../core/errors.js";

export interface ChOptions {
  /** ClickHouse HTTP(S) URL; empty for embedded chDB. */
  url: string;
  username: string;
  /** The password itself; empty when `passwordFile` names it. */
  password: string;
  /** chDB data directory (used when `url` is empty). */
  chdbPath: string;
  /** A file holding the password, trailing line breaks trimmed. @default "" (none) */
  passwordFile?: string;
  /** PEM CA certificate(s) that verify an https:// server. @default "" (the system's CAs) */
  caFile?: string;
  /** PEM client certificate for mutual TLS, with `keyFile` and `caFile`. @default "" (none) */
  certFile?: string;
  /** PEM private key (unencrypted) of `certFile`. @default "" (none) */
  keyFile?: string;
  /** Where the tables live (ch/layout.ts); a cluster needs `url`. @default one server */
  layout?: ChLayout;
  /** Settings sent with every request to a server (ch/layout.ts writerSettings); chDB takes none. @default {} */
  settings?: ClickHouseSettings;
}

/** What @clickhouse/client's createClient takes to reach a server. */
export type ServerConnection = Required<Pick<ClickHouseClientConfigOptions, "url" | "username" | "password">> & Pick<ClickHouseClientConfigOptions, "tls">;

/** Reads a file: the default is node:fs; tests pass their own. */
export type ReadFile = (path: string) => Buffer;

/** The ChOptions fields set by a variable, and that variable (core/config is the one place that names them). */
const FIELD_VARS = {
  url: "clickhouseUrl",
  username: "clickhouseUser",
  password: "clickhousePassword",
  passwordFile: "clickhousePasswordFile",
  caFile: "clickhouseCaFile",
  certFile: "clickhouseCertFile",
  keyFile: "clickhouseKeyFile",
} as const satisfies Partial<Record<keyof ChOptions, keyof ResolvedConfig>>;
const varOf = (field: keyof typeof FIELD_VARS) => envVarFor(FIELD_VARS[field]) ?? field;

/** The options of `cfg` for {@link openClickHouse} (src/ch/client.ts). */
export function chOptionsOf(cfg: ResolvedConfig): ChOptions {
  return {
    url: cfg.clickhouseUrl,
    username: cfg.clickhouseUser,
    password: cfg.clickhousePassword,
    chdbPath: cfg.chdbPath,
    passwordFile: cfg.clickhousePasswordFile,
    caFile: cfg.clickhouseCaFile,
    certFile: cfg.clickhouseCertFile,
    keyFile: cfg.clickhouseKeyFile,
    layout: layoutOf(cfg),
  };
}

/** `url` with its password, if any, replaced by `***`: for logs and printouts. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password === "") return url;
    u.password = "***";
    return u.toString();
  } catch {
    return "(a URL that does not parse)"; // a malformed URL could hold anything, a password too
  }
}

/** The variables of `opts` that chDB (no URL) does not use, for the one line that says so. */
export function ignoredByChdb(opts: ChOptions): string[] {
  const fields = ["password", "passwordFile", "caFile", "certFile", "keyFile"] as const;
  return fields.filter((f) => (opts[f] ?? "") !== "").map(varOf);
}

function readSetting(read: ReadFile, field: keyof typeof FIELD_VARS, path: string): Buffer {
  try {
    return read(path);
  } catch (err) {
    throw new ConfigError(varOf(field), path, `a readable file (${ensureError(err).message})`, { cause: err });
  }
}

/** `check(buf)` must not throw, else the file of `field` is refused as not being `what`. */
function parsed(field: keyof typeof FIELD_VARS, path: string, buf: Buffer, what: string, check: (b: Buffer) => unknown): Buffer {
  try {
    check(buf);
  } catch (err) {
    throw new ConfigError(varOf(field), path, `a file holding ${what} (${ensureError(err).message})`, { cause: err });
  }
  return buf;
}

function readPassword(opts: ChOptions, read: ReadFile): string {
  const file = opts.passwordFile ?? "";
  if (file === "") return opts.password;
  if (opts.password !== "") throw new ConfigError(varOf("passwordFile"), file, `one source of the ClickHouse password: unset ${varOf("password")} or this`);
  const password = readSetting(read, "passwordFile", file).toString("utf8").replace(/[\r\n]+$/, "");
  if (password === "") throw new ConfigError(varOf("passwordFile"), file, "a file holding the password; it is empty");
  return password;
}

function readTls(opts: ChOptions, read: ReadFile): ServerConnection["tls"] {
  const [ca, cert, key] = [opts.caFile ?? "", opts.certFile ?? "", opts.keyFile ?? ""];
  const first = (["caFile", "certFile", "keyFile"] as const).find((f) => (opts[f] ?? "") !== "");
  if (first === undefined) return undefined;
  const protocol = /^[a-z][a-z0-9+.-]*:/i.exec(opts.url)?.[0] ?? "(none)";
  if (protocol.toLowerCase() !== "https:") {
    throw new ConfigError(varOf(first), opts[first], `unset, or an https:// ${varOf("url")} (TLS needs https; the URL's scheme is ${protocol})`);
  }
  if ((cert === "") !== (key === "")) {
    const [set, unset] = cert === "" ? (["keyFile", "certFile"] as const) : (["certFile", "keyFile"] as const);
    throw new ConfigError(varOf(set), opts[set], `${varOf(unset)} set too: mutual TLS needs the client certificate and its key`);
  }
  if (ca === "") throw new ConfigError(varOf("caFile"), ca, `the CA that verifies the server: @clickhouse/client takes a client certificate (${varOf("certFile")}) only with one`);
  const caCert = parsed("caFile", ca, readSetting(read, "caFile", ca), "a PEM certificate", (b) => new X509Certificate(b));
  if (cert === "") return { ca_cert: caCert };
  return {
    ca_cert: caCert,
    cert: parsed("certFile", cert, readSetting(read, "certFile", cert), "a PEM certificate", (b) => new X509Certificate(b)),
    key: parsed("keyFile", key, readSetting(read, "keyFile", key), "an unencrypted PEM private key", (b) => createPrivateKey(b)),
  };
}

/**
 * What createClient needs to reach the server at `opts.url`, with the password and the TLS
 * files read (through `read`) and checked.
 * @throws ConfigError naming the variable (and the file) when a file is unreadable or holds no
 *   certificate or key, a TLS file is set for an http:// URL, a certificate comes without its key
 *   (or the other way round) or without a CA, the password has two sources, or the URL holds a
 *   password as well
 */
export function serverConnection(opts: ChOptions, read: ReadFile = readFileSync): ServerConnection {
  const password = readPassword(opts, read);
  let urlPassword = "";
  try {
    urlPassword = new URL(opts.url).password;
  } catch {
    // @clickhouse/client refuses a malformed URL itself, naming the format it expects.
  }
  if (urlPassword !== "" && password !== "") {
    throw new ConfigError(varOf("url"), redactUrl(opts.url), `no password in the URL while ${opts.passwordFile ? varOf("passwordFile") : varOf("password")} sets one (one source of the password)`);
  }
  const tls = readTls(opts, read);
  return { url: opts.url, username: opts.username, password, ...(tls ? { tls } : {}) };
}
