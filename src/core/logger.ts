/**
 * The logger every component takes as a parameter: never a global. Calls are
 * `(message, fields)`; children carry fixed fields such as the component, the
 * partition, the generation and the run.
 *
 * A process writes one line per event on stderr, in one of two formats chosen
 * where the process starts ({@link createProcessLogger}):
 * - `json` (the default, and always when stderr is not a terminal): one JSON
 *   object per line, `{"t", "level", "msg", ...fields}`, for log collectors;
 * - `pretty` (stderr is a terminal): one short line per event for a person
 *   watching `npm start`: time, level, component, message, the other fields
 *   as key=value ({@link formatPrettyLine}).
 * Errors in fields are written with their name, message, stack, context fields
 * and cause, so a log line says what failed and why.
 */

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

export const LogLevels = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type LogLevel = keyof typeof LogLevels;

/** How log lines are written. */
export const LogFormats = {
  /** One JSON object per line. */
  json: "json",
  /** One short human-readable line per event. */
  pretty: "pretty",
} as const;
export type LogFormat = (typeof LogFormats)[keyof typeof LogFormats];

/** Where log lines go (process.stderr in a process). */
export interface LogSink {
  write(text: string): unknown;
}

/** One log event as the JSON format writes it. */
export interface LogRecord {
  /** ISO 8601. */
  readonly t: string;
  readonly level: Exclude<LogLevel, "silent">;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Lines below this level are dropped. @default "info" */
  readonly level?: LogLevel;
  /** Fields on every line (e.g. the node id). @default {} */
  readonly base?: LogFields;
  /** @default "json" */
  readonly format?: LogFormat;
  /** Colour the level in `pretty` lines (a terminal that shows ANSI colours). @default false */
  readonly color?: boolean;
  /** @default process.stderr */
  readonly sink?: LogSink;
  /** The time of a line, epoch ms. @default Date.now */
  readonly now?: () => number;
}

/** Errors nested deeper than this in `cause` are cut off (a cycle would never end). */
const MAX_CAUSE_DEPTH = 5;

/** An error as a log field: name, message, its own context fields (e.g. `partition`), stack and cause. */
export function errorFields(err: Error, depth = 0): LogFields {
  const own: LogFields = {};
  for (const [k, v] of Object.entries(err)) if (k !== "cause") own[k] = v instanceof Error ? errorFields(v, depth + 1) : v;
  const out: LogFields = { name: err.name, message: err.message, ...own, stack: err.stack };
  if (err.cause !== undefined && depth < MAX_CAUSE_DEPTH) out.cause = err.cause instanceof Error ? errorFields(err.cause, depth + 1) : err.cause;
  return out;
}

function serialise(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) out[k] = v instanceof Error ? errorFields(v) : v;
  return out;
}

/** Fields the pretty format shows in their own column, not as key=value. */
const COLUMN_FIELDS = new Set(["t", "level", "msg", "component"]);
/** A pretty value longer than this is cut, so a line stays short. */
const MAX_PRETTY_VALUE = 160;

const LEVEL_COLORS: Record<LogRecord["level"], string> = { debug: "\x1b[90m", info: "\x1b[36m", warn: "\x1b[33m", error: "\x1b[31m" };
const RESET = "\x1b[0m";

function prettyValue(v: unknown): string {
  let s: string;
  if (typeof v === "string") s = /^[^\s="]+$/.test(v) ? v : JSON.stringify(v);
  else if (v !== null && typeof v === "object" && typeof (v as { message?: unknown }).message === "string" && typeof (v as { name?: unknown }).name === "string") {
    // A serialised error: its name and message; the stack stays in the JSON format.
    const e = v as { name: string; message: string };
    s = JSON.stringify(`${e.name}: ${e.message}`);
  } else s = JSON.stringify(v) ?? String(v);
  return s.length > MAX_PRETTY_VALUE ? `${s.slice(0, MAX_PRETTY_VALUE - 1)}…` : s;
}

/**
 * One log event as one short line for a person: `14:23:05.120 WARN  archiver  insert failed; retrying  partition=3 err="InsertError: ..."`.
 * The time is UTC, to the millisecond; the component (or `-`) has its own column.
 * @returns the line, without a newline.
 */
export function formatPrettyLine(r: LogRecord, opts: { readonly color?: boolean } = {}): string {
  const time = r.t.slice(11, 23);
  const level = r.level.toUpperCase().padEnd(5);
  const component = typeof r.component === "string" ? r.component : "-";
  const rest = Object.entries(r)
    .filter(([k, v]) => !COLUMN_FIELDS.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${prettyValue(v)}`);
  const shownLevel = opts.color ? `${LEVEL_COLORS[r.level]}${level}${RESET}` : level;
  return [`${time} ${shownLevel} ${component.padEnd(11)} ${r.msg}`, ...rest].join("  ");
}

/** A logger writing one line per event to `opts.sink` (stderr), as JSON or pretty lines. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const min = LogLevels[opts.level ?? "info"];
  const sink = opts.sink ?? process.stderr;
  const now = opts.now ?? Date.now;
  const pretty = opts.format === LogFormats.pretty;
  const base = opts.base ?? {};
  const write = (lvl: LogRecord["level"], message: string, fields?: LogFields) => {
    if (LogLevels[lvl] < min) return;
    const record: LogRecord = { t: new Date(now()).toISOString(), level: lvl, msg: message, ...serialise({ ...base, ...fields }) };
    sink.write((pretty ? formatPrettyLine(record, { color: opts.color ?? false }) : JSON.stringify(record)) + "\n");
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (fields) => createLogger({ ...opts, base: { ...base, ...fields } }),
  };
}

/** One JSON object per line on stderr, at or above `level`. */
export function createJsonLogger(level: LogLevel = "info", base: LogFields = {}): Logger {
  return createLogger({ level, base });
}

/**
 * The logger of a process entry: on stderr, pretty (coloured) lines when
 * stderr is a terminal, JSON lines otherwise (a file, a pipe, a log collector).
 */
export function createProcessLogger(opts: { readonly level?: LogLevel; readonly base?: LogFields } = {}): Logger {
  const tty = process.stderr.isTTY === true;
  return createLogger({ ...opts, format: tty ? LogFormats.pretty : LogFormats.json, color: tty });
}

/** A logger that drops everything (tests, replay). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
