/**
 * The contract between the lambdactl entry and its commands: what a command
 * declares (its arguments and flags, from which the parser and the help text
 * are both made), what it is given (the process's I/O, passed in), and the
 * exit codes it may return.
 */
import type { Env } from "./connection.js";

/** Exit codes of lambdactl. */
export const ExitCodes = {
  /** Done, nothing refused. */
  ok: 0,
  /** The command ran but failed or refused something (gRPC error, refused events, no connection, a seam that is not exact). */
  failure: 1,
  /**
   * Bad command line: unknown command or flag, missing argument, unparsable value; also a
   * run number the serving node refused (unknown run, past the current one, rollback refused).
   */
  usage: 2,
} as const;
export type ExitCode = (typeof ExitCodes)[keyof typeof ExitCodes];

/** One flag of a command. */
export interface FlagSpec {
  /**
   * A `string` flag takes a value (`--from -15m` or `--from=-15m`); a `boolean` flag takes none.
   * A one-letter flag name is written with one dash (`-k 5`).
   */
  readonly type: "string" | "boolean";
  /** A string flag that may be given several times; its values are kept in order. @default false */
  readonly multiple?: boolean;
  /** One-letter alias, e.g. "h" for `-h`. */
  readonly short?: string;
  /** Placeholder of the value in the help, e.g. "<time>". */
  readonly value?: string;
  /** One line for the help. */
  readonly description: string;
}

/** One positional argument of a command. */
export interface ArgSpec {
  readonly name: string;
  /** May be left out (only the last ones). @default false */
  readonly optional?: boolean;
  /** Takes every remaining positional, zero or more (only the last argument). @default false */
  readonly variadic?: boolean;
  /**
   * The only words allowed, e.g. a subcommand (`catalog validate`); the synopsis
   * shows a single choice as the literal word.
   */
  readonly choices?: readonly string[];
  readonly description: string;
}

/** What a command accepts; the parser and the help are made from it. */
export interface CommandSpec {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  readonly args: readonly ArgSpec[];
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** Extra help paragraphs (accepted forms, examples). */
  readonly notes?: string;
}

/** A parsed command line: flag values by flag name, positionals by argument name. */
export interface ParsedCommand {
  /** A `multiple` flag's values are a list (absent when never given). */
  readonly flags: Readonly<Record<string, string | boolean | readonly string[] | undefined>>;
  readonly args: Readonly<Record<string, string | undefined>>;
  /** The words of `variadic` arguments, by argument name (an empty list when none were given). */
  readonly listArgs: Readonly<Record<string, readonly string[]>>;
}

/** A writable text stream (process.stdout in the entry). */
export interface TextOut {
  write(text: string): unknown;
  /** True for an interactive terminal (where a command may clear and redraw); absent or false for a pipe or file. */
  readonly isTTY?: boolean;
}

/** The process around a command, passed in so that nothing below the entry touches globals. */
export interface CliContext {
  readonly stdout: TextOut;
  readonly stderr: TextOut;
  /** Input for `ingest -`; `isTTY` tells an interactive terminal from a pipe. */
  readonly stdin: NodeJS.ReadableStream & { readonly isTTY?: boolean };
  readonly env: Env;
  /** The current directory (where `.lambda/local-cluster.json` is looked for). */
  readonly cwd: string;
  /** The time now, epoch ms. */
  now(): number;
  /**
   * A signal that aborts on Ctrl-C (SIGINT) or SIGTERM. Only a command that
   * calls this takes those signals over (to stop watching, or to detach from a
   * run and exit 0); for every other command they end the process as usual.
   * A second Ctrl-C ends the process.
   */
  interrupted(): AbortSignal;
}

/** A lambdactl command: its spec and what it does with a parsed command line. */
export interface Command {
  /** For a subcommand, `name` is the whole path, e.g. "watermark history". */
  readonly spec: CommandSpec;
  /**
   * Commands reached by a word right after this one's name (`watermark history`).
   * The word must come first: `lambdactl watermark history --limit 5`.
   */
  readonly subcommands?: readonly Command[];
  /**
   * Runs the command.
   * @returns the exit code.
   * @throws UsageError for a bad value the parser could not see (e.g. an unparsable time);
   *   anything else is reported by the entry as a failure.
   */
  run(parsed: ParsedCommand, ctx: CliContext): Promise<ExitCode>;
}
