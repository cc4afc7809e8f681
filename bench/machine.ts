/** What the results were measured on: versions, cores, the commit. Recorded in every JSON result. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, release, totalmem } from "node:os";
import { join } from "node:path";

/** Recorded in every JSON result. */
export interface MachineInfo {
  readonly node: string;
  readonly natsServer: string;
  /** chDB engine version as `SELECT version()` reports it. */
  readonly chdbEngine: string;
  /** npm package versions of the parts measured. */
  readonly packages: Readonly<Record<string, string>>;
  readonly cores: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly platform: string;
  readonly gitSha: string;
  /** True when the work tree had uncommitted changes. */
  readonly gitDirty: boolean;
  /** 1-, 5- and 15-minute load averages when the run started: other work on the machine shows here. */
  readonly loadAverageAtStart: readonly number[];
}

const PACKAGES = ["chdb", "@clickhouse/client", "@nats-io/transport-node", "@nats-io/jetstream", "msgpackr", "@grpc/grpc-js"];

function packageVersion(root: string, name: string): string {
  try {
    return (JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "unknown"; // not installed where expected; the report says so
  }
}

function git(root: string, args: string[]): string | null {
  try {
    return execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null; // not a git checkout (e.g. an unpacked tarball)
  }
}

/** Describes this machine and the checkout at `root`; never throws (unknown parts say "unknown"). */
export function describeMachine(root: string, natsServer: string, chdbEngine: string): MachineInfo {
  const status = git(root, ["status", "--porcelain", "--untracked-files=no"]);
  return {
    node: process.version,
    natsServer,
    chdbEngine,
    packages: Object.fromEntries(PACKAGES.map((p) => [p, packageVersion(root, p)])),
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: `${process.platform} ${release()}`,
    gitSha: git(root, ["rev-parse", "--short=12", "HEAD"]) ?? "nogit",
    gitDirty: status !== null && status.length > 0,
    loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}
