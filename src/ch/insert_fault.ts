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
import type { ChHandle } from "./client.js";
import { guardWrites } from "./write_guard.js";

/** The files of LAMBDA_FAULT_DIR that switch a fault on. */
export const FaultFiles = { insertsFail: "inserts-fail", killAfterInsert: "kill-after-insert" } as const;

/** The error every insert gets while the inserts-fail file exists. */
export class InjectedInsertFault extends Error {
  constructor(readonly file: string) {
    super(`insert refused: injected fault (LAMBDA_FAULT_DIR, ${file} exists)`);
    this.name = "InjectedInsertFault";
  }
}

/** `handle` with the fault seams of `faultDir`; `handle` itself when `faultDir` is empty. */
export function withFaultSeams(handle: ChHandle, faultDir: string): ChHandle {
  if (!faultDir) return handle;
  const failFile = join(faultDir, FaultFiles.insertsFail);
  const killFile = join(faultDir, FaultFiles.killAfterInsert);
  return guardWrites(handle, {
    async beforeWrite(insert) {
      if (insert && existsSync(failFile)) throw new InjectedInsertFault(failFile);
    },
    afterMasterInsert() {
      if (existsSync(killFile)) process.kill(process.pid, "SIGKILL");
    },
  });
}
