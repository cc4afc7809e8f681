/**
 * `lambdactl run`: starts a batch run now and follows it: one line per phase
 * (barrier, archiver flush, recompute, publish) with the time since the
 * command started, then the new watermark. Ctrl-C detaches: only this client's
 * stream is cancelled, the run goes on on the coordinator.
 *
 * A run that fails prints why and exits 1.
 */
import { booleanFlag, COMMON_FLAGS, ADMIN_GRPC_FLAGS, timeoutMs, grpcTarget } from "../args.js";
import { createAdminClient } from "../admin_grpc.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ExitCode, type ParsedCommand } from "../command.js";
import { CommandFailedError, FailureCodes } from "../failure.js";
import { formatElapsed } from "../render.js";
import { renderWatermark, watermarkObjectJson, type WatermarkObjectJson } from "../watermark_view.js";

/** The phases a batch run reports, as the admin API names them. */
export const RunPhases = {
  /**
   * Before this run starts: the coordinator is busy with another run (or a rollback);
   * `detail` names it, e.g. `{"busyWith":5,"busyPhase":"recompute"}`. Repeated at each of its phase changes.
   */
  queued: "queued",
  barrier: "barrier",
  archiverFlush: "archiver_flush",
  recompute: "recompute",
  publish: "publish",
  /** The run published; the last message, which carries the watermark, has this phase. */
  done: "done",
  /** The last message of a failed run; `detail` says why. */
  failed: "failed",
} as const;
export type RunPhase = (typeof RunPhases)[keyof typeof RunPhases];

/** What `run --json` prints when Ctrl-C detaches (not a phase of the run). */
export const DETACHED = "detached";

const spec: CommandSpec = {
  name: "run",
  summary: "run a batch now: follow its phases, then show the new watermark (Ctrl-C detaches)",
  args: [],
  flags: { ...ADMIN_GRPC_FLAGS, ...COMMON_FLAGS },
  notes: [
    "Each phase prints as the coordinator reports it, with the time since the command started.",
    "Ctrl-C detaches: the run continues on the coordinator (see `lambdactl watermark history`).",
    "If a run is in progress, this one starts after it: it says so (queued, with the run it waits",
    "for and that run's phase) and waits. --timeout bounds only the wait to connect.",
    "--json prints one JSON object per line: each phase, the last with the watermark.",
    "",
    "exit status: 0 published (or detached), 1 the run failed.",
  ].join("\n"),
};

/** The stable JSON shape of each line of `run --json`. */
export interface RunProgressJson {
  /** The run's number; 0 when the coordinator had not named it yet (a "detached" line, or a run that failed to start). */
  readonly run: number;
  /** One of {@link RunPhases}, or {@link DETACHED}. */
  readonly phase: string;
  readonly detail: string;
  /** Milliseconds since the command started. */
  readonly elapsedMs: number;
  /** The new watermark, on the last line (phase "done"; an earlier "done" progress line has none); null otherwise. */
  readonly watermark: WatermarkObjectJson | null;
}

/** A phase name as a person reads it ("archiver_flush" → "archiver flush"). */
export function phaseLabel(phase: string): string {
  return phase.replaceAll("_", " ");
}

/** Width of the phase column of progress lines: the longest phase label. */
const PHASE_WIDTH = Math.max(...Object.values(RunPhases).map((p) => phaseLabel(p).length));

/**
 * A progress detail as a person reads it. The coordinator sends a JSON object
 * (e.g. `{"run":3,"step":"article_views","done":1,"total":12}`); it becomes
 * `step=article_views done=1 total=12` (the run is on the line already).
 * Anything else is shown as it came.
 */
