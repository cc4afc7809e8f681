/**
 * The one configuration schema of every role. Values come from environment
 * variables (`LAMBDA_*`, passed in as a plain object so tests can supply their
 * own) and from explicit overrides; unknown `LAMBDA_*` keys are refused, and an
 * override that replaces an environment value is logged.
 */
import { ConfigError } from "./errors.js";
import type { Logger, LogLevel } from "./logger.js";
import { LogLevels } from "./logger.js";

/** Default number of stream partitions. */
export const DEFAULT_PARTITIONS = 8;
/** Default subject/stream/bucket prefix. */
export const DEFAULT_PREFIX = "lambda";
/** Default ClickHouse database. */
export const DEFAULT_DATABASE = "lambda";
/** Default interval between scheduled batch runs. */
export const BATCH_INTERVAL_MS = 60_000;
/** How often speed nodes write their heartbeat. */
export const HEARTBEAT_INTERVAL_MS = 1_000;
/** A speed node whose heartbeat has not changed for this long loses its partitions. */
export const NODE_TIMEOUT_MS = 5_000;
/** A coordinator leader not renewed for this long is replaced by a standby (nats/leadership.ts). */
export const LEADER_LEASE_MS = 5_000;
/** How often the leader renews its lease and standbys check it. */
export const LEADER_RENEW_MS = 1_000;
/** Distinct event ids a speed actor remembers per partition to skip late copies. */
export const DEDUPE_HORIZON_IDS = 100_000;
/** How often a speed actor writes a snapshot while events arrive. */
export const SNAPSHOT_INTERVAL_MS = 2_000;
/** Archiver: flush at least this often while rows are buffered. */
export const ARCHIVER_FLUSH_INTERVAL_MS = 200;
/** Archiver: flush when this many rows are buffered. */
export const ARCHIVER_FLUSH_ROWS = 20_000;
/** Archiver: a lease holder not renewed for this long is replaced by a standby archiver (nats/archiver_lease.ts). */
export const ARCHIVER_LEASE_MS = 5_000;
/** Archiver: how often the lease holder renews and standby archivers check. */
export const ARCHIVER_RENEW_MS = 1_000;
/** Default gRPC port of a serving node. */
export const GRPC_PORT = 50051;
/** Default gRPC listen host: loopback, so nothing is reachable from outside until an operator says so. */
export const GRPC_HOST = "127.0.0.1";
/** Default port of a process's metrics and health listener (/metrics, /livez, /readyz). */
export const METRICS_PORT = 9464;
/** Default listen host of the metrics and health listener: loopback, as gRPC (Kubernetes sets 0.0.0.0). */
export const METRICS_HOST = "127.0.0.1";
/** How often the serving node reads its TLS certificate, key and client CA files again to pick up a renewal. */
export const GRPC_TLS_RELOAD_MS = 60_000;
/** Batch view versions kept behind the current one for readers still on them. */
export const VIEW_VERSIONS_KEPT = 3;
/**
 * Window states a serving node's batch-view cache holds at most (serving/batch_cache.ts); the
 * least recently used go first. 0 turns the cache off: every query reads the view.
 */
export const BATCH_CACHE_STATES = 1_000_000;
/**
 * What the coordinator removes from the event stream after each batch run (coordinator/retention.ts):
 * `kept-views`, the events no kept batch view, rollback or rebuild needs any more; `off`, nothing
 * (the stream then grows until its store is full).
 */
export const StreamRetentionModes = { keptViews: "kept-views", off: "off" } as const;
export type StreamRetentionMode = (typeof StreamRetentionModes)[keyof typeof StreamRetentionModes];
/** Default stream retention. */
export const STREAM_RETENTION: StreamRetentionMode = StreamRetentionModes.keptViews;
/** Runs before the oldest kept batch view whose events the stream keeps as well, by default: none. */
export const STREAM_RETENTION_EXTRA_RUNS = 0;
/** Local cluster: synthetic page views per second. */
export const SYNTHETIC_RATE_PER_S = 200;
/** chDB writes stop while its disk has less free than this, in MiB (src/ch/disk_guard.ts). */
export const CHDB_MIN_FREE_MB = 256;
/** JetStream duplicate window for event ids (Nats-Msg-Id). */
export const DUPLICATE_WINDOW_MS = 120_000;
/** A process whose ClickHouse roles only read (serving) waits this long for the writers to create the schema. */
export const SCHEMA_WAIT_MS = 60_000;
/** A process whose NATS user may not create streams and buckets waits this long for a coordinator to create them. */
export const NATS_SETUP_WAIT_MS = 60_000;
/** Keeper path prefix of the replicated tables in a ClickHouse cluster: the one ClickHouse's docs and operators use. */
export const DEFAULT_KEEPER_PATH = "/clickhouse/tables";

