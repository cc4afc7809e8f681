/**
 * Keeps embedded chDB off a full disk. chDB checks for space before some writes
 * ("Cannot reserve ... not enough space", a clean refusal), but when the disk
 * fills during a write it reports the write as done and leaves an empty part or
 * an empty table definition behind: every read of that table then fails with
 * CORRUPTED_DATA, the rows are gone after a restart, and an empty definition
 * stops the next start altogether (measured here on a small tmpfs). So every
 * write is refused while the data directory's file system has less than
 * LAMBDA_CHDB_MIN_FREE_MB free: the archiver keeps the rows (unacknowledged, in
 * the stream) and retries, a batch run fails and runs again later, and nothing
 * is written that ClickHouse could lose. A ClickHouse server reserves space
 * itself; the guard is for chDB only.
 */
import { statfs } from "node:fs/promises";
import type { ChHandle } from "./client.js";
import { guardWrites } from "./write_guard.js";

const MIB = 1024 * 1024;

/** A write refused because the chDB data directory's disk is (nearly) full. */
export class DiskSpaceError extends Error {
  override readonly name = "DiskSpaceError";
  constructor(
    readonly path: string,
    readonly freeBytes: number,
    readonly minFreeBytes: number,
  ) {
    super(
      `not writing to chDB: its data directory ${path} has ${(freeBytes / MIB).toFixed(1)} MiB free, below LAMBDA_CHDB_MIN_FREE_MB (${(minFreeBytes / MIB).toFixed(0)} MiB); ` +
        "free space there (writes resume by themselves)",
    );
  }
}

/** Bytes free to an unprivileged writer on the file system holding `path`. */
export async function freeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}

/** `handle` (chDB at `path`) refusing writes while less than `minFreeMb` MiB are free; `handle` itself when `minFreeMb` is 0. */
export function withDiskGuard(handle: ChHandle, path: string, minFreeMb: number): ChHandle {
  if (handle.engine !== "chdb" || minFreeMb <= 0) return handle;
  const min = minFreeMb * MIB;
  return guardWrites(handle, {
    async beforeWrite() {
      const free = await freeBytes(path);
      if (free < min) throw new DiskSpaceError(path, free, min);
    },
  });
}