export function detailText(detail: string): string {
  let v: unknown;
  try {
    v = JSON.parse(detail);
  } catch {
    return detail; // not JSON: plain text from the server
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return detail;
  return Object.entries(v)
    .filter(([k]) => k !== "run")
    .map(([k, x]) => `${k}=${Array.isArray(x) ? x.join(",") : typeof x === "object" && x !== null ? JSON.stringify(x) : String(x)}`)
    .join(" ");
}

/** A queued run's detail as a person reads it: what it waits for. */
export function queuedText(detail: string): string {
  let v: { busyWith?: unknown; busyPhase?: unknown };
  try {
    v = JSON.parse(detail) as typeof v;
  } catch {
    return detail; // not JSON: plain text from the server
  }
  const phase = typeof v?.busyPhase === "string" ? v.busyPhase : "";
  if (phase === "rollback") return `the coordinator is busy rolling the watermark back to run ${String(v.busyWith)}; waiting`;
  const which = typeof v?.busyWith === "number" && v.busyWith > 0 ? `run ${v.busyWith}` : "another run";
  return `the coordinator is busy with ${which}${phase ? ` (${phaseLabel(phase)})` : ""}; waiting for it to finish`;
}

/**
 * One progress line: elapsed time since the start, run, phase, detail.
 * @param run the run's number, undefined while the coordinator has not named it.
 */
export function progressLine(run: number | undefined, phase: string, detail: string, elapsedMs: number): string {
  const d = phase === RunPhases.queued ? queuedText(detail) : detailText(detail);
  return `${formatElapsed(elapsedMs).padStart(7)}  run ${run ?? "?"}  ${phaseLabel(phase).padEnd(PHASE_WIDTH)}${d ? `  ${d}` : ""}`.trimEnd() + "\n";
}

/** In a terminal: moves up over the last line and clears it, so a phase's line is rewritten in place. */
const REWRITE_LAST_LINE = "\x1b[1A\r\x1b[2K";

/** The message printed when Ctrl-C detaches. */
export function detachedLine(run: number | undefined): string {
  return run === undefined
    ? "detached before the coordinator named the run; it continues on the coordinator (see `lambdactl watermark history`)\n"
    : `detached; run ${run} continues on the coordinator\n`;
}

async function run(parsed: ParsedCommand, ctx: CliContext): Promise<ExitCode> {
  const json = booleanFlag(parsed, "json");
  const target = grpcTarget(parsed, ctx, "admin");
  using client = createAdminClient(target, { timeoutMs: timeoutMs(spec.name, parsed) });
  const start = ctx.now();
  const detach = ctx.interrupted();
  const tty = ctx.stdout.isTTY === true;
  let current: number | undefined;
  let phase: string | undefined;
  let queuedDetail: string | undefined;
  for await (const m of client.runBatch(detach)) {
    // A "failed" message may come before the run had a number (run 0).
    if (m.run > 0) current = m.run;
    const now = ctx.now();
    if (json) {
      const line: RunProgressJson = { run: m.run, phase: m.phase, detail: m.detail, elapsedMs: now - start, watermark: m.watermark ? watermarkObjectJson(m.watermark, now) : null };
      ctx.stdout.write(JSON.stringify(line) + "\n");
    } else if (m.phase !== phase || tty) {
      // One line per phase; in a terminal, further news of the same phase rewrites its line.
      ctx.stdout.write((m.phase === phase ? REWRITE_LAST_LINE : "") + progressLine(current, m.phase, m.detail, now - start));
    } else if (m.phase === RunPhases.queued && m.detail !== queuedDetail) {
      // Not a terminal: a line per phase of the run this one waits for.
      ctx.stdout.write(progressLine(current, m.phase, m.detail, now - start));
    }
    if (m.phase === RunPhases.queued) queuedDetail = m.detail;
    phase = m.phase;
    if (m.phase === RunPhases.done && m.watermark) {
      if (!json) ctx.stdout.write(`\nrun ${m.watermark.run} published in ${formatElapsed(now - start)}; the watermark now:\n\n${renderWatermark(m.watermark, now)}`);
      return ExitCodes.ok;
    }
    if (m.phase === RunPhases.failed) {
      throw new CommandFailedError(FailureCodes.runFailed, `${current === undefined ? "the run" : `run ${current}`} failed: ${m.detail || "no reason given"}`, { run: current ?? 0 });
    }
  }
  if (detach.aborted) {
    const line: RunProgressJson = { run: current ?? 0, phase: DETACHED, detail: "", elapsedMs: ctx.now() - start, watermark: null };
    ctx.stdout.write(json ? JSON.stringify(line) + "\n" : detachedLine(current));
    return ExitCodes.ok;
  }
  const which = current === undefined ? "the run" : `run ${current}`;
  throw new CommandFailedError(FailureCodes.streamEnded, `the serving node ended the stream before ${which} finished; see \`lambdactl watermark history\` for how it ended`);
}

/** `lambdactl run`. */
export const runCommand: Command = { spec, run };