/** The roles a process can run; any mix can share one process. */
export const Roles = { archiver: "archiver", coordinator: "coordinator", executor: "executor", serving: "serving", speed: "speed" } as const;
export type Role = (typeof Roles)[keyof typeof Roles];

export interface ResolvedConfig {
  /** Roles this process runs. */
  roles: Role[];
  /**
   * NATS server URL, or several separated by commas (nodes of a cluster); empty means "start a
   * local nats-server" (local cluster only).
   */
  natsUrl: string;
  /**
   * Replicas of the streams and KV buckets this cluster creates; 0 = by the server: 1 on a
   * single server, up to 3 on a cluster (nats/setup.ts streamReplicas). Buckets that exist keep theirs.
   */
  natsReplicas: number;
  /**
   * How long a process whose NATS user may not create the streams and buckets (every role but the
   * coordinator, under least-privilege users) waits for a coordinator to create them, in ms (NATS_SETUP_WAIT_MS).
   */
  natsSetupWaitMs: number;
  /** Local cluster only: nats-server processes to start (1, or a cluster of 3 or more on loopback). */
  localNatsNodes: number;
  /**
   * Local cluster only: the store directory of the nats-server it starts (kept on stop);
   * empty means a temporary one. Cannot be combined with `natsUrl`.
   */
  natsStoreDir: string;
  /** NATS credentials and TLS (nats/connect.ts natsSecurityOf): at most one way to authenticate. */
  natsUser: string;
  natsPassword: string;
  natsPasswordFile: string;
  natsToken: string;
  natsTokenFile: string;
  natsNkeySeedFile: string;
  natsCredsFile: string;
  natsTlsCaFile: string;
  natsTlsCertFile: string;
  natsTlsKeyFile: string;
  natsTlsServerName: string;
  /** Replies to this process arrive below this prefix (nats/permissions.ts inboxPrefixFor); "" = nats.js's `_INBOX`. */
  natsInboxPrefix: string;
  /** Clients (lambdactl): host:port of a serving node; roles ignore it. */
  grpcAddr: string;
  /** ClickHouse HTTP URL; empty means the embedded chDB engine at `chdbPath`. */
  clickhouseUrl: string;
  clickhouseUser: string;
  /** The password itself; empty when `clickhousePasswordFile` names a file holding it (never both). */
  clickhousePassword: string;
  /** A file holding the ClickHouse password (a mounted Secret), its trailing newline trimmed; empty: none. */
  clickhousePasswordFile: string;
  /** PEM CA certificate(s) that verify an https:// ClickHouse server; empty: the system's CAs. */
  clickhouseCaFile: string;
  /** PEM client certificate for mutual TLS with ClickHouse (with `clickhouseKeyFile`); empty: none. */
  clickhouseCertFile: string;
  /** PEM private key of `clickhouseCertFile`; empty: none. */
  clickhouseKeyFile: string;
  /** How long a process whose ClickHouse roles only read (serving) waits for the schema, in ms (SCHEMA_WAIT_MS). */
  clickhouseSchemaWaitMs: number;
  /** The ClickHouse cluster (remote_servers) every DDL runs ON CLUSTER with replicated tables; empty: one server or chDB (src/ch/layout.ts). */
  clickhouseCluster: string;
  /** In a cluster, whether the master dataset is sharded under a Distributed table (by stream partition). */
  clickhouseSharded: boolean;
  /** In a cluster, the Keeper path prefix of the replicated tables (no trailing '/'). */
  clickhouseKeeperPath: string;
  /** chDB data directory for the embedded engine. */
  chdbPath: string;
  database: string;
  prefix: string;
  partitions: number;
  catalogPath: string;
  grpcHost: string;
  grpcPort: number;
  /** Listen host of the metrics and health listener (METRICS_HOST). */
  metricsHost: string;
  /** Port of the metrics and health listener (METRICS_PORT; 0: any free port). */
  metricsPort: number;
  batchIntervalMs: number;
  heartbeatIntervalMs: number;
  nodeTimeoutMs: number;
  /** Coordinator leader lease (LEADER_LEASE_MS). */
  leaderLeaseMs: number;
  /** Coordinator lease renewal period; below the lease (LEADER_RENEW_MS). */
  leaderRenewMs: number;
  dedupeHorizonIds: number;
  snapshotIntervalMs: number;
  archiverFlushIntervalMs: number;
  archiverFlushRows: number;
  /** Archiver single-writer lease (ARCHIVER_LEASE_MS). */
  archiverLeaseMs: number;
  /** Archiver lease renewal period; below the lease (ARCHIVER_RENEW_MS). */
  archiverRenewMs: number;
  viewVersionsKept: number;
  /** Serving: window states its batch-view cache holds at most; 0: no cache (BATCH_CACHE_STATES). */
  batchCacheStates: number;
  /** What the coordinator removes from the event stream after a run (STREAM_RETENTION). */
  streamRetention: StreamRetentionMode;
  /** Runs before the oldest kept batch view whose events the stream keeps too (STREAM_RETENTION_EXTRA_RUNS). */
  streamRetentionExtraRuns: number;
  duplicateWindowMs: number;
  /** This process's member id (speed node, coordinator). */
  nodeId: string;
  logLevel: LogLevel;
  /** Local cluster only: synthetic page views published per second (0: none). */
  syntheticRate: number;
  /** chDB writes are refused while its data directory's disk has less than this free, in MiB; 0: off (src/ch/disk_guard.ts). */
  chdbMinFreeMb: number;
  /** Fault matrix only: a directory whose files switch on faults in the ClickHouse adapter; empty: off (src/ch/insert_fault.ts). */
  faultDir: string;

