/**
 * Fault seams for the fault matrix, in the one place every ClickHouse write of a
 * process goes through. Off unless LAMBDA_FAULT_DIR names a directory; then a file
 * in it switches a fault on while it exists (one `existsSync` per insert):
 *
 *   inserts-fail       every INSERT fails before it reaches the engine, as a ClickHouse
 *                      that cannot write would (F17); reads, and so serving, go on
 *   kill-after-insert  the process SIGKILLs itself as soon as an insert into the master
 *                      dataset has returned: after the rows are in ClickHouse, before the
 *                      archiver acknowledges them or records its progress in NATS (F2)
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { ClickHouseClient } from "@clickhouse/client";
import type { ChHandle } from "./client.js";

/** The files of LAMBDA_FAULT_DIR that switch a fault on. */
export const FaultFiles = { insertsFail: "inserts-fail", killAfterInsert: "kill-after-insert" } as const;

/** The error every insert gets while the inserts-fail file exists. */
export class InjectedInsertFault extends Error {
  constructor(readonly file: string) {
    super(`insert refused: injected fault (LAMBDA_FAULT_DIR, ${file} exists)`);
    this.name = "InjectedInsertFault";
  }
}

const isInsert = (sql: string) => /^\s*INSERT\b/i.test(sql);

/** `handle` with the fault seams of `faultDir`; `handle` itself when `faultDir` is empty. */
export function withFaultSeams(handle: ChHandle, faultDir: string): ChHandle {
  if (!faultDir) return handle;
  const failFile = join(faultDir, FaultFiles.insertsFail);
  const killFile = join(faultDir, FaultFiles.killAfterInsert);
  const check = async () => {
    if (existsSync(failFile)) throw new InjectedInsertFault(failFile);
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
  const master = {
    format: handle.master.format,
    async insert(...args: Parameters<ChHandle["master"]["insert"]>) {
      await check();
      await handle.master.insert(...args);
      if (existsSync(killFile)) process.kill(process.pid, "SIGKILL");
    },
  };
  return { ...handle, client, master };
}
