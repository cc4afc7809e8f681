/** Runs the built lambdactl as a user would: a child process with only the environment given. */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { fileURLToPath } from "node:url";

export const CLI = fileURLToPath(new URL("../../src/cli/lambdactl.js", import.meta.url));

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Starts lambdactl with only the environment given (plus PATH), in `cwd`. */
export function spawnCli(args: readonly string[], opts: { cwd: string; env?: Record<string, string> }): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ["--enable-source-maps", CLI, ...args], { cwd: opts.cwd, env: { PATH: process.env.PATH ?? "", ...opts.env }, stdio: ["pipe", "pipe", "pipe"] });
}

/** Runs lambdactl to the end with only the environment given (plus PATH), in `cwd`, feeding `input` to stdin. */
export function lambdactl(args: readonly string[], opts: { cwd: string; env?: Record<string, string>; input?: string }): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, opts);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? "");
  });
}

/** The JSON lambdactl printed, or an error quoting what it printed instead. */
export function parseJson<T>(r: CliRun): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch (err) {
    throw new Error(`lambdactl printed no JSON (exit ${r.code}); stdout: ${r.stdout}\nstderr: ${r.stderr}`, { cause: err });
  }
}
