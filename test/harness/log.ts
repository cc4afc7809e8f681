/** A logger that keeps every line, for tests that assert what a component logs. */
import type { LogFields, Logger } from "../../src/core/logger.js";

export interface KeptLine {
  readonly level: "debug" | "info" | "warn" | "error";
  readonly message: string;
  readonly fields: LogFields;
}

/** Logs into `lines`; children add their fields to each line. */
export function keptLogger(lines: KeptLine[], base: LogFields = {}): Logger {
  const at = (level: KeptLine["level"]) => (message: string, fields: LogFields = {}) => void lines.push({ level, message, fields: { ...base, ...fields } });
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), child: (f) => keptLogger(lines, { ...base, ...f }) };
}
