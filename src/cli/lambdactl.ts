#!/usr/bin/env node
/**
 * `lambdactl`: the operator CLI of the Lambda runtime. It finds the command,
 * parses its arguments, runs it, and turns what went wrong into a message and
 * an exit code (0 done, 1 failed or refused something, 2 bad command line or
 * connection settings). The commands live in ./commands; this file is the
 * only one that touches `process`.
 */
import { ConfigError, ensureError } from "../core/errors.js";
import { formatCommandHelp, parseCommandLine, UsageError, wantsHelp } from "./args.js";
import { ExitCodes, type CliContext, type Command, type ExitCode } from "./command.js";
import { catalogCommand } from "./commands/catalog.js";
import { ingestCommand } from "./commands/ingest.js";
import { metricsCommand } from "./commands/metrics.js";
import { queryCommand } from "./commands/query.js";
import { topCommand } from "./commands/top.js";
import { watermarkCommand } from "./commands/watermark.js";
import { ConnectionEnvVars, LOCAL_CLUSTER_FILE, LocalClusterFileError, NotConfiguredError } from "./connection.js";
import { GrpcCallError } from "./grpc.js";
import { TIME_FORMS } from "./time.js";

const COMMANDS: ReadonlyMap<string, Command> = new Map(
  [queryCommand, topCommand, metricsCommand, watermarkCommand, ingestCommand, catalogCommand].map((c) => [c.spec.name, c]),
);

/** How a command is written in the overview: `catalog validate` for a command whose first argument is a fixed word. */
function usageName(c: Command): string {
  const first = c.spec.args[0]?.choices;
  return first?.length === 1 ? `${c.spec.name} ${first[0]}` : c.spec.name;
}

function overview(): string {
  const w = Math.max(...[...COMMANDS.values()].map((c) => usageName(c).length));
  return [
    "usage: lambdactl <command> [arguments] [flags]",
    "",
    "The operator CLI of the Lambda runtime.",
    "",
    "commands:",
    ...[...COMMANDS.values()].map((c) => `  ${usageName(c).padEnd(w)}  ${c.spec.summary}`),
    "",
    "connection (the first one set wins):",
    `  query, top, metrics, watermark  --grpc, then ${ConnectionEnvVars.grpc}, then ${LOCAL_CLUSTER_FILE}`,
    `  ingest                          --nats-url --prefix --partitions --catalog, then`,
    `                                  ${Object.values(ConnectionEnvVars).slice(1).join(" ")}, then ${LOCAL_CLUSTER_FILE},`,
    `                                  then the defaults (prefix lambda, 8 partitions, catalog/catalog.json)`,
    `  catalog validate                nothing: it reads the file on this machine`,
    `  The local cluster (npm start) writes ${LOCAL_CLUSTER_FILE} in the directory it runs in.`,
    "",
    `times (--from, --to): ${TIME_FORMS}.`,
    "keys: `query <metric> a-1 a-2` for a one-field metric; `--group field=value` (repeatable) for any",
    "metric, and the only way for several group-by fields; nothing for a global metric.",
    "",
    "exit status: 0 done, 1 failed or refused something, 2 bad command line or connection settings.",
    "Run `lambdactl <command> --help` for the arguments and flags of a command.",
    "",
  ].join("\n");
}

function helpOf(command: string | undefined): string {
  const c = command === undefined ? undefined : COMMANDS.get(command);
  return c ? formatCommandHelp(c.spec) : overview();
}

/** Runs one command line. @returns the exit code; never throws. */
async function runCli(argv: readonly string[], ctx: CliContext): Promise<ExitCode> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined) throw new UsageError(undefined, "missing command");
    if (name === "--help" || name === "-h" || name === "help") {
      ctx.stdout.write(helpOf(rest[0]));
      return ExitCodes.ok;
    }
    if (name.startsWith("-")) throw new UsageError(undefined, `unknown flag ${name} before the command; flags go after it (lambdactl <command> [flags])`);
    const command = COMMANDS.get(name);
    if (!command) throw new UsageError(undefined, `unknown command ${JSON.stringify(name)}; commands: ${[...COMMANDS.keys()].join(", ")}`);
    if (wantsHelp(rest)) {
      ctx.stdout.write(helpOf(name));
      return ExitCodes.ok;
    }
    return await command.run(parseCommandLine(command.spec, rest), ctx);
  } catch (err) {
    return report(err, ctx);
  }
}

/** Prints what went wrong and picks the exit code. */
function report(err: unknown, ctx: CliContext): ExitCode {
  if (err instanceof UsageError) {
    ctx.stderr.write(`lambdactl${err.command ? ` ${err.command}` : ""}: ${err.message}\n\n${helpOf(err.command)}`);
    return ExitCodes.usage;
  }
  if (err instanceof NotConfiguredError || err instanceof ConfigError || err instanceof LocalClusterFileError) {
    ctx.stderr.write(`lambdactl: ${err.message}\n`);
    return ExitCodes.usage;
  }
  if (err instanceof GrpcCallError) {
    const where = err.unreachable ? ` (serving node ${err.target.value}, from ${err.target.from}${err.target.from === LOCAL_CLUSTER_FILE ? "; is `npm start` still running?" : ""})` : "";
    ctx.stderr.write(`lambdactl: ${err.codeName}: ${err.details}${where}\n`);
    return ExitCodes.failure;
  }
  ctx.stderr.write(`lambdactl: ${ensureError(err).message}\n`);
  return ExitCodes.failure;
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
};

void runCli(process.argv.slice(2), ctx).then((code) => {
  process.exitCode = code;
});
