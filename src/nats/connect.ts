/** Connecting to NATS with the options every role uses, and the credentials and TLS it was given. */
import { readFileSync } from "node:fs";
import { connect, createInbox, credsAuthenticator, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";

/** A NATS server list that does not parse: names the entry (with any password in it masked). */
export class NatsUrlError extends Error {
  override readonly name = "NatsUrlError";
  constructor(
    readonly url: string,
    readonly entry: string,
    reason: string,
  ) {
    super(`NATS URL ${JSON.stringify(redactNatsUrl(entry))}${url === entry ? "" : ` (in ${JSON.stringify(redactNatsUrl(url))})`} ${reason}; expected nats://host:port (or tls://, or host:port), several separated by commas`);
  }
}

/** NATS connection settings that do not fit together or cannot be read: names the setting. */
export class NatsSecurityError extends Error {
  override readonly name = "NatsSecurityError";
  constructor(
    readonly setting: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${setting}: ${reason}`, options);
  }
}

const SCHEMES = new Set(["nats:", "tls:", "ws:", "wss:"]);

/** A URL list with every password or token in it replaced by "***", for logs and errors. */
export function redactNatsUrl(url: string): string {
  return url.replace(/(\b[a-z]+:\/\/)([^@/\s,]*)@/gi, (_m, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(":");
    // user:password keeps the user; a bare userinfo is a token.
    return `${scheme}${colon < 0 ? "***" : `${userinfo.slice(0, colon)}:***`}@`;
  });
}

/** Credentials written into a URL (nats://user:password@host, nats://token@host). */
interface UrlCredentials {
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
}

/**
 * The servers of a NATS URL list: one URL or several separated by commas (any nodes of a
 * cluster: the client learns the others from them and reconnects to another when its server
 * goes). A bare host:port means nats://host:port.
 * @throws NatsUrlError naming the entry that does not parse
 */
export function natsServers(url: string): string[] {
  return parseNatsUrl(url).servers;
}

/**
 * The servers of a URL list, and the credentials written into it. nats.js does not read
 * credentials from a URL (a server that requires them answered "Authorization Violation"), so
 * they are taken out here and passed as options; every entry must carry the same ones.
 * @throws NatsUrlError
 */
export function parseNatsUrl(url: string): { servers: string[]; credentials: UrlCredentials } {
  const entries = url.split(",").map((e) => e.trim());
  if (entries.every((e) => e === "")) throw new NatsUrlError(url, url, "is empty");
  let credentials: UrlCredentials | undefined;
  let credentialsKey: string | undefined;
  const servers = entries.map((entry) => {
    if (entry === "") throw new NatsUrlError(url, entry, "is an empty entry");
    const full = /^[a-z]+:\/\//i.test(entry) ? entry : `nats://${entry}`;
    let u: URL;
    try {
      u = new URL(full);
    } catch {
      throw new NatsUrlError(url, entry, "is not a URL");
    }
    if (!SCHEMES.has(u.protocol)) throw new NatsUrlError(url, entry, `has scheme ${u.protocol.slice(0, -1)}`);
    if (u.hostname === "") throw new NatsUrlError(url, entry, "has no host");
    const user = decodeURIComponent(u.username);
    const pass = decodeURIComponent(u.password);
    const these: UrlCredentials = user === "" ? {} : pass === "" && !full.includes(`${u.username}:@`) ? { token: user } : { user, pass };
    const key = JSON.stringify(these);
    if (credentialsKey !== undefined && key !== credentialsKey) throw new NatsUrlError(url, entry, "carries other credentials than the entries before it");
    credentials = these;
    credentialsKey = key;
    u.username = "";
    u.password = "";
    // Back to the form nats.js parses: no trailing slash for a bare host:port.
    return u.toString().replace(/\/$/, "");
  });
  return { servers, credentials: credentials ?? {} };
}

/**
 * How a process proves who it is to NATS and checks it talks to the right server. At most one
 * of user/password, token, nkey seed and creds file; secrets are read from files (or the
 * environment), never logged. The nkey seed and creds files are read again at every reconnect,
 * so rotating them needs no restart.
 */
