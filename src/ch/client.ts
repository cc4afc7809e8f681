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
