/**
 * chDB for a test file: a client on a fresh temporary data directory, removed
 * on dispose. chDB allows one data directory per process, so a test file opens
 * one and its tests share it (each with its own database).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openClickHouse, type ChDeps, type ChHandle, type ChOptions } from "../../src/ch/client.js";

export interface TestChdb extends AsyncDisposable {
  readonly ch: ChHandle;
  /** The chDB data directory. */
  readonly path: string;
}

/**
 * Opens chDB in a new temporary directory named after `tag`.
 * @param options settings besides the directory (e.g. ones chDB ignores); `deps` its logger
 */
export async function openTestChdb(tag: string, options: Partial<ChOptions> = {}, deps?: ChDeps): Promise<TestChdb> {
  const dir = mkdtempSync(join(tmpdir(), `lambda-${tag}-`));
  const path = join(dir, "chdb");
  try {
    const ch = await openClickHouse({ url: "", username: "default", password: "", ...options, chdbPath: path }, deps);
    return {
      ch,
      path,
      async [Symbol.asyncDispose]() {
        try {
          await ch.close();
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
