/**
 * Request/reply between the bench and its helper processes over the Node IPC
 * channel: the parent calls `kind` with a body, the child answers once. A call
 * may take as long as the work it stands for (e.g. "wait until N events were
 * consumed"), which is how the bench waits for a child without sleeping.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { trackPid, untrackPid } from "../cleanup.js";

/** How long a call may take unless the caller says otherwise. */
export const CALL_TIMEOUT_MS = 300_000;

interface CallMsg {
  readonly id: number;
  readonly kind: string;
  readonly body: unknown;
}
type ReplyMsg = { readonly id: number; readonly ok: true; readonly value: unknown } | { readonly id: number; readonly ok: false; readonly error: string };

/** The parent's handle on a helper process. */
export interface BenchChild {
  readonly pid: number;
  call<T>(kind: string, body?: unknown, timeoutMs?: number): Promise<T>;
  /** Asks the child to exit and waits for it; kills it after a deadline. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Forks `dist/bench/children/<name>.js`.
 * @param env merged over this process's environment.
 */
export function forkBenchChild(name: string, opts: { env?: Readonly<Record<string, string>>; execArgv?: readonly string[] } = {}): BenchChild {
  const script = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  const child: ChildProcess = fork(script, [], {
    env: { ...process.env, ...opts.env },
    execArgv: ["--enable-source-maps", ...(opts.execArgv ?? [])],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  trackPid(child.pid!);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 1;
  const exited = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      for (const p of pending.values()) {
        clearTimeout(p.timer);
        p.reject(new Error(`bench child ${name} exited (${signal ?? code}) during a call`));
      }
      pending.clear();
      untrackPid(child.pid!);
      resolve();
    }),
  );
  child.on("message", (m: ReplyMsg) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.ok) p.resolve(m.value);
    else p.reject(new Error(`bench child ${name}: ${m.error}`));
  });
  let stopping: Promise<void> | undefined;
  return {
    pid: child.pid!,
    call<T>(kind: string, body: unknown = {}, timeoutMs = CALL_TIMEOUT_MS) {
      return new Promise<T>((resolve, reject) => {
        if (!child.connected) return reject(new Error(`bench child ${name} is gone`));
        const id = nextId++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`bench child ${name}: call ${kind} took more than ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
        child.send({ id, kind, body } satisfies CallMsg);
      });
    },
    stop() {
      return (stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        if (child.connected) child.send({ id: 0, kind: "exit", body: {} } satisfies CallMsg);
        const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(killer);
      })());
    },
  };
}

/** Answers one call; a throw is sent back as the call's error. */
export type Handler = (body: never) => Promise<unknown> | unknown;

/**
 * Child side: answers calls with `handlers[kind]`. The call "exit" runs
 * `onExit` and ends the process, as does losing the parent.
 */
export function serveParent(handlers: Record<string, Handler>, onExit: () => Promise<void> = async () => {}): void {
  const exit = () => {
    onExit().finally(() => process.exit(0));
  };
  process.on("disconnect", exit);
  process.on("message", (m: CallMsg) => {
    if (m.kind === "exit") return exit();
    const h = handlers[m.kind];
    const reply = (r: ReplyMsg) => process.send?.(r);
    if (!h) return reply({ id: m.id, ok: false, error: `unknown call ${m.kind}` });
    Promise.resolve()
      .then(() => h(m.body as never))
      .then(
        (value) => reply({ id: m.id, ok: true, value }),
        (err: unknown) => reply({ id: m.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
}
