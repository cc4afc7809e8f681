/**
 * The lambdactl command line: parsing one command's arguments against its
 * spec (node:util parseArgs, with our own checks so every message names the
 * flag and what it expected), help text made from the same spec, and the
 * flags several commands share.
 */
import { parseArgs } from "node:util";
import type { ArgSpec, CliContext, CommandSpec, FlagSpec, ParsedCommand } from "./command.js";
import { ConnectionEnvVars, LOCAL_CLUSTER_FILE, type ConnectionFlagValues } from "./connection.js";
import { GrpcSecurityEnvVars, resolveGrpcTarget, type GrpcApi, type GrpcSecurityFlagValues, type GrpcTarget } from "./grpc_target.js";
import { parseTime } from "./time.js";
import { formatSpan } from "./render.js";
import { parseDuration, parseFieldValues, parsePositiveInt, parseQuantile, parseRunNumberText, type ValueParse } from "./values.js";
import type { RunNumber } from "../core/ids.js";

/** A bad command line: lambdactl prints the message and the usage and exits 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
  /**
   * @param command the command whose usage to print, or undefined for the overview.
   */
  constructor(
    readonly command: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** gRPC calls give up after this long unless `--timeout` says otherwise. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Flags every command has. */
export const COMMON_FLAGS = {
  json: { type: "boolean", description: "print JSON instead of tables (times as ISO 8601 strings)" },
  help: { type: "boolean", short: "h", description: "print this help" },
} as const satisfies Record<string, FlagSpec>;

/** A duration as a flag's value is written, e.g. "10s", "2m", "1m30s" (parseDuration reads it back). */
export function durationText(ms: number): string {
  return formatSpan(ms).replace(/ /g, "");
}

/** The `--timeout` flag with its default in the help. */
export function timeoutFlagSpec(defaultMs: number): FlagSpec {
  return {
    type: "string",
    value: "<duration>",
    description: `give up on the serving node after this long: 500ms, 5s, 2m; a bare number is milliseconds (default ${durationText(defaultMs)})`,
  };
}

/** The flags of commands that call the serving node: where it is, how to trust it and prove who we are, and how long to wait for it. */
export const GRPC_FLAGS = {
  grpc: { type: "string", value: "<host:port>", description: `serving node gRPC address (else ${ConnectionEnvVars.grpc}, else ${LOCAL_CLUSTER_FILE})` },
  "tls-ca": { type: "string", value: "<file>", description: `CA certificate (PEM) that signed the serving node's: use TLS (else ${GrpcSecurityEnvVars.tlsCa}, else the file's)` },
  cert: { type: "string", value: "<file>", description: `client certificate (PEM) for mutual TLS, with --key (else ${GrpcSecurityEnvVars.cert})` },
  key: { type: "string", value: "<file>", description: `private key (PEM) of --cert (else ${GrpcSecurityEnvVars.key})` },
  "tls-server-name": { type: "string", value: "<name>", description: "name the serving node's certificate must carry, when it is not the address's host" },
  token: { type: "string", value: "<token>", description: `bearer token to send (prefer --token-file: a flag shows in the process list) (else ${GrpcSecurityEnvVars.token})` },
  "token-file": { type: "string", value: "<file>", description: `file holding the bearer token (else ${GrpcSecurityEnvVars.tokenFile}, else the file's)` },
  timeout: timeoutFlagSpec(DEFAULT_TIMEOUT_MS),
} as const satisfies Record<string, FlagSpec>;

/** The flags of commands that call the admin API: GRPC_FLAGS, and its own address; the token is the admin token. */
export const ADMIN_GRPC_FLAGS = {
  ...GRPC_FLAGS,
  "admin-grpc": { type: "string", value: "<host:port>", description: `admin API address when it listens apart (else ${GrpcSecurityEnvVars.adminGrpc}, the file's, or --grpc)` },
  token: { type: "string", value: "<token>", description: `admin bearer token to send (prefer --token-file) (else ${GrpcSecurityEnvVars.adminToken}, ${GrpcSecurityEnvVars.token})` },
  "token-file": { type: "string", value: "<file>", description: `file holding the admin token (else ${GrpcSecurityEnvVars.adminTokenFile}, ${GrpcSecurityEnvVars.tokenFile}, else the file's)` },
} as const satisfies Record<string, FlagSpec>;

/** The flags that say where and how to publish to NATS. */
export const NATS_FLAGS = {
  "nats-url": { type: "string", value: "<url>", description: `NATS server URL (else ${ConnectionEnvVars.natsUrl}, else ${LOCAL_CLUSTER_FILE})` },
  prefix: { type: "string", value: "<name>", description: `subject/stream prefix of the cluster (else ${ConnectionEnvVars.prefix}, the file, "lambda")` },
  partitions: { type: "string", value: "<n>", description: `stream partitions of the cluster (else ${ConnectionEnvVars.partitions}, the file, 8)` },
  catalog: { type: "string", value: "<path>", description: `catalog file (else ${ConnectionEnvVars.catalog}, the file, catalog/catalog.json)` },
} as const satisfies Record<string, FlagSpec>;

/** The connection flags given on a parsed command line. */
export function connectionFlags(parsed: ParsedCommand): ConnectionFlagValues {
  return {
    grpc: stringFlag(parsed, "grpc"),
    natsUrl: stringFlag(parsed, "nats-url"),
    prefix: stringFlag(parsed, "prefix"),
    partitions: stringFlag(parsed, "partitions"),
    catalog: stringFlag(parsed, "catalog"),
  };
}

/** The gRPC security flags given on a parsed command line. */
export function grpcSecurityFlags(parsed: ParsedCommand): GrpcSecurityFlagValues {
  return {
    adminGrpc: stringFlag(parsed, "admin-grpc"),
    tlsCa: stringFlag(parsed, "tls-ca"),
    tlsServerName: stringFlag(parsed, "tls-server-name"),
    cert: stringFlag(parsed, "cert"),
    key: stringFlag(parsed, "key"),
    token: stringFlag(parsed, "token"),
    tokenFile: stringFlag(parsed, "token-file"),
  };
}

/**
 * Where and how a command calls `api`: flags, then the environment, then the local cluster file (grpc_target.ts).
 * @throws NotConfiguredError, ConfigError, LocalClusterFileError, StaleLocalClusterFileError
 */
export function grpcTarget(parsed: ParsedCommand, ctx: Pick<CliContext, "env" | "cwd">, api: GrpcApi): GrpcTarget {
  return resolveGrpcTarget({ flags: connectionFlags(parsed), security: grpcSecurityFlags(parsed), env: ctx.env, cwd: ctx.cwd }, api);
}

/**
 * A time flag's value in epoch ms (see src/cli/time.ts for the forms).
 * @param fallback text used when the flag is absent; undefined makes the flag required.
 * @throws UsageError naming the flag and why its value is not a time.
 */
export function timeFlag(command: string, parsed: ParsedCommand, name: string, nowMs: number, fallback?: string): number {
  const raw = stringFlag(parsed, name) ?? fallback;
  if (raw === undefined) throw new UsageError(command, `missing flag --${name} <time>`);
  const t = parseTime(raw, nowMs);
  if (t.kind === "invalid") throw new UsageError(command, `--${name}: ${t.reason}`);
  return t.ms;
}

function valueOf<T>(command: string, name: string, r: ValueParse<T>): T {
  if (r.kind === "invalid") throw new UsageError(command, `${flagLabel(name)}: ${r.reason}`);
  return r.value;
}

/**
 * The `field=value` pairs of a repeatable flag (`--group`, `--where`) as a map; empty when absent.
 * @throws UsageError naming the flag and the word that is not a pair, or the field given twice.
 */
export function fieldValuesFlag(command: string, parsed: ParsedCommand, name: string): Record<string, string> {
  return valueOf(command, name, parseFieldValues(listFlag(parsed, name)));
}

/**
 * The `--quantile` value, or 0 (the API's "not given": the median) when absent.
 * @throws UsageError when it is not in (0, 1].
 */
export function quantileFlag(command: string, parsed: ParsedCommand, name: string): number {
  const raw = stringFlag(parsed, name);
  return raw === undefined ? 0 : valueOf(command, name, parseQuantile(raw));
}

/**
 * A positive integer flag, or `fallback` when absent.
 * @throws UsageError when it is not a positive integer.
 */
export function positiveIntFlag(command: string, parsed: ParsedCommand, name: string, fallback: number): number {
  const raw = stringFlag(parsed, name);
  return raw === undefined ? fallback : valueOf(command, name, parsePositiveInt(raw));
}

/**
 * A run number argument (`diff 2 3`, `rollback 2`), or undefined when an optional one is absent.
 * @throws UsageError naming the argument when it is not a positive integer.
 */
export function runArg(command: string, parsed: ParsedCommand, name: string): RunNumber | undefined {
  const raw = parsed.args[name];
  if (raw === undefined) return undefined;
  const r = parseRunNumberText(raw);
  if (r.kind === "invalid") throw new UsageError(command, `<${name}>: ${r.reason}`);
  return r.value;
}

/**
 * A run number argument the parser has already checked is present.
 * @throws UsageError naming the argument when it is not a positive integer.
 */
export function requiredRunArg(command: string, parsed: ParsedCommand, name: string): RunNumber {
  const run = runArg(command, parsed, name);
  if (run === undefined) throw new UsageError(command, `missing argument <${name}>`);
  return run;
}

/**
 * The `--from` and `--to` flags as epoch ms; `--to` defaults to now.
 * @throws UsageError when either is missing or not a time, or from is not before to.
 */
export function rangeFlags(command: string, parsed: ParsedCommand, nowMs: number): { readonly fromMs: number; readonly toMs: number } {
  const fromMs = timeFlag(command, parsed, "from", nowMs);
  const toMs = timeFlag(command, parsed, "to", nowMs, "now");
  if (fromMs >= toMs) {
    throw new UsageError(command, `--from must be before --to (from ${new Date(fromMs).toISOString()}, to ${new Date(toMs).toISOString()})`);
  }
  return { fromMs, toMs };
}

/** The `--from`/`--to` flags of commands that ask about a time range. */
export const RANGE_FLAGS = {
  from: { type: "string", value: "<time>", description: "inclusive start: windows starting at or after it count (required)" },
  to: { type: "string", value: "<time>", description: "exclusive end: windows starting before it count (default now)" },
} as const satisfies Record<string, FlagSpec>;

/** The flags that pick what to compute of a metric. */
export const AGGREGATE_FLAGS = {
  aggregate: { type: "string", value: "<name>", description: "which aggregate of the metric (default: the first one declared; see `lambdactl metrics <metric>`)" },
  quantile: { type: "string", value: "<q>", description: "for a quantiles aggregate: the quantile, 0 < q <= 1 (default 0.5, the median)" },
} as const satisfies Record<string, FlagSpec>;

/** The flag that makes a query fail rather than answer without a partition's speed part. */
export const STRICT_FLAGS = {
  strict: { type: "boolean", description: "fail (UNAVAILABLE) when a partition's speed part is missing or behind, instead of a partial answer marked PARTIAL" },
} as const satisfies Record<string, FlagSpec>;

/** True when `argv` asks for help (before any `--`), whatever else it holds. */
export function wantsHelp(argv: readonly string[]): boolean {
  return flagWords(argv).some((a) => a === "--help" || a === "-h");
}

/** The words of `argv` before any `--` (after it, everything is a positional). */
function flagWords(argv: readonly string[]): readonly string[] {
  const end = argv.indexOf("--");
  return end === -1 ? argv : argv.slice(0, end);
}

/** True when `argv` asks for JSON output (`--json` before any `--`), even on a command line that does not parse. */
export function wantsJson(argv: readonly string[]): boolean {
  return flagWords(argv).includes("--json");
}

/** How a flag is written on the command line: `-k` for a one-letter name, `--from` otherwise. */
export function flagLabel(name: string): string {
  return name.length === 1 ? `-${name}` : `--${name}`;
}

function argLabel(a: ArgSpec): string {
  if (a.choices?.length === 1) return a.choices[0]!;
  return a.choices ? `{${a.choices.join("|")}}` : `<${a.name}>`;
}

/**
 * Parses `argv` (the words after the command name) against `spec`.
 * A string flag takes the next word as its value even when it starts with a dash,
 * so `--from -15m` works as well as `--from=-15m`.
 * @throws UsageError naming the unknown flag, the flag missing its value, the missing,
 *   extra or not allowed argument.
 */
export function parseCommandLine(spec: CommandSpec, argv: readonly string[]): ParsedCommand {
  const options = Object.fromEntries(
    Object.entries(spec.flags).map(([name, f]) => [name, { type: f.type, ...(f.short === undefined ? {} : { short: f.short }), ...(f.multiple ? { multiple: true } : {}) }]),
  );
  // strict: false, then our own checks over the tokens: parseArgs' strict messages
  // refuse `--from -15m` and do not say which flags exist.
  const { values, positionals, tokens } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: false, tokens: true });
  for (const t of tokens) {
    if (t.kind !== "option") continue;
    const f = spec.flags[t.name];
    if (f === undefined) {
      throw new UsageError(spec.name, `unknown flag ${t.rawName}; ${spec.name} takes ${Object.keys(spec.flags).map(flagLabel).join(", ")}`);
    }
    if (f.type === "string" && (t.value === undefined || (!t.inlineValue && t.value.startsWith("--")))) {
      throw new UsageError(spec.name, `flag ${t.rawName} needs a value ${f.value ?? ""}`.trimEnd());
    }
    if (f.type === "boolean" && t.value !== undefined) throw new UsageError(spec.name, `flag ${t.rawName} takes no value`);
  }
  const args: Record<string, string> = {};
  const listArgs: Record<string, readonly string[]> = {};
  for (const [i, a] of spec.args.entries()) {
    if (a.variadic) {
      listArgs[a.name] = positionals.slice(i);
      return { flags: values, args, listArgs };
    }
    const v = positionals[i];
    if (v === undefined) {
      if (a.optional) break;
      const allowed = a.choices ? `; expected ${a.choices.join(" or ")}` : "";
      throw new UsageError(spec.name, `missing argument ${argLabel(a)} (${a.description})${allowed}`);
    }
    if (a.choices && !a.choices.includes(v)) {
      throw new UsageError(spec.name, `unknown ${a.name} ${JSON.stringify(v)}; expected ${a.choices.join(" or ")}`);
    }
    args[a.name] = v;
  }
  if (positionals.length > spec.args.length) {
    throw new UsageError(spec.name, `unexpected argument ${JSON.stringify(positionals[spec.args.length])}; ${spec.name} takes ${spec.args.length} (${spec.args.map(argLabel).join(" ")})`);
  }
  return { flags: values, args, listArgs };
}