export interface NatsSecurity {
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  /** A file holding a user nkey seed (SU...). */
  readonly nkeySeedFile?: string;
  /** A `.creds` file (user JWT + nkey seed, the NATS operator model). */
  readonly credsFile?: string;
  /** CA certificate(s) to verify the server with; setting it requires TLS. */
  readonly tlsCaFile?: string;
  /** A client certificate and key, for servers that verify clients (mutual TLS). */
  readonly tlsCertFile?: string;
  readonly tlsKeyFile?: string;
  /** The name the server's certificate must carry, when it is not the host dialled (e.g. an IP). */
  readonly tlsServerName?: string;
  /**
   * Where replies to this client arrive (`<prefix>.<random>`); a server that lets each user
   * subscribe only below its own prefix (nats/permissions.ts) keeps users from reading each
   * other's replies. @default "_INBOX"
   */
  readonly inboxPrefix?: string;
}

/** The settings a NatsSecurity comes from, as their variables name them, for errors. */
const SETTING = {
  user: "LAMBDA_NATS_USER",
  password: "LAMBDA_NATS_PASSWORD",
  token: "LAMBDA_NATS_TOKEN",
  nkeySeedFile: "LAMBDA_NATS_NKEY_SEED_FILE",
  credsFile: "LAMBDA_NATS_CREDS_FILE",
  tlsCaFile: "LAMBDA_NATS_TLS_CA_FILE",
  tlsCertFile: "LAMBDA_NATS_TLS_CERT_FILE",
  tlsKeyFile: "LAMBDA_NATS_TLS_KEY_FILE",
} as const;

/** The config fields a NatsSecurity is made of (core/config.ts). */
export interface NatsSecuritySettings {
  readonly natsUser: string;
  readonly natsPassword: string;
  readonly natsPasswordFile: string;
  readonly natsToken: string;
  readonly natsTokenFile: string;
  readonly natsNkeySeedFile: string;
  readonly natsCredsFile: string;
  readonly natsTlsCaFile: string;
  readonly natsTlsCertFile: string;
  readonly natsTlsKeyFile: string;
  readonly natsTlsServerName: string;
  readonly natsInboxPrefix: string;
}

/** The config fields of NatsSecuritySettings, for callers that read them from elsewhere (lambdactl's environment). */
export const NATS_SECURITY_FIELDS = ["natsUser", "natsPassword", "natsPasswordFile", "natsToken", "natsTokenFile", "natsNkeySeedFile", "natsCredsFile", "natsTlsCaFile", "natsTlsCertFile", "natsTlsKeyFile", "natsTlsServerName", "natsInboxPrefix"] as const satisfies readonly (keyof NatsSecuritySettings)[];

/** A password or token given inline or in a file (not both); a file's trailing newline is not part of it. */
function inlineOrFile(inline: string, file: string, setting: string): string | undefined {
  if (inline && file) throw new NatsSecurityError(`${setting} and ${setting}_FILE`, "are both set; set one");
  if (file) return new TextDecoder().decode(readSecret(`${setting}_FILE`, file)).replace(/\r?\n$/, "");
  return inline || undefined;
}

/** The NATS security a process's settings describe. @throws NatsSecurityError for a file that cannot be read */
export function natsSecurityOf(cfg: NatsSecuritySettings): NatsSecurity {
  const opt = (v: string) => v || undefined;
  return {
    user: opt(cfg.natsUser),
    password: inlineOrFile(cfg.natsPassword, cfg.natsPasswordFile, SETTING.password),
    token: inlineOrFile(cfg.natsToken, cfg.natsTokenFile, SETTING.token),
    nkeySeedFile: opt(cfg.natsNkeySeedFile),
    credsFile: opt(cfg.natsCredsFile),
    tlsCaFile: opt(cfg.natsTlsCaFile),
    tlsCertFile: opt(cfg.natsTlsCertFile),
    tlsKeyFile: opt(cfg.natsTlsKeyFile),
    tlsServerName: opt(cfg.natsTlsServerName),
    inboxPrefix: opt(cfg.natsInboxPrefix),
  };
}

