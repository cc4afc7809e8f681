/**
 * A fault seam for the fault matrix (F17, "the ClickHouse engine failing inserts for a
 * while"): while the file `whilePath` exists, every INSERT this process sends through its
 * ClickHouse handle fails as a ClickHouse that cannot write would, before anything reaches
 * the engine. Off unless LAMBDA_FAULT_INSERTS_FAIL_WHILE names a file; one `existsSync` per
 * insert when on. Reads (and so serving) are not touched.
 */
import { existsSync } from "node:fs";
import type { ClickHouseClient } from "@clickhouse/client";
import type { ChHandle } from "./client.js";

/** The error every insert gets while the fault file exists. */
export class InjectedInsertFault extends Error {
  constructor(readonly whilePath: string) {
    super(`insert refused: injected fault (LAMBDA_FAULT_INSERTS_FAIL_WHILE, ${whilePath} exists)`);
    this.name = "InjectedInsertFault";
  }
}

const isInsert = (sql: string) => /^\s*INSERT\b/i.test(sql);

/** `handle` with every insert failing while `whilePath` exists; `handle` itself when `whilePath` is empty. */
export function withInsertFault(handle: ChHandle, whilePath: string): ChHandle {
  if (!whilePath) return handle;
  const check = async () => {
    if (existsSync(whilePath)) throw new InjectedInsertFault(whilePath);
  };
  const client = new Proxy(handle.client, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === "insert") return (...args: Parameters<ClickHouseClient["insert"]>) => check().then(() => target.insert(...args));
      if (prop === "command" || prop === "exec") {
        return (params: { query: string }) => (isInsert(params.query) ? check() : Promise.resolve()).then(() => (v as (p: unknown) => unknown).call(target, params));
      }
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const master = { format: handle.master.format, insert: (...args: Parameters<ChHandle["master"]["insert"]>) => check().then(() => handle.master.insert(...args)) };
  return { ...handle, client, master };
}
