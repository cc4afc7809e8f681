/**
 * One place that sees every write a process sends to ClickHouse: the client's
 * insert and the statements of command/exec that write (INSERT, CREATE, ALTER,
 * RENAME, EXCHANGE), and the master-dataset inserter. A guard runs before each
 * write and may refuse it by throwing; the write then never reaches the engine.
 * Reads pass untouched.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { ChHandle } from "./client.js";

const WRITES = /^\s*(INSERT|CREATE|ALTER|RENAME|EXCHANGE)\b/i;

export interface WriteGuard {
  /** Runs before every write; throws to refuse it. `insert` is true for inserts (INSERT or client.insert). */
  beforeWrite(insert: boolean): Promise<void>;
  /** Runs after an insert into the master dataset returned. */
  afterMasterInsert?(): void;
}

/** `handle` with `guard` in front of its writes. */
export function guardWrites(handle: ChHandle, guard: WriteGuard): ChHandle {
  const client = new Proxy(handle.client, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === "insert") return (...args: Parameters<ClickHouseClient["insert"]>) => guard.beforeWrite(true).then(() => target.insert(...args));
      if (prop === "command" || prop === "exec") {
        return (params: { query: string }) => {
          const write = WRITES.exec(params.query);
          return (write ? guard.beforeWrite(write[1]!.toUpperCase() === "INSERT") : Promise.resolve()).then(() => (v as (p: unknown) => unknown).call(target, params));
        };
      }
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const master = {
    format: handle.master.format,
    async insert(...args: Parameters<ChHandle["master"]["insert"]>) {
      await guard.beforeWrite(true);
      await handle.master.insert(...args);
      guard.afterMasterInsert?.();
    },
  };
  return { ...handle, client, master };
}