/** A string flag's value, or undefined when absent. */
export function stringFlag(parsed: ParsedCommand, name: string): string | undefined {
  const v = parsed.flags[name];
  return typeof v === "string" ? v : undefined;
}

/** Every value of a `multiple` string flag, in order; empty when absent. */
export function listFlag(parsed: ParsedCommand, name: string): readonly string[] {
  const v = parsed.flags[name];
  if (Array.isArray(v)) return v as readonly string[];
  return typeof v === "string" ? [v] : [];
}

/** The words of a variadic argument; empty when none were given. */
export function listArg(parsed: ParsedCommand, name: string): readonly string[] {
  return parsed.listArgs[name] ?? [];
}

/** A boolean flag: true when given. */
export function booleanFlag(parsed: ParsedCommand, name: string): boolean {
  return parsed.flags[name] === true;
}

/** A positional argument the parser has already checked is present. */
export function requiredArg(parsed: ParsedCommand, name: string): string {
  const v = parsed.args[name];
  if (v === undefined) throw new UsageError(undefined, `missing argument <${name}>`);
  return v;
}

/**
 * A duration flag's value in ms (`5s`, `500ms`, `2m`; a bare number is ms), or `fallback` when absent.
 * @throws UsageError naming the flag when it is not a positive duration.
 */