function readSecret(setting: string, file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new NatsSecurityError(setting, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

/**
 * The nats.js options for `security` and the credentials in the URL list.
 * @throws NatsSecurityError when two ways to authenticate are given, a client certificate
 *   comes without its key, or a file cannot be read
 */
export function natsAuthOptions(security: NatsSecurity, fromUrl: UrlCredentials = {}): Partial<ConnectionOptions> {
  const s = { ...security };
  if (fromUrl.user !== undefined || fromUrl.token !== undefined) {
    if (s.user !== undefined || s.token !== undefined || s.nkeySeedFile || s.credsFile) {
      throw new NatsSecurityError("LAMBDA_NATS_URL", "carries credentials, and other NATS credentials are set too; give one");
    }
    Object.assign(s, fromUrl.token !== undefined ? { token: fromUrl.token } : { user: fromUrl.user, password: fromUrl.pass });
  }
  const given = (["user", "token", "nkeySeedFile", "credsFile"] as const).filter((k) => s[k] !== undefined && s[k] !== "");
  if (given.length > 1) throw new NatsSecurityError(given.map((k) => SETTING[k]).join(" and "), "are different ways to authenticate; set one");
  if (s.password !== undefined && s.password !== "" && !s.user) throw new NatsSecurityError(SETTING.password, `is set without ${SETTING.user}`);
  if (Boolean(s.tlsCertFile) !== Boolean(s.tlsKeyFile)) {
    throw new NatsSecurityError(s.tlsCertFile ? SETTING.tlsCertFile : SETTING.tlsKeyFile, `needs ${s.tlsCertFile ? SETTING.tlsKeyFile : SETTING.tlsCertFile} too (a client certificate and its key)`);
  }
  const opts: Partial<ConnectionOptions> = s.inboxPrefix ? { inboxPrefix: s.inboxPrefix } : {};
  if (s.user) Object.assign(opts, { user: s.user, pass: s.password ?? "" });
  if (s.token) opts.token = s.token;
  if (s.nkeySeedFile) {
    const file = s.nkeySeedFile;
    readSecret(SETTING.nkeySeedFile, file); // fail at start, not at the first connect
    opts.authenticator = nkeyAuthenticator(() => new TextEncoder().encode(new TextDecoder().decode(readSecret(SETTING.nkeySeedFile, file)).trim()));
  }
  if (s.credsFile) {
    const file = s.credsFile;
    readSecret(SETTING.credsFile, file);
    opts.authenticator = credsAuthenticator(() => readSecret(SETTING.credsFile, file));
  }
  if (s.tlsCaFile || s.tlsCertFile || s.tlsServerName) {
    for (const k of ["tlsCaFile", "tlsCertFile", "tlsKeyFile"] as const) if (s[k]) readSecret(SETTING[k], s[k]);
    // nats.js hands unknown TLS options on to Node's tls.connect: servername among them.
    opts.tls = {
      ...(s.tlsCaFile ? { caFile: s.tlsCaFile } : {}),
      ...(s.tlsCertFile ? { certFile: s.tlsCertFile, keyFile: s.tlsKeyFile } : {}),
      ...(s.tlsServerName ? { servername: s.tlsServerName } : {}),
    } as ConnectionOptions["tls"];
  }
  return opts;
}

/**
 * A new inbox subject under the connection's inbox prefix, for replies this process collects
 * itself (nats.js's own requests and consumers use the prefix already).
 */
export function newInbox(nc: NatsConnection): string {
  // The interface does not expose the options nats.js keeps on the connection.
  return createInbox((nc as unknown as { options?: ConnectionOptions }).options?.inboxPrefix);
}

/**
 * How often a client pings its server; two pings without an answer and it moves to another
 * node. nats.js pings every 2 minutes by default: a paused or cut-off server then held a
 * serving node's answers for minutes (the fault matrix's F12).
 */
export const NATS_PING_INTERVAL_MS = 5_000;

/** @throws NatsUrlError for a malformed URL list, NatsSecurityError for bad credentials settings; the connection errors of nats.js */
export async function connectNats(url: string, name: string, security: NatsSecurity = {}): Promise<NatsConnection> {
  const { servers, credentials } = parseNatsUrl(url);
  return connect({
    servers,
    name,
    ...natsAuthOptions(security, credentials),
    // Keep trying through a server restart instead of failing the role.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: NATS_PING_INTERVAL_MS,
    maxPingOut: 2,
  });
}