  // gRPC security (docs/security.md "gRPC"). Serving node side: empty = off.
  /** PEM certificate chain the serving node presents; with `grpcTlsKeyFile` it switches TLS on. */
  grpcTlsCertFile: string;
  /** PEM private key of `grpcTlsCertFile`. */
  grpcTlsKeyFile: string;
  /** PEM CA bundle: when set, every client must present a certificate it signed (mutual TLS). */
  grpcTlsClientCaFile: string;
  /** Period of re-reading the three TLS files, ms (GRPC_TLS_RELOAD_MS). */
  grpcTlsReloadMs: number;
  /** File holding the bearer token of queries (lambda.v1.LambdaService, reflection); also what lambdactl sends. */
  grpcTokenFile: string;
  /** File holding the bearer token of the admin API (lambda.v1.AdminService; it may query too); also what lambdactl sends for admin commands. */
  grpcAdminTokenFile: string;
  /** Listen host of the admin API when it has its own port (GRPC_HOST). */
  grpcAdminHost: string;
  /** The admin API's own port (0: any free port); null: it is served on `grpcPort` beside the queries. */
  grpcAdminPort: number | null;
  // gRPC security, lambdactl side (roles ignore these).
  /** Clients: host:port of the admin API when it listens apart; empty: `grpcAddr`. */
  grpcAdminAddr: string;
  /** Clients: the query bearer token itself (a secret: prefer `grpcTokenFile`). */
  grpcToken: string;
  /** Clients: the admin bearer token itself (a secret: prefer `grpcAdminTokenFile`). */
  grpcAdminToken: string;
  /** Clients: PEM CA bundle to verify the serving node with; set, it switches TLS on. */
  grpcTlsCaFile: string;
  /** Clients: PEM certificate presented to a serving node that wants one (mutual TLS). */
  grpcTlsClientCertFile: string;
  /** Clients: PEM private key of `grpcTlsClientCertFile`. */
  grpcTlsClientKeyFile: string;
}

export type ConfigOverrides = Partial<ResolvedConfig>;

type Parser = (key: string, raw: string) => unknown;
const str: Parser = (_k, raw) => raw;
const int =
  (min: number, max = Number.MAX_SAFE_INTEGER): Parser =>
  (key, raw) => {
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new ConfigError(key, raw, `an integer in ${min}..${max}`);
    }
    return n;
  };
