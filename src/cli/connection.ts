/**
 * Where lambdactl connects: the serving node's gRPC address for `query`, `top`,
 * `metrics`, `watermark` (and its subcommands), `status` and `run`; NATS (URL,
 * prefix, partitions, catalog) for `ingest`. (`catalog validate` connects to nothing.)
 *
 * Each setting comes from the first source that has it:
 * 1. a flag (`--grpc`, `--nats-url`, `--prefix`, `--partitions`, `--catalog`);
 * 2. an environment variable (`LAMBDA_GRPC_ADDR`, `LAMBDA_NATS_URL`,
 *    `LAMBDA_PREFIX`, `LAMBDA_PARTITIONS`, `LAMBDA_CATALOG`);
 * 3. `.lambda/local-cluster.json` in the current directory, which the local
 *    cluster (`npm start`) writes while it runs;
 * 4. for prefix, partitions and catalog only: the runtime's own defaults.
 * TLS, tokens and the admin API's address are resolved the same way in
 * ./grpc_target.ts.
 *
 * This is the only CLI module that reads the environment, and it takes it as a
 * parameter so tests can pass a plain object.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { defaultConfig, DEFAULT_PARTITIONS, DEFAULT_PREFIX, envVarFor } from "../core/config.js";
import { NATS_SECURITY_FIELDS, natsSecurityOf, type NatsSecurity, type NatsSecuritySettings } from "../nats/connect.js";
import { ConfigError } from "../core/errors.js";
import { processAlive } from "../core/pid.js";

/** Path of the local cluster file, relative to the directory `npm start` runs in. */
export const LOCAL_CLUSTER_FILE = ".lambda/local-cluster.json";

/** What the local cluster writes to {@link LOCAL_CLUSTER_FILE} while it runs. */
export interface LocalClusterFile {
  /** Serving node gRPC address, `host:port` (e.g. "127.0.0.1:50051"). */
  readonly grpc: string;
  /** NATS server URL (e.g. "nats://127.0.0.1:4222"). */
  readonly natsUrl: string;
  /** Subject/stream/bucket prefix (e.g. "lambda"). */
  readonly prefix: string;
  /** Number of stream partitions. */
  readonly partitions: number;
  /** Absolute path of the catalog file. */
  readonly catalog: string;
  /** The local cluster's main process; absent in files of older versions. */
  readonly pid?: number;
  /** Where the local nats-server keeps its store (absent when LAMBDA_NATS_URL named another server); with several nodes, one subdirectory each. */
  readonly natsStoreDir?: string;
  /** nats-server processes the local cluster started, when more than one (LAMBDA_LOCAL_NATS_NODES). */
  readonly natsNodes?: number;
  /** The chDB data directory (absent with LAMBDA_CLICKHOUSE_URL). */
  readonly chdbPath?: string;
  /** The admin API's address when it listens apart from `grpc`. */
  readonly grpcAdmin?: string;
  /** The CA that signed the serving node's certificate; absent: plain text. */
  readonly grpcTlsCa?: string;
  /** File of the query token (absent: none). */
  readonly grpcTokenFile?: string;
  /** File of the admin token (absent: none). */
  readonly grpcAdminTokenFile?: string;
  /** NATS: the seed file of lambdactl's user (absent: the server needs no credentials). */
  readonly natsNkeySeedFile?: string;
  /** NATS: the CA that signed the nats-server's certificate (absent: plain text). */
  readonly natsTlsCa?: string;
  /** NATS: the inbox prefix lambdactl's user may subscribe below. */
  readonly natsInboxPrefix?: string;
}

/** The environment variable of each connection setting. */
export const ConnectionEnvVars = {
  grpc: "LAMBDA_GRPC_ADDR",
  natsUrl: "LAMBDA_NATS_URL",
  prefix: "LAMBDA_PREFIX",
  partitions: "LAMBDA_PARTITIONS",
  catalog: "LAMBDA_CATALOG",
} as const;
type Setting = keyof typeof ConnectionEnvVars;

/** The flag of each connection setting. */
export const ConnectionFlags = {
  grpc: "--grpc",
  natsUrl: "--nats-url",
  prefix: "--prefix",
  partitions: "--partitions",
  catalog: "--catalog",
} as const;

