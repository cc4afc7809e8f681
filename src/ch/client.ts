/**
 * One ClickHouse client per process: a ClickHouse server over HTTP when a URL is
 * configured, otherwise the embedded chDB engine plugged into the same
 * @clickhouse/client through `createChdbConnection`. chDB locks its data
 * directory to one process, so every ClickHouse-touching role of a process
 * shares the client opened here.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ClickHouseLogLevel, createClient, type ClickHouseClient, type Logger as ChLogger, type LogParams } from "@clickhouse/client";
import { ConfigError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { ignoredByChdb, serverConnection, type ChOptions } from "./connection_options.js";
import { SINGLE_LAYOUT, type ChLayout } from "./layout.js";
import { chdbFileMasterInserter, jsonMasterInserter, type MasterInserter } from "./master_insert.js";

export type { ChOptions } from "./connection_options.js";

export interface ChHandle {
  readonly client: ClickHouseClient;
  /** "chdb" or "server", for logs and the bench report. */
  readonly engine: "chdb" | "server";
  /** Where the tables live: one server (or chDB), or a cluster (ch/layout.ts). */
  readonly layout: ChLayout;
  /** Appends rows to the master dataset: RowBinary on chDB, JSONEachRow on a server (see master_insert.ts). */
  readonly master: MasterInserter;
  close(): Promise<void>;
}

/** What the client needs besides its options. */
export interface ChDeps {
  /** Where @clickhouse/client's own log lines go, as lines of ours with component "clickhouse". */
  readonly log: Logger;
}

/**
 * The `log` option of @clickhouse/client that writes its lines into `log`.
 * The client takes a class it instantiates itself, so the class closes over our logger;
 * its trace lines become debug lines, its module a field.
 */
export function clickHouseLogOption(log: Logger): { LoggerClass: new () => ChLogger; level: ClickHouseLogLevel } {
  const ch = log.child({ component: "clickhouse" });
  const fields = (p: LogParams & { err?: Error }) => ({ module: p.module, ...p.args, ...(p.err ? { err: p.err } : {}) });
  class RoutedLogger implements ChLogger {
    trace(p: LogParams) {
      ch.debug(p.message, fields(p));
    }
    debug(p: LogParams) {
      ch.debug(p.message, fields(p));
    }
    info(p: LogParams) {
      ch.info(p.message, fields(p));
    }
    warn(p: LogParams & { err?: Error }) {
      ch.warn(p.message, fields(p));
    }
    error(p: LogParams & { err: Error }) {
      ch.error(p.message, fields(p));
    }
  }
  // The client's own default: warnings and errors. Our logger filters by LAMBDA_LOG_LEVEL after that.
  return { LoggerClass: RoutedLogger, level: ClickHouseLogLevel.WARN };
}

/**
 * Opens the process's ClickHouse client. chDB (a ~550 MB native engine) is loaded
 * only when no URL is configured, so roles that talk to a ClickHouse server, and
 * roles that need no ClickHouse at all, never load it.
 * A server is reached with the password and TLS of connection_options.ts; chDB ignores those,
 * and says so once in the log when any is set.
 * @param deps the logger the client's own lines go to; without it they go to the client's
 *   default (plain console lines), which only tests and benchmarks should rely on.
 * @throws ConfigError when the password or TLS settings are wrong (see serverConnection), or a
 *   cluster layout comes without a server URL
 */
export async function openClickHouse(opts: ChOptions, deps?: ChDeps): Promise<ChHandle> {
  const log = deps ? { log: clickHouseLogOption(deps.log) } : {};
  const layout = opts.layout ?? SINGLE_LAYOUT;
  if (opts.url) {
    const settings = opts.settings ?? {};
    // Settings of the client's every request: the cluster's consistency settings of a writing process (ch/layout.ts).
    const client = createClient({ ...serverConnection(opts), ...log, ...(Object.keys(settings).length > 0 ? { clickhouse_settings: settings } : {}) });
    return { client, engine: "server", layout, master: jsonMasterInserter(client), close: () => client.close() };
  }
  // core/config refuses a cluster without a server URL; a caller that builds options itself is told here.
  if (layout.kind !== "single") throw new ConfigError("LAMBDA_CLICKHOUSE_CLUSTER", layout.cluster, "unset, or a ClickHouse server in LAMBDA_CLICKHOUSE_URL (embedded chDB is one process, not a cluster)");
  const ignored = ignoredByChdb(opts);
  if (ignored.length > 0) {
    deps?.log.child({ component: "clickhouse" }).warn("embedded chDB has no server to log in to or encrypt for: these settings are ignored; set LAMBDA_CLICKHOUSE_URL to use them, or unset them", { ignored });
  }
  mkdirSync(opts.chdbPath, { recursive: true });
  const { createChdbConnection } = await import("chdb/connection");
  const client = createClient({ connection: createChdbConnection({ path: opts.chdbPath }), ...log } as Parameters<typeof createClient>[0]);
  // The insert files live next to chDB's own data: one process owns the directory.
  return { client, engine: "chdb", layout, master: chdbFileMasterInserter(client, join(opts.chdbPath, "lambda-insert")), close: () => client.close() };
}

/** Runs a SELECT and returns its rows as objects. */
export async function queryRows<T>(client: ClickHouseClient, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await client.query({ query, query_params: params, format: "JSONEachRow" });
  return rs.json<T>();
}

/**
 * ClickHouse error codes that say the rows themselves are bad (a value the column cannot hold or
 * parse): sending the same rows again fails again. Any other failure may be transient.
 */
const DATA_REFUSAL_CODES: ReadonlySet<number> = new Set([
  6, // CANNOT_PARSE_TEXT
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  131, // TOO_LARGE_STRING_SIZE
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
  407, // DECIMAL_OVERFLOW
]);

/**
 * The ClickHouse error code of `err`, when it is a ClickHouse error. Checked by shape, not by
 * class: chDB's connection builds its errors with its own copy of @clickhouse/client-common, so
 * `instanceof ClickHouseError` of @clickhouse/client is false for them.
 */
export function clickHouseErrorCode(err: unknown): number | undefined {
  if (!(err instanceof Error) || !("code" in err) || !("type" in err)) return undefined;
  const code = Number(err.code);
  return Number.isInteger(code) && code > 0 ? code : undefined;
}

/** True when ClickHouse refused the data itself: retrying the same rows cannot help. */
export function isDataRefusal(err: unknown): boolean {
  const code = clickHouseErrorCode(err);
  return code !== undefined && DATA_REFUSAL_CODES.has(code);
}