const name: Parser = (key, raw) => {
  if (!/^[A-Za-z0-9_-]+$/.test(raw)) throw new ConfigError(key, raw, "letters, digits, '_' or '-'");
  return raw;
};
const flag: Parser = (key, raw) => {
  if (raw !== "true" && raw !== "false") throw new ConfigError(key, raw, "true or false");
  return raw === "true";
};
// ON CLUSTER and Distributed() name it: what remote_servers allows in a cluster's name.
const clusterName: Parser = (key, raw) => {
  if (!/^([A-Za-z0-9_][A-Za-z0-9_.-]*)?$/.test(raw)) throw new ConfigError(key, raw, "empty (one server), or a cluster name of letters, digits, '_', '.' or '-'");
  return raw;
};
const keeperPath: Parser = (key, raw) => {
  if (!/^(\/[A-Za-z0-9_.{}-]+)+$/.test(raw)) throw new ConfigError(key, raw, "an absolute Keeper path of letters, digits, '_', '.', '-' and macros in {}, no trailing '/'");
  return raw;
};
const level: Parser = (key, raw) => {
  if (!Object.hasOwn(LogLevels, raw)) throw new ConfigError(key, raw, `one of ${Object.keys(LogLevels).join(", ")}`);
  return raw;
};

const retentionMode: Parser = (key, raw) => {
  if (!(Object.values(StreamRetentionModes) as string[]).includes(raw)) throw new ConfigError(key, raw, `one of ${Object.values(StreamRetentionModes).join(", ")}`);
  return raw;
};

const roles: Parser = (key, raw) => {
  const list = raw.split(",").map((r) => r.trim()).filter(Boolean);
  for (const r of list) if (!Object.hasOwn(Roles, r)) throw new ConfigError(key, raw, `a comma-separated list of ${Object.keys(Roles).join(", ")}`);
  if (list.length === 0) throw new ConfigError(key, raw, "at least one role");
  return [...new Set(list)];
};