export function durationFlag(command: string, parsed: ParsedCommand, name: string, fallback: number): number {
  const raw = stringFlag(parsed, name);
  return raw === undefined ? fallback : valueOf(command, name, parseDuration(raw));
}

/**
 * The `--timeout` value in ms, or `fallback` when absent.
 * @throws UsageError when it is not a positive duration.
 */
export function timeoutMs(command: string, parsed: ParsedCommand, fallback: number = DEFAULT_TIMEOUT_MS): number {
  return durationFlag(command, parsed, "timeout", fallback);
}

function synopsis(spec: CommandSpec): string {
  const args = spec.args.map((a) => (a.variadic ? `[${a.name}...]` : a.optional ? `[${a.name}]` : argLabel(a)));
  return `lambdactl ${spec.name} ${args.join(" ")} [flags]`.replace(/ +/g, " ");
}

/**
 * The help of one command: synopsis, subcommands, arguments, flags, notes.
 * @param subcommands the specs of the command's subcommands (listed with their summaries).
 */
export function formatCommandHelp(spec: CommandSpec, subcommands: readonly CommandSpec[] = []): string {
  const rows: string[] = [`usage: ${synopsis(spec)}`];
  for (const sub of subcommands) rows.push(`       ${synopsis(sub)}`);
  rows.push("", `${spec.name}: ${spec.summary}`);
  if (subcommands.length > 0) {
    rows.push("", "subcommands (the word comes right after the command; each has its own --help):");
    const w = Math.max(...subcommands.map((c) => c.name.length));
    for (const c of subcommands) rows.push(`  ${c.name.padEnd(w)}  ${c.summary}`);
  }
  if (spec.args.length > 0) {
    rows.push("", "arguments:");
    const label = (a: ArgSpec) => (a.choices ? a.choices.join("|") : a.name);
    const w = Math.max(...spec.args.map((a) => label(a).length));
    for (const a of spec.args) rows.push(`  ${label(a).padEnd(w)}  ${a.description}`);
  }
  const flags = Object.entries(spec.flags).map(([n, f]) => [`${f.short ? `-${f.short}, ` : ""}${flagLabel(n)}${f.value ? ` ${f.value}` : ""}`, f.description] as const);
  rows.push("", "flags:");
  const w = Math.max(...flags.map(([l]) => l.length));
  for (const [l, d] of flags) rows.push(`  ${l.padEnd(w)}  ${d}`);
  if (spec.notes) rows.push("", spec.notes);
  return rows.join("\n") + "\n";
}