/** Connection settings given on the command line (raw flag values). */
export type ConnectionFlagValues = { readonly [K in Setting]?: string };

/** A resolved setting and where it came from (a flag, a variable, the file or "default"), for error messages. */
export interface Sourced<T> {
  readonly value: T;
  readonly from: string;
}

/** Everything `ingest` needs to publish. */
export interface NatsTarget {
  readonly natsUrl: Sourced<string>;
  readonly prefix: Sourced<string>;
  readonly partitions: Sourced<number>;
  /** Absolute path of the catalog file. */
  readonly catalog: Sourced<string>;
  /** Credentials and TLS for NATS. */
  readonly security: NatsSecurity;
}

/** The local cluster file is there but unreadable or malformed. */
export class LocalClusterFileError extends Error {
  override readonly name = "LocalClusterFileError";
  constructor(
    readonly file: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${reason}; delete it or restart the local cluster (npm start) to rewrite it`, options);
  }
}

/**
 * The local cluster file names a main process that is no longer running: it died without
 * a clean stop (SIGKILL, OOM), so the addresses in the file are dead.
 */
export class StaleLocalClusterFileError extends Error {
  override readonly name = "StaleLocalClusterFileError";
  constructor(
    readonly file: string,
    readonly pid: number,
    readonly grpc: string,
    readonly natsUrl: string,
  ) {
    super(
      `${file} was written by a local cluster (pid ${pid}) that is no longer running, so its addresses ` +
        `(gRPC ${grpc}, NATS ${natsUrl}) are dead; start it again (npm start replaces the file and says how to ` +
        `recover its data), or pass the address of a running cluster with a flag or variable`,
    );
  }
}

/** A setting with no default is set nowhere; names the flag, the variable and the file. */
export class NotConfiguredError extends Error {
  override readonly name = "NotConfiguredError";
  constructor(
    readonly setting: string,
    readonly flag: string,
    readonly envVar: string,
  ) {
    super(
      `no ${setting} configured: pass ${flag}, set ${envVar}, or run this in the directory where ` +
        `\`npm start\` runs the local cluster (it writes ${LOCAL_CLUSTER_FILE})`,
    );
  }
}

const NAME = /^[A-Za-z0-9_-]+$/;
const MAX_PARTITIONS = 1024;

/** `v` if it is host:port. @throws ConfigError naming `key` */
export function checkAddress(key: string, v: unknown): string {
  if (typeof v !== "string" || !/^(\[[0-9A-Fa-f:.]+\]|[^\s:/]+):\d{1,5}$/.test(v) || Number(v.slice(v.lastIndexOf(":") + 1)) > 65535) {
    throw new ConfigError(key, v, "host:port (e.g. 127.0.0.1:50051)");
  }
  return v;
}

function checkUrl(key: string, v: unknown): string {
  if (typeof v !== "string" || v.trim() === "") throw new ConfigError(key, v, "a NATS URL (e.g. nats://127.0.0.1:4222)");
  return v;
}

function checkPrefix(key: string, v: unknown): string {
  if (typeof v !== "string" || !NAME.test(v)) throw new ConfigError(key, v, "letters, digits, '_' or '-'");
  return v;
}

function checkPartitions(key: string, v: unknown): number {
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1 || n > MAX_PARTITIONS) {
    throw new ConfigError(key, v, `an integer in 1..${MAX_PARTITIONS}`);
  }
  return n;
}

function checkPath(key: string, v: unknown): string {
  if (typeof v !== "string" || v.trim() === "") throw new ConfigError(key, v, "a file path");
  return v;
}

