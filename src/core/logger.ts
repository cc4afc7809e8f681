/**
 * The logger every component takes as a parameter: never a global. Calls are
 * `(message, fields)`; children carry fixed fields such as the component, the
 * partition, the generation and the run.
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

function serialise(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = v instanceof Error ? { name: v.name, message: v.message, stack: v.stack } : v;
  }
  return out;
}

/** One JSON object per line on stderr, at or above `level`. */
export function createJsonLogger(level: LogLevel = "info", base: LogFields = {}): Logger {
  const min = LogLevels[level];
  const write = (lvl: Exclude<LogLevel, "silent">, message: string, fields?: LogFields) => {
    if (LogLevels[lvl] < min) return;
    const line = { t: new Date().toISOString(), level: lvl, msg: message, ...serialise({ ...base, ...fields }) };
    process.stderr.write(JSON.stringify(line) + "\n");
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (fields) => createJsonLogger(level, { ...base, ...fields }),
  };
}

/** A logger that drops everything (tests, replay). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