const KUBERNETES_SERVICE_VAR = /^LAMBDA_[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$/;

/** Environment variable → config field, parser. */
const ENV_SCHEMA: Record<string, [keyof ResolvedConfig, Parser]> = {
  LAMBDA_ROLES: ["roles", roles],
  LAMBDA_NATS_URL: ["natsUrl", str],
  LAMBDA_NATS_REPLICAS: ["natsReplicas", int(0, 5)],
  LAMBDA_NATS_SETUP_WAIT_MS: ["natsSetupWaitMs", int(0)],
  LAMBDA_LOCAL_NATS_NODES: ["localNatsNodes", int(1, 7)],
  LAMBDA_NATS_STORE_DIR: ["natsStoreDir", str],
  LAMBDA_NATS_USER: ["natsUser", str],
  LAMBDA_NATS_PASSWORD: ["natsPassword", str],
  LAMBDA_NATS_PASSWORD_FILE: ["natsPasswordFile", str],
  LAMBDA_NATS_TOKEN: ["natsToken", str],
  LAMBDA_NATS_TOKEN_FILE: ["natsTokenFile", str],
  LAMBDA_NATS_NKEY_SEED_FILE: ["natsNkeySeedFile", str],
  LAMBDA_NATS_CREDS_FILE: ["natsCredsFile", str],
  LAMBDA_NATS_TLS_CA_FILE: ["natsTlsCaFile", str],
  LAMBDA_NATS_TLS_CERT_FILE: ["natsTlsCertFile", str],
  LAMBDA_NATS_TLS_KEY_FILE: ["natsTlsKeyFile", str],
  LAMBDA_NATS_TLS_SERVER_NAME: ["natsTlsServerName", str],
  LAMBDA_NATS_INBOX_PREFIX: ["natsInboxPrefix", str],
  LAMBDA_GRPC_ADDR: ["grpcAddr", str],
  LAMBDA_CLICKHOUSE_URL: ["clickhouseUrl", str],
  LAMBDA_CLICKHOUSE_USER: ["clickhouseUser", str],
  LAMBDA_CLICKHOUSE_PASSWORD: ["clickhousePassword", str],
  LAMBDA_CLICKHOUSE_PASSWORD_FILE: ["clickhousePasswordFile", str],
  LAMBDA_CLICKHOUSE_CA_FILE: ["clickhouseCaFile", str],
  LAMBDA_CLICKHOUSE_CERT_FILE: ["clickhouseCertFile", str],
  LAMBDA_CLICKHOUSE_KEY_FILE: ["clickhouseKeyFile", str],
  LAMBDA_CLICKHOUSE_SCHEMA_WAIT_MS: ["clickhouseSchemaWaitMs", int(0)],
  LAMBDA_CLICKHOUSE_CLUSTER: ["clickhouseCluster", clusterName],
  LAMBDA_CLICKHOUSE_SHARDED: ["clickhouseSharded", flag],
  LAMBDA_CLICKHOUSE_KEEPER_PATH: ["clickhouseKeeperPath", keeperPath],
  LAMBDA_CHDB_PATH: ["chdbPath", str],
  LAMBDA_DATABASE: ["database", name],
  LAMBDA_PREFIX: ["prefix", name],
  LAMBDA_PARTITIONS: ["partitions", int(1, 1024)],
  LAMBDA_CATALOG: ["catalogPath", str],
  LAMBDA_GRPC_HOST: ["grpcHost", str],
  LAMBDA_GRPC_PORT: ["grpcPort", int(0, 65535)],
  LAMBDA_METRICS_HOST: ["metricsHost", str],
  LAMBDA_METRICS_PORT: ["metricsPort", int(0, 65535)],
  LAMBDA_BATCH_INTERVAL_MS: ["batchIntervalMs", int(0)],
  LAMBDA_HEARTBEAT_INTERVAL_MS: ["heartbeatIntervalMs", int(50)],
  LAMBDA_NODE_TIMEOUT_MS: ["nodeTimeoutMs", int(100)],
  LAMBDA_LEADER_LEASE_MS: ["leaderLeaseMs", int(100)],
  LAMBDA_LEADER_RENEW_MS: ["leaderRenewMs", int(20)],
  LAMBDA_DEDUPE_HORIZON_IDS: ["dedupeHorizonIds", int(0)],
  LAMBDA_SNAPSHOT_INTERVAL_MS: ["snapshotIntervalMs", int(10)],
  LAMBDA_ARCHIVER_FLUSH_INTERVAL_MS: ["archiverFlushIntervalMs", int(1)],
  LAMBDA_ARCHIVER_FLUSH_ROWS: ["archiverFlushRows", int(1)],
  LAMBDA_ARCHIVER_LEASE_MS: ["archiverLeaseMs", int(100)],
  LAMBDA_ARCHIVER_RENEW_MS: ["archiverRenewMs", int(20)],
  LAMBDA_VIEW_VERSIONS_KEPT: ["viewVersionsKept", int(1)],
  LAMBDA_BATCH_CACHE_STATES: ["batchCacheStates", int(0)],
  LAMBDA_STREAM_RETENTION: ["streamRetention", retentionMode],
  LAMBDA_STREAM_RETENTION_EXTRA_RUNS: ["streamRetentionExtraRuns", int(0, 1_000_000)],
  LAMBDA_DUPLICATE_WINDOW_MS: ["duplicateWindowMs", int(100)],
  LAMBDA_NODE_ID: ["nodeId", name],
  LAMBDA_LOG_LEVEL: ["logLevel", level],
  LAMBDA_SYNTHETIC_RATE: ["syntheticRate", int(0, 1_000_000)],
  LAMBDA_CHDB_MIN_FREE_MB: ["chdbMinFreeMb", int(0)],
  LAMBDA_FAULT_DIR: ["faultDir", str],
  LAMBDA_GRPC_TLS_CERT_FILE: ["grpcTlsCertFile", str],
  LAMBDA_GRPC_TLS_KEY_FILE: ["grpcTlsKeyFile", str],
  LAMBDA_GRPC_TLS_CLIENT_CA_FILE: ["grpcTlsClientCaFile", str],
  LAMBDA_GRPC_TLS_RELOAD_MS: ["grpcTlsReloadMs", int(10)],
  LAMBDA_GRPC_TOKEN_FILE: ["grpcTokenFile", str],
  LAMBDA_GRPC_ADMIN_TOKEN_FILE: ["grpcAdminTokenFile", str],
  LAMBDA_GRPC_ADMIN_HOST: ["grpcAdminHost", str],
  LAMBDA_GRPC_ADMIN_PORT: ["grpcAdminPort", int(0, 65535)],
  LAMBDA_GRPC_ADMIN_ADDR: ["grpcAdminAddr", str],
  LAMBDA_GRPC_TOKEN: ["grpcToken", str],
  LAMBDA_GRPC_ADMIN_TOKEN: ["grpcAdminToken", str],
  LAMBDA_GRPC_TLS_CA_FILE: ["grpcTlsCaFile", str],
  LAMBDA_GRPC_TLS_CLIENT_CERT_FILE: ["grpcTlsClientCertFile", str],
  LAMBDA_GRPC_TLS_CLIENT_KEY_FILE: ["grpcTlsClientKeyFile", str],
};

export function defaultConfig(): ResolvedConfig {
  return {
    roles: ["archiver", "coordinator", "executor", "serving"],
    natsUrl: "",
    natsReplicas: 0,
    natsSetupWaitMs: NATS_SETUP_WAIT_MS,
    localNatsNodes: 1,
    natsStoreDir: "",
    natsUser: "",
    natsPassword: "",
    natsPasswordFile: "",
    natsToken: "",
    natsTokenFile: "",
    natsNkeySeedFile: "",
    natsCredsFile: "",
    natsTlsCaFile: "",
    natsTlsCertFile: "",
    natsTlsKeyFile: "",
    natsTlsServerName: "",
    natsInboxPrefix: "",
    grpcAddr: "",
    clickhouseUrl: "",
    clickhouseUser: "default",
    clickhousePassword: "",
    clickhousePasswordFile: "",
    clickhouseCaFile: "",
    clickhouseCertFile: "",
    clickhouseKeyFile: "",
    clickhouseSchemaWaitMs: SCHEMA_WAIT_MS,
    clickhouseCluster: "",
    clickhouseSharded: false,
    clickhouseKeeperPath: DEFAULT_KEEPER_PATH,
    chdbPath: ".lambda/chdb",
    database: DEFAULT_DATABASE,
    prefix: DEFAULT_PREFIX,
    partitions: DEFAULT_PARTITIONS,
    catalogPath: "catalog/catalog.json",
    grpcHost: GRPC_HOST,
    grpcPort: GRPC_PORT,
    metricsHost: METRICS_HOST,
    metricsPort: METRICS_PORT,
    batchIntervalMs: BATCH_INTERVAL_MS,
    heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
    nodeTimeoutMs: NODE_TIMEOUT_MS,
    leaderLeaseMs: LEADER_LEASE_MS,
    leaderRenewMs: LEADER_RENEW_MS,
    dedupeHorizonIds: DEDUPE_HORIZON_IDS,
    snapshotIntervalMs: SNAPSHOT_INTERVAL_MS,
    archiverFlushIntervalMs: ARCHIVER_FLUSH_INTERVAL_MS,
    archiverFlushRows: ARCHIVER_FLUSH_ROWS,
    archiverLeaseMs: ARCHIVER_LEASE_MS,
    archiverRenewMs: ARCHIVER_RENEW_MS,
    viewVersionsKept: VIEW_VERSIONS_KEPT,
    batchCacheStates: BATCH_CACHE_STATES,
    streamRetention: STREAM_RETENTION,
    streamRetentionExtraRuns: STREAM_RETENTION_EXTRA_RUNS,
    duplicateWindowMs: DUPLICATE_WINDOW_MS,
    nodeId: `node-${process.pid}`,
    logLevel: "info",
    syntheticRate: SYNTHETIC_RATE_PER_S,
    chdbMinFreeMb: CHDB_MIN_FREE_MB,
    faultDir: "",
    grpcTlsCertFile: "",
    grpcTlsKeyFile: "",
    grpcTlsClientCaFile: "",
    grpcTlsReloadMs: GRPC_TLS_RELOAD_MS,
    grpcTokenFile: "",
    grpcAdminTokenFile: "",
    grpcAdminHost: GRPC_HOST,
    grpcAdminPort: null,
    grpcAdminAddr: "",
    grpcToken: "",
    grpcAdminToken: "",
    grpcTlsCaFile: "",
    grpcTlsClientCertFile: "",
    grpcTlsClientKeyFile: "",
  };
}

/**
 * Resolves the configuration once: defaults, then `env`, then `overrides`.
 * @throws ConfigError for an unknown `LAMBDA_*` variable or a bad value.
 */
export function resolveConfig(
  env: Record<string, string | undefined>,
  overrides: ConfigOverrides = {},
  log?: Logger,
): ResolvedConfig {
  const cfg = defaultConfig();
  const fromEnv = new Set<keyof ResolvedConfig>();
  for (const [key, raw] of Object.entries(env)) {
    if (!key.startsWith("LAMBDA_") || raw === undefined) continue;
    const entry = ENV_SCHEMA[key];
    // Kubernetes injects <SERVICE>_SERVICE_HOST, <SERVICE>_PORT_… for every Service in the
    // namespace; a Service named lambda-… must not stop the pods from starting.
    if (!entry && KUBERNETES_SERVICE_VAR.test(key)) continue;
    if (!entry) {
      // The value is not shown: a mistyped secret's variable (LAMBDA_CLICKHOUSE_PASWORD) must not reach the log.
      throw new ConfigError(key, "(value not shown)", `a known variable (${Object.keys(ENV_SCHEMA).join(", ")})`);
    }
    const [field, parse] = entry;
    (cfg as unknown as Record<string, unknown>)[field] = parse(key, raw);
    fromEnv.add(field);
  }
  for (const [field, value] of Object.entries(overrides) as [keyof ResolvedConfig, unknown][]) {
    if (value === undefined) continue;
    if (!(field in cfg)) throw new ConfigError(field, value, "a known config field");
    if (fromEnv.has(field) && log) {
      log.warn("config override replaces an environment value; unset the variable to silence this", { field });
    }
    (cfg as unknown as Record<string, unknown>)[field] = value;
  }
  if (cfg.clickhousePassword !== "" && cfg.clickhousePasswordFile !== "") {
    // Named by the file's variable and path: the password itself never goes into a message.
    throw new ConfigError(envVarFor("clickhousePasswordFile")!, cfg.clickhousePasswordFile, `one source of the ClickHouse password: unset ${envVarFor("clickhousePassword")!} or this`);
  }
  if (cfg.leaderRenewMs >= cfg.leaderLeaseMs) {
    throw new ConfigError(envVarFor("leaderRenewMs")!, cfg.leaderRenewMs, `a renewal period below the leader lease (LAMBDA_LEADER_LEASE_MS = ${cfg.leaderLeaseMs})`);
  }
  if (cfg.archiverRenewMs >= cfg.archiverLeaseMs) {
    throw new ConfigError(envVarFor("archiverRenewMs")!, cfg.archiverRenewMs, `a renewal period below the archiver lease (LAMBDA_ARCHIVER_LEASE_MS = ${cfg.archiverLeaseMs})`);
  }
  checkGrpcTls(cfg);
  checkClickHouseCluster(cfg);
  return cfg;
}

/** A cluster needs a server to talk to, and sharding needs a cluster. @throws ConfigError naming the variable that is missing */
function checkClickHouseCluster(cfg: ResolvedConfig): void {
  if (cfg.clickhouseCluster !== "" && cfg.clickhouseUrl === "") {
    throw new ConfigError(envVarFor("clickhouseCluster")!, cfg.clickhouseCluster, `unset, or a ClickHouse server in ${envVarFor("clickhouseUrl")!} (embedded chDB is one process, not a cluster)`);
  }
  if (cfg.clickhouseSharded && cfg.clickhouseCluster === "") {
    throw new ConfigError(envVarFor("clickhouseSharded")!, "true", `false, or a cluster in ${envVarFor("clickhouseCluster")!} to shard over`);
  }
}

/** The serving node's TLS files come as a pair, and a client CA needs TLS. @throws ConfigError naming the variable that is missing */
function checkGrpcTls(cfg: ResolvedConfig): void {
  if (cfg.grpcTlsCertFile && !cfg.grpcTlsKeyFile) throw new ConfigError("LAMBDA_GRPC_TLS_KEY_FILE", "", `the private key of LAMBDA_GRPC_TLS_CERT_FILE (${cfg.grpcTlsCertFile})`);
  if (cfg.grpcTlsKeyFile && !cfg.grpcTlsCertFile) throw new ConfigError("LAMBDA_GRPC_TLS_CERT_FILE", "", `the certificate of LAMBDA_GRPC_TLS_KEY_FILE (${cfg.grpcTlsKeyFile})`);
  if (cfg.grpcTlsClientCaFile && !cfg.grpcTlsCertFile) {
    throw new ConfigError("LAMBDA_GRPC_TLS_CERT_FILE", "", `a server certificate (and LAMBDA_GRPC_TLS_KEY_FILE): LAMBDA_GRPC_TLS_CLIENT_CA_FILE (${cfg.grpcTlsClientCaFile}) asks for mutual TLS`);
  }
}

/** Every environment variable the schema knows, for docs and manifests. */
export function configEnvVars(): string[] {
  return Object.keys(ENV_SCHEMA);
}

/** The environment variable that sets each field, for docs and manifests. */
export function envVarFor(field: keyof ResolvedConfig): string | undefined {
  return Object.entries(ENV_SCHEMA).find(([, [f]]) => f === field)?.[0];
}
