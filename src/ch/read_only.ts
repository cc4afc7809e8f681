/**
 * The serving role's ClickHouse client: it reads and never writes, whatever user it logs in as.
 *
 * Which `readonly`: 1. ClickHouse's readonly=1 allows reads only and forbids changing any
 * setting; readonly=2 allows reads and changing settings except `readonly` itself. Serving's
 * queries change no setting, so 1 costs nothing and also keeps a query from loosening anything
 * else. And it is what the documented serving user's profile holds (docs/security.md), so a
 * query never asks for something that profile refuses: a user whose profile is readonly=1 may
 * not switch to 2.
 *
 * How: as the query's own `SETTINGS readonly = 1` clause, appended to its text, not as
 * `clickhouse_settings`. chDB's connection turns `clickhouse_settings` into `SET` statements on
 * the process's one chDB session, where they outlive the query: readonly=1 sent that way would
 * make the session read-only for the archiver and the batch executor sharing it, for good (a
 * read-only session cannot set it back). A query's SETTINGS clause holds for that query alone,
 * on chDB and on a server alike.
 *
 * When the user's profile already is read-only (readonly 1 or 2, a server with the serving user
 * of docs/security.md), the server enforces it and the queries go as they are: repeating the
 * setting is refused under readonly=2 and, on older servers, even under readonly=1.
 *
 * Statements that write by their nature (command, exec, insert) are refused here, before they
 * reach ClickHouse; a write smuggled into `query` is refused by ClickHouse (readonly=1).
 *
 * In a ClickHouse cluster (ch/layout.ts) a read must also see every insert the batch executor
 * had acknowledged, on whichever replica it lands: `select_sequential_consistency = 1`. It goes
 * into the same SETTINGS clause, before `readonly`; a user read-only by its profile cannot set
 * it, so its profile must hold it, and a serving node whose profile does not refuses to start.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { Logger } from "../core/logger.js";
import { queryRows } from "./client.js";
import { readerSettings, SINGLE_LAYOUT, type ChLayout } from "./layout.js";

/** What every serving query ends with while the user's profile lets it write. */
export const READONLY_CLAUSE = "SETTINGS readonly = 1";

/** A write attempted through the read-only client: refused before it reached ClickHouse. */
export class ReadOnlyClientError extends Error {
  override readonly name = "ReadOnlyClientError";
  constructor(
    /** The client method called: command, exec or insert. */
    readonly method: string,
    /** The first words of the statement (or the table of an insert), for the log. */
    readonly statement: string,
  ) {
    super(`the serving role's ClickHouse client is read-only: ${method} refused (${statement}); writes belong to the archiver and the batch executor`);
  }
}

const WRITE_METHODS: ReadonlySet<PropertyKey> = new Set(["command", "exec", "insert"]);

/** The first words of a statement, enough to say what was refused without logging its values. */
function head(params: unknown): string {
  const p = (params ?? {}) as { query?: unknown; table?: unknown };
  if (typeof p.table === "string") return `INSERT INTO ${p.table}`;
  const text = typeof p.query === "string" ? p.query.trim().replace(/\s+/g, " ") : "";
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/** A ClickHouse cluster's serving user is read-only by its profile, and the profile lets reads miss acknowledged inserts. */
export class ServingConsistencyError extends Error {
  override readonly name = "ServingConsistencyError";
  constructor(
    /** The profile's `readonly`. */
    readonly profileReadonly: number,
    /** The profile's `select_sequential_consistency`. */
    readonly profileValue: number,
  ) {
    super(
      `serving's ClickHouse user is read-only by its profile (readonly=${profileReadonly}) and its profile has select_sequential_consistency=${profileValue}: ` +
        "in a cluster (LAMBDA_CLICKHOUSE_CLUSTER) a read may then land on a replica that lacks part of a view version; add select_sequential_consistency = 1 to that profile (docs/deploy.md)",
    );
  }
}

/** Where the client runs: the embedded engine shares its session with the writers; a server has profiles. */
export interface ReadOnlyClientOptions {
  readonly engine: "chdb" | "server";
  /** One server or a cluster (ch/layout.ts): a cluster's reads need sequential consistency. @default one server */
  readonly layout?: ChLayout;
  readonly log: Logger;
}

/** `name = value` of settings, for a SETTINGS clause; the values are the fixed ones of ch/layout.ts. */
const settingsList = (settings: Record<string, unknown>) => Object.entries(settings).map(([k, v]) => `${k} = ${String(v)}`);

/**
 * `client` for the serving role: queries read-only (see the module header), writes refused.
 * Asks ClickHouse once which `readonly` the user's profile holds (and, in a cluster, which
 * `select_sequential_consistency`).
 * @throws the client's error when that first query fails (ClickHouse unreachable, login refused)
 * @throws ServingConsistencyError in a cluster, when the user is read-only by its profile and the
 *   profile lacks select_sequential_consistency = 1
 */
export async function readOnlyClient(client: ClickHouseClient, opts: ReadOnlyClientOptions): Promise<ClickHouseClient> {
  const log = opts.log.child({ component: "clickhouse" });
  const reads = readerSettings(opts.layout ?? SINGLE_LAYOUT);
  const cluster = Object.keys(reads).length > 0;
  const [row] = await queryRows<{ readonly: number | string; consistent?: number | string }>(
    client,
    `SELECT getSetting('readonly') AS readonly${cluster ? ", getSetting('select_sequential_consistency') AS consistent" : ""}`,
  );
  const profile = Number(row?.readonly ?? 0);
  const addClause = profile === 0;
  const clause = cluster ? `SETTINGS ${[...settingsList(reads), "readonly = 1"].join(", ")}` : READONLY_CLAUSE;
  if (!addClause && cluster && Number(row?.consistent ?? 0) !== 1) throw new ServingConsistencyError(profile, Number(row?.consistent ?? 0));
  if (!addClause) {
    log.info("serving's ClickHouse user is read-only by its profile: its queries rely on that", { readonly: profile });
  } else if (opts.engine === "server") {
    log.warn("serving logs in to ClickHouse as a user that may write (its profile has readonly=0): each serving query is made read-only on its own; give serving the read-only user of docs/security.md", { user_readonly: profile });
  }
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === "query" && addClause) {
        return (params: Parameters<ClickHouseClient["query"]>[0]) => target.query({ ...params, query: `${params.query}\n${clause}` });
      }
      if (WRITE_METHODS.has(prop)) return (params: unknown) => Promise.reject(new ReadOnlyClientError(String(prop), head(params)));
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