/** Validates a parsed local cluster document. @throws ConfigError naming the field. */
function checkLocalClusterFile(file: string, doc: unknown): LocalClusterFile {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new ConfigError(file, doc, "a JSON object");
  const o = doc as Record<string, unknown>;
  const known = ["grpc", "natsUrl", "prefix", "partitions", "catalog", "pid", "natsStoreDir", "natsNodes", "chdbPath", "grpcAdmin", "grpcTlsCa", "grpcTokenFile", "grpcAdminTokenFile", "natsNkeySeedFile", "natsTlsCa", "natsInboxPrefix"];
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new ConfigError(`${file}: ${k}`, o[k], `a known key (${known.join(", ")})`);
  if (o.pid !== undefined && (typeof o.pid !== "number" || !Number.isSafeInteger(o.pid) || o.pid < 1)) throw new ConfigError(`${file}: pid`, o.pid, "a process id");
  if (o.natsNodes !== undefined && (typeof o.natsNodes !== "number" || !Number.isSafeInteger(o.natsNodes) || o.natsNodes < 1)) throw new ConfigError(`${file}: natsNodes`, o.natsNodes, "a number of nats-server processes");
  return {
    grpc: checkAddress(`${file}: grpc`, o.grpc),
    natsUrl: checkUrl(`${file}: natsUrl`, o.natsUrl),
    prefix: checkPrefix(`${file}: prefix`, o.prefix),
    partitions: checkPartitions(`${file}: partitions`, o.partitions),
    catalog: checkPath(`${file}: catalog`, o.catalog),
    ...(o.pid === undefined ? {} : { pid: o.pid as number }),
    ...(o.natsStoreDir === undefined ? {} : { natsStoreDir: checkPath(`${file}: natsStoreDir`, o.natsStoreDir) }),
    ...(o.natsNodes === undefined ? {} : { natsNodes: o.natsNodes as number }),
    ...(o.chdbPath === undefined ? {} : { chdbPath: checkPath(`${file}: chdbPath`, o.chdbPath) }),
    ...(o.grpcAdmin === undefined ? {} : { grpcAdmin: checkAddress(`${file}: grpcAdmin`, o.grpcAdmin) }),
    ...(o.grpcTlsCa === undefined ? {} : { grpcTlsCa: checkPath(`${file}: grpcTlsCa`, o.grpcTlsCa) }),
    ...(o.grpcTokenFile === undefined ? {} : { grpcTokenFile: checkPath(`${file}: grpcTokenFile`, o.grpcTokenFile) }),
    ...(o.grpcAdminTokenFile === undefined ? {} : { grpcAdminTokenFile: checkPath(`${file}: grpcAdminTokenFile`, o.grpcAdminTokenFile) }),
    ...(o.natsNkeySeedFile === undefined ? {} : { natsNkeySeedFile: checkPath(`${file}: natsNkeySeedFile`, o.natsNkeySeedFile) }),
    ...(o.natsTlsCa === undefined ? {} : { natsTlsCa: checkPath(`${file}: natsTlsCa`, o.natsTlsCa) }),
    ...(o.natsInboxPrefix === undefined ? {} : { natsInboxPrefix: checkPath(`${file}: natsInboxPrefix`, o.natsInboxPrefix) }),
  };
}

/** Whether the file names a main process that is no longer running (a file without a pid cannot tell: not stale). */
export function isStale(f: LocalClusterFile): boolean {
  return f.pid !== undefined && !processAlive(f.pid);
}

/** Path of the local cluster file under `dir`. */
export function localClusterFilePath(dir: string): string {
  return join(dir, LOCAL_CLUSTER_FILE);
}

/**
 * Reads `<dir>/.lambda/local-cluster.json`.
 * @returns the file's settings, or null when there is no such file.
 * @throws LocalClusterFileError when it cannot be read or is malformed.
 */
export function readLocalClusterFile(dir: string): LocalClusterFile | null {
  const file = localClusterFilePath(dir);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new LocalClusterFileError(file, `cannot read: ${(err as Error).message}`, { cause: err });
  }
  try {
    return checkLocalClusterFile(file, JSON.parse(text));
  } catch (err) {
    const reason = err instanceof ConfigError ? err.message : `not valid JSON: ${(err as Error).message}`;
    throw new LocalClusterFileError(file, reason, { cause: err });
  }
}

/**
 * Writes `<dir>/.lambda/local-cluster.json` (creating `.lambda/`), atomically:
 * a reader never sees half a file.
 * @throws ConfigError when a field is malformed (the file is then not written).
 */
export function writeLocalClusterFile(dir: string, settings: LocalClusterFile): void {
  const file = localClusterFilePath(dir);
  const checked = checkLocalClusterFile(file, settings);
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(checked, null, 2) + "\n");
  renameSync(tmp, file);
}

/** Removes `<dir>/.lambda/local-cluster.json` if it is there (the local cluster calls it on stop). */
export function removeLocalClusterFile(dir: string): void {
  rmSync(localClusterFilePath(dir), { force: true });
}

