/**
 * Starts a nats-server child process with JetStream on a free port and a store
 * directory, for the local cluster and the test harness. It never touches a
 * server that may already run on the default port 4222.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { MissingBinaryError } from "../core/errors.js";

export const NATS_SERVER_INSTALL_HINT =
  "install the Debian package `nats-server` (sudo apt-get install nats-server), or set LAMBDA_NATS_URL to a running server";
/** How long a starting nats-server may take to report that it is ready. */
export const NATS_SERVER_START_TIMEOUT_MS = 15_000;

export interface NatsServerProcess {
  /** nats://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  readonly pid: number;
  /** Server version as it reports itself, e.g. "2.9.10". */
  readonly version: string;
  /** Stops the server and removes a store directory this module created. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface NatsServerOptions {
  /** Store directory; a fresh temporary one (removed on close) when absent. */
  storeDir?: string;
  /** PATH to search for the binary. */
  path?: string;
  /** Extra command-line arguments. */
  args?: string[];
}

/** Finds nats-server on `path`, then in /usr/sbin (where Debian installs it). */
export function findNatsServer(path = ""): string {
  const dirs = [...path.split(delimiter).filter(Boolean), "/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"];
  for (const d of dirs) {
    const candidate = join(d, "nats-server");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  throw new MissingBinaryError("nats-server", NATS_SERVER_INSTALL_HINT);
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Starts nats-server on a random free port and resolves once it accepts clients. */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerProcess> {
  const bin = findNatsServer(opts.path);
  const ownDir = opts.storeDir === undefined;
  const storeDir = opts.storeDir ?? mkdtempSync(join(tmpdir(), "lambda-nats-"));
  // -p -1: the server picks a free port and logs it; no race between probe and bind.
  const child = spawn(bin, ["-a", "127.0.0.1", "-p", "-1", "-js", "-sd", storeDir, ...(opts.args ?? [])], {
    stdio: ["ignore", "ignore", "pipe"],
    // Its own process group: a Ctrl-C in the terminal reaches the parent only,
    // which stops the roles first and the server last.
    detached: true,
  });
  let log = "";
  const ready = new Promise<{ port: number; version: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server did not become ready within ${NATS_SERVER_START_TIMEOUT_MS} ms; its log:\n${log}`)), NATS_SERVER_START_TIMEOUT_MS);
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      log += chunk;
      const port = /Listening for client connections on [^\s]+:(\d+)/.exec(log);
      const version = /Version:\s+(\S+)/.exec(log);
      if (port && /Server is ready/.test(log)) {
        clearTimeout(timer);
        resolve({ port: Number(port[1]), version: version?.[1] ?? "unknown" });
      }
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited (${code ?? signal}) before it was ready; its log:\n${log}`));
    });
  });
  let info: { port: number; version: string };
  try {
    info = await ready;
  } catch (err) {
    child.kill("SIGKILL");
    if (ownDir) rmSync(storeDir, { recursive: true, force: true });
    throw err;
  }
  // Keep draining stderr so the child never blocks on a full pipe.
  child.stderr!.removeAllListeners("data");
  child.stderr!.resume();
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await waitForExit(child);
      clearTimeout(killer);
      if (ownDir) rmSync(storeDir, { recursive: true, force: true });
    })());
  return {
    url: `nats://127.0.0.1:${info.port}`,
    port: info.port,
    storeDir,
    pid: child.pid!,
    version: info.version,
    close,
    [Symbol.asyncDispose]: close,
  };
}
