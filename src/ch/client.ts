/**
 * One ClickHouse client per process: a ClickHouse server over HTTP when a URL is
 * configured, otherwise the embedded chDB engine plugged into the same
 * @clickhouse/client through `createChdbConnection`. chDB locks its data
 * directory to one process, so every ClickHouse-touching role of a process
 * shares the client opened here.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createClient, type ClickHouseClient } from "@clickhouse/client";
import { chdbFileMasterInserter, jsonMasterInserter, type MasterInserter } from "./master_insert.js";

export interface ChOptions {
  /** ClickHouse HTTP URL; empty for embedded chDB. */
  url: string;
  username: string;
  password: string;
  /** chDB data directory (used when `url` is empty). */
  chdbPath: string;
}

export interface ChHandle {
  readonly client: ClickHouseClient;
  /** "chdb" or "server", for logs and the bench report. */
  readonly engine: "chdb" | "server";
  /** Appends rows to the master dataset: RowBinary on chDB, JSONEachRow on a server (see master_insert.ts). */
  readonly master: MasterInserter;
  close(): Promise<void>;
}

/**
 * Opens the process's ClickHouse client. chDB (a ~550 MB native engine) is loaded
 * only when no URL is configured, so roles that talk to a ClickHouse server, and
 * roles that need no ClickHouse at all, never load it.
 */
export async function openClickHouse(opts: ChOptions): Promise<ChHandle> {
  if (opts.url) {
    const client = createClient({ url: opts.url, username: opts.username, password: opts.password });
    return { client, engine: "server", master: jsonMasterInserter(client), close: () => client.close() };
  }
  mkdirSync(opts.chdbPath, { recursive: true });
  const { createChdbConnection } = await import("chdb/connection");
  const client = createClient({ connection: createChdbConnection({ path: opts.chdbPath }) } as Parameters<typeof createClient>[0]);
  // The insert files live next to chDB's own data: one process owns the directory.
  return { client, engine: "chdb", master: chdbFileMasterInserter(client, join(opts.chdbPath, "lambda-insert")), close: () => client.close() };
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