/** The environment lambdactl reads (a plain object in tests, `process.env` in the entry). */
export type Env = Readonly<Record<string, string | undefined>>;

/** Where a command looks for its settings. */
export interface ConnectionSources {
  readonly flags: ConnectionFlagValues;
  readonly env: Env;
  /** Directory holding `.lambda/local-cluster.json` (the current directory). */
  readonly cwd: string;
}

/**
 * The local cluster file in `cwd`, read when first asked for (then kept), or null when there is none.
 * @throws LocalClusterFileError, StaleLocalClusterFileError
 */
export function lazyLocalClusterFile(cwd: string): () => LocalClusterFile | null {
  let file: LocalClusterFile | null | undefined;
  return () => {
    if (file !== undefined) return file;
    file = readLocalClusterFile(cwd);
    if (file && isStale(file)) throw new StaleLocalClusterFileError(localClusterFilePath(cwd), file.pid!, file.grpc, file.natsUrl);
    return file;
  };
}

/** Settings read lazily: the local cluster file is only opened when a flag and variable are both absent. */
function sourcesFor(src: ConnectionSources) {
  const fileSettings = lazyLocalClusterFile(src.cwd);
  return <T>(setting: Setting, check: (key: string, v: unknown) => T, fallback?: T): Sourced<T> => {
    const flag = src.flags[setting];
    if (flag !== undefined) return { value: check(ConnectionFlags[setting], flag), from: ConnectionFlags[setting] };
    const envVar = ConnectionEnvVars[setting];
    const fromEnv = src.env[envVar];
    if (fromEnv !== undefined && fromEnv !== "") return { value: check(envVar, fromEnv), from: envVar };
    const f = fileSettings();
    if (f) return { value: f[setting] as T, from: LOCAL_CLUSTER_FILE };
    if (fallback !== undefined) return { value: fallback, from: "default" };
    throw new NotConfiguredError(setting === "grpc" ? "gRPC address" : "NATS URL", ConnectionFlags[setting], envVar);
  };
}

/**
 * Resolves the serving node's gRPC address.
 * @throws NotConfiguredError, ConfigError (bad flag or variable), LocalClusterFileError, StaleLocalClusterFileError.
 */
export function resolveGrpcAddress(src: ConnectionSources): Sourced<string> {
  return sourcesFor(src)("grpc", checkAddress);
}

/**
 * Resolves what `ingest` needs. Prefix, partitions and catalog fall back to the
 * runtime's defaults (`lambda`, 8, `catalog/catalog.json`); the NATS URL has no default.
 * Relative catalog paths are resolved against `src.cwd`.
 * @throws NotConfiguredError, ConfigError (bad flag or variable), LocalClusterFileError, StaleLocalClusterFileError.
 */
export function resolveNatsTarget(src: ConnectionSources): NatsTarget {
  const get = sourcesFor(src);
  const natsUrl = get("natsUrl", checkUrl);
  const prefix = get("prefix", checkPrefix, DEFAULT_PREFIX);
  const partitions = get("partitions", checkPartitions, DEFAULT_PARTITIONS);
  const catalog = get("catalog", checkPath, defaultConfig().catalogPath);
  return { natsUrl, prefix, partitions, catalog: { value: resolve(src.cwd, catalog.value), from: catalog.from }, security: natsSecurityFor(src, natsUrl) };
}

/**
 * How lambdactl proves who it is to NATS: the local cluster's credentials when the URL came from
 * its file (never sent to a server named elsewhere), else the LAMBDA_NATS_* variables.
 * @throws NatsSecurityError for a secret file that cannot be read
 */
function natsSecurityFor(src: ConnectionSources, natsUrl: Sourced<string>): NatsSecurity {
  if (natsUrl.from === LOCAL_CLUSTER_FILE) {
    const f = lazyLocalClusterFile(src.cwd)();
    return { nkeySeedFile: f?.natsNkeySeedFile, tlsCaFile: f?.natsTlsCa, inboxPrefix: f?.natsInboxPrefix };
  }
  const settings = Object.fromEntries(NATS_SECURITY_FIELDS.map((field) => [field, src.env[envVarFor(field)!] ?? ""])) as unknown as NatsSecuritySettings;
  return natsSecurityOf(settings);
}
