/**
 * The chDB disk guard (src/ch/disk_guard.ts) on a real, small file system: a 64 MiB tmpfs
 * mounted for the test (root, as CI runs). Filled to below the guard's minimum, every write is
 * refused with a DiskSpaceError naming the directory and reads go on; with the space back,
 * writes land again and nothing refused was written.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openClickHouse, queryRows } from "../../src/ch/client.js";
import { DiskSpaceError, freeBytes, withDiskGuard } from "../../src/ch/disk_guard.js";

const MIB = 1024 * 1024;

test("chDB writes are refused while its disk has less than the minimum free, and land again once space returns", async (t) => {
  if (process.getuid?.() !== 0) return t.skip("mounting a tmpfs needs root (CI runs as root)");
  const mnt = mkdtempSync(join(tmpdir(), "lambda-disk-guard-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=64m", "tmpfs", mnt]);
  t.after(() => {
    execFileSync("umount", ["-l", mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  const path = join(mnt, "chdb");
  const raw = await openClickHouse({ url: "", username: "default", password: "", chdbPath: path });
  t.after(() => raw.close());
  const ch = withDiskGuard(raw, path, 16);
  assert.equal(withDiskGuard(raw, path, 0), raw, "0 turns it off");
  await ch.client.command({ query: "CREATE DATABASE IF NOT EXISTS g" });
  await ch.client.command({ query: "CREATE TABLE g.t (x UInt32) ENGINE = MergeTree ORDER BY x" });
  await ch.client.insert({ table: "g.t", values: [{ x: 1 }], format: "JSONEachRow" });

  // Leave 8 MiB: below the guard's 16, far from chDB's own "cannot reserve" check.
  const filler = join(mnt, "filler");
  execFileSync("fallocate", ["-l", String((await freeBytes(mnt)) - 8 * MIB), filler]);
  const refused = (err: unknown) => err instanceof DiskSpaceError && err.path === path && /below LAMBDA_CHDB_MIN_FREE_MB \(16 MiB\)/.test(err.message);
  await assert.rejects(ch.client.insert({ table: "g.t", values: [{ x: 2 }], format: "JSONEachRow" }), refused);
  await assert.rejects(ch.client.command({ query: "INSERT INTO g.t VALUES (3)" }), refused);
  await assert.rejects(ch.client.command({ query: "CREATE TABLE g.u (x UInt32) ENGINE = MergeTree ORDER BY x" }), refused);
  await assert.rejects(ch.client.command({ query: "ALTER TABLE g.t ADD COLUMN y UInt8" }), refused);
  assert.deepEqual((await queryRows<{ x: number }>(ch.client, "SELECT x FROM g.t ORDER BY x")).map((r) => r.x), [1], "reads go on");

  rmSync(filler);
  await ch.client.insert({ table: "g.t", values: [{ x: 4 }], format: "JSONEachRow" });
  await ch.client.command({ query: "INSERT INTO g.t VALUES (5)" });
  assert.deepEqual((await queryRows<{ x: number }>(ch.client, "SELECT x FROM g.t ORDER BY x")).map((r) => r.x), [1, 4, 5]);
});
