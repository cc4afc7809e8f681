/**
 * The shared ground of one bench run: one nats-server child (random port,
 * temporary store, never 4222) and one chDB data directory (a process opens one
 * at a time), both in a temporary directory removed on close. Every figure
 * gets its own subject prefix and database inside them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadCatalog, type Catalog } from "../src/core/catalog.js";
import { openClickHouse } from "../src/ch/client.js";
import { startNatsServer, type NatsServerProcess } from "../src/nats/server_process.js";
import { PROFILE_DIR_ENV } from "./children/cpu_profile.js";
import { describeMachine, type MachineInfo } from "./machine.js";
import { REPO_ROOT } from "./paths.js";

/** Preloaded into child processes to write CPU profiles (see children/cpu_profile.ts). */
const PROFILER_PRELOAD = new URL("./children/cpu_profile.js", import.meta.url).href;


/** The run's nats-server, chDB directory, catalog and machine description. */
export interface BenchEnv {
  readonly natsUrl: string;
  /** The nats-server's process id (figures meter its CPU). */
  readonly natsPid: number;
  readonly chdbPath: string;
  readonly tmpDir: string;
  readonly catalogPath: string;
  readonly catalog: Catalog;
  readonly machine: MachineInfo;
  /** A fresh prefix (subjects, streams, buckets) that is also a valid database name. */
  prefix(tag: string): string;
  /** Extra environment for child processes: a CPU-profiler preload when profiling. */
  readonly childEnv: Readonly<Record<string, string>>;
  close(): Promise<void>;
}

/**
 * Starts nats-server and reads the chDB version.
 * @param profileDir where children write CPU profiles; null: no profiling.
 * @throws MissingBinaryError when nats-server is not installed.
 */
export async function startBenchEnv(profileDir: string | null): Promise<BenchEnv> {
  const tmpDir = mkdtempSync(join(tmpdir(), "lambda-bench-"));
  let nats: NatsServerProcess | undefined;
  const close = async () => {
    await nats?.close();
    rmSync(tmpDir, { recursive: true, force: true });
  };
  try {
    nats = await startNatsServer({ path: process.env.PATH ?? "" });
    const chdbPath = join(tmpDir, "chdb");
    const ch = await openClickHouse({ url: "", username: "default", password: "", chdbPath });
    let engine: string;
    try {
      const rs = await ch.client.query({ query: "SELECT version() AS v", format: "JSONEachRow" });
      engine = ((await rs.json<{ v: string }>())[0]?.v) ?? "unknown";
    } finally {
      await ch.close();
    }
    const catalogPath = join(REPO_ROOT, "catalog/catalog.json");
    let counter = 0;
    return {
      natsUrl: nats.url,
      natsPid: nats.pid,
      chdbPath,
      tmpDir,
      catalogPath,
      catalog: loadCatalog(catalogPath),
      machine: describeMachine(REPO_ROOT, nats.version, engine),
      prefix: (tag) => `b${process.pid}${tag}${counter++}`,
      childEnv: profileDir ? { NODE_OPTIONS: `--import=${PROFILER_PRELOAD}`, [PROFILE_DIR_ENV]: profileDir } : {},
      close,
    };
  } catch (err) {
    await close().catch(() => undefined); // best effort: the start failure is what matters
    throw err;
  }
}
