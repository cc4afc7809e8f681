#!/usr/bin/env node
/**
 * `lambdactl`: the operator CLI of the Lambda runtime. It finds the command,
 * parses its arguments, runs it, and turns what went wrong into a message and
 * an exit code (0 done, 1 failed or refused something, 2 bad command line or
 * connection settings, or a run number the serving node refused); with
 * `--json` the failure is printed as JSON (./failure.ts). The commands live in
 * ./commands; this file is the only one that touches `process` (including the
 * Ctrl-C handler a command may ask for).
 */
import { formatCommandHelp, parseCommandLine, UsageError, wantsHelp, wantsJson } from "./args.js";
import { ExitCodes, type CliContext, type Command, type ExitCode } from "./command.js";
import { catalogCommand } from "./commands/catalog.js";
import { ingestCommand } from "./commands/ingest.js";
import { metricsCommand } from "./commands/metrics.js";
import { natsUsersCommand } from "./commands/nats_users.js";
import { queryCommand } from "./commands/query.js";
import { runCommand } from "./commands/run.js";
import { statusCommand } from "./commands/status.js";
import { topCommand } from "./commands/top.js";
import { watermarkCommand } from "./commands/watermark.js";
import { completionCommand } from "./completion.js";
import { ConnectionEnvVars, LOCAL_CLUSTER_FILE } from "./connection.js";
import { describeFailure, failureJson } from "./failure.js";
import { TIME_FORMS } from "./time.js";
import { DURATION_FORMS } from "./values.js";
import { packageVersion } from "./version.js";

const COMMANDS: ReadonlyMap<string, Command> = new Map(
  [
    queryCommand,
    topCommand,
    metricsCommand,
    watermarkCommand,
    statusCommand,
    runCommand,
    ingestCommand,
    catalogCommand,
    natsUsersCommand,
    completionCommand(() => [...COMMANDS.values()]),
  ].map((c) => [c.spec.name, c]),
);

/** Every command and subcommand by its whole name ("watermark history"), in overview order. */
const ALL_COMMANDS: ReadonlyMap<string, Command> = new Map(
  [...COMMANDS.values()].flatMap((c) => [c, ...(c.subcommands ?? [])]).map((c) => [c.spec.name, c]),
);

/** How a command is written in the overview: `catalog validate` for a command whose first argument is a fixed word. */
function usageName(c: Command): string {
  const first = c.spec.args[0]?.choices;
  return first?.length === 1 ? `${c.spec.name} ${first[0]}` : c.spec.name;
}

function overview(): string {
  const w = Math.max(...[...ALL_COMMANDS.values()].map((c) => usageName(c).length));
  return [
    "usage: lambdactl <command> [subcommand] [arguments] [flags]",
    "",
    "The operator CLI of the Lambda runtime.",
    "",
    "commands:",
    ...[...ALL_COMMANDS.values()].map((c) => `  ${usageName(c).padEnd(w)}  ${c.spec.summary}`),
    "",
    "connection (the first one set wins):",
    `  query, top, metrics,            --grpc, then ${ConnectionEnvVars.grpc}, then ${LOCAL_CLUSTER_FILE}`,
    `  watermark, status, run`,
    `  ingest, catalog apply|show      --nats-url --prefix --partitions --catalog, then`,
    `                                  ${Object.values(ConnectionEnvVars).slice(1).join(" ")}, then ${LOCAL_CLUSTER_FILE},`,
    `                                  then the defaults (prefix lambda, 8 partitions, catalog/catalog.json)`,
    `  catalog validate                nothing: it reads the file on this machine`,
    `  gRPC TLS and tokens             --tls-ca, --cert/--key, --token/--token-file (admin commands: the admin`,
    `                                  token, and --admin-grpc when the admin API listens apart), then LAMBDA_GRPC_*`,
    `                                  variables, then ${LOCAL_CLUSTER_FILE} (only for its own address); docs/security.md`,
    `  ingest validates with the catalog the cluster runs (--catalog only while it has stored none).`,
    `  The local cluster (npm start) writes ${LOCAL_CLUSTER_FILE} in the directory it runs in.`,
    "",
    `times (--from, --to): ${TIME_FORMS}.`,
    `durations (--timeout): ${DURATION_FORMS}.`,
    "keys: `query <metric> a-1 a-2` for a one-field metric; `--group field=value` (repeatable) for any",
    "metric, and the only way for several group-by fields; nothing for a global metric.",
    "runs: numbers from `lambdactl watermark history`, e.g. `lambdactl watermark diff 3 4`.",
    "",
    "exit status: 0 done, 1 failed or refused something (a gRPC error, a seam that is not exact),",
    "2 bad command line or connection settings, or a run the serving node does not know or take.",
    'With --json a failure is printed on stdout as {"error": {"code": ..., "message": ...}}, same exit status.',
    "Run `lambdactl <command> --help` for the arguments and flags of a command; `lambdactl --version`",
    "for the version; `lambdactl completion bash|zsh` for shell completion.",
    "",
  ].join("\n");
}

/** The help of a command or subcommand by its whole name, or the overview. */
function helpOf(command: string | undefined): string {
  const c = command === undefined ? undefined : ALL_COMMANDS.get(command);
  return c ? formatCommandHelp(c.spec, (c.subcommands ?? []).map((s) => s.spec)) : overview();
}

/**
 * The command `argv` names and the words after it: a subcommand when the word
 * after the command is one of its subcommands.
 * @throws UsageError for an unknown command, or an unknown subcommand of a command that takes no arguments.
 */
function findCommand(argv: readonly string[]): { readonly command: Command; readonly rest: readonly string[] } {
  const [name, ...rest] = argv;
  if (name === undefined) throw new UsageError(undefined, "missing command");
  if (name.startsWith("-")) throw new UsageError(undefined, `unknown flag ${name} before the command; flags go after it (lambdactl <command> [flags])`);
  const command = COMMANDS.get(name);
  if (!command) throw new UsageError(undefined, `unknown command ${JSON.stringify(name)}; commands: ${[...COMMANDS.keys()].join(", ")}`);
  const subs = command.subcommands ?? [];
  const word = rest[0];
  if (subs.length === 0 || word === undefined || word.startsWith("-")) return { command, rest };
  const sub = subs.find((s) => s.spec.name === `${name} ${word}`);
  if (sub) return { command: sub, rest: rest.slice(1) };
  if (command.spec.args.length === 0) {
    const words = subs.map((s) => s.spec.name.slice(name.length + 1));
    throw new UsageError(name, `unknown subcommand ${JSON.stringify(word)}; ${name} takes ${words.join(", ")}, or none`);
  }
  return { command, rest };
}

/** Runs one command line. @returns the exit code; never throws. */
async function runCli(argv: readonly string[], ctx: CliContext): Promise<ExitCode> {
  try {
    if (argv[0] === "--version" || argv[0] === "version") {
      const { name, version } = packageVersion();
      ctx.stdout.write(wantsJson(argv) ? JSON.stringify({ name, version }) + "\n" : `lambdactl ${version} (${name})\n`);
      return ExitCodes.ok;
    }
    if (argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
      ctx.stdout.write(helpOf(argv.length > 1 ? argv.slice(1).join(" ") : undefined));
      return ExitCodes.ok;
    }
    const { command, rest } = findCommand(argv);
    if (wantsHelp(rest)) {
      ctx.stdout.write(helpOf(command.spec.name));
      return ExitCodes.ok;
    }
    return await command.run(parseCommandLine(command.spec, rest), ctx);
  } catch (err) {
    return report(err, ctx, wantsJson(argv));
  }
}

/** Prints what went wrong (as JSON on stdout with `--json`, else a line on stderr) and picks the exit code. */
function report(err: unknown, ctx: CliContext, json: boolean): ExitCode {
  const f = describeFailure(err);
  if (json) ctx.stdout.write(JSON.stringify(failureJson(f)) + "\n");
  else ctx.stderr.write(`lambdactl${f.command ? ` ${f.command}` : ""}: ${f.message}\n${f.showUsage ? `\n${helpOf(f.command)}` : ""}`);
  return f.exitCode;
}

const ctx: CliContext = {
  stdout: process.stdout,
  stderr: process.stderr,
  // A getter: touching process.stdin opens it, which only `ingest` needs.
  get stdin() {
    return process.stdin;
  },
  env: process.env,
  cwd: process.cwd(),
  now: () => Date.now(),
  interrupted: (() => {
    let signal: AbortSignal | undefined;
    return () => {
      if (signal) return signal;
      const ac = new AbortController();
      const stop = () => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        ac.abort();
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
      return (signal = ac.signal);
    };
  })(),
};

void runCli(process.argv.slice(2), ctx).then((code) => {
  process.exitCode = code;
});
