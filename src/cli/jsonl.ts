/**
 * JSON lines, one event object per line, read from a stream in chunks so a
 * large file never sits in memory whole. A line that is not JSON is reported
 * with its line number and the rest go on; blank lines are skipped.
 */
import { createInterface } from "node:readline";

/** A JSON value read from line `line` (1-based). */
export interface JsonLine {
  readonly line: number;
  readonly value: unknown;
}

/** A line that is not valid JSON. */
export interface BadLine {
  readonly line: number;
  readonly reason: string;
}

/** One chunk of input: the lines that parsed, in order, and those that did not. */
export interface JsonLinesChunk {
  readonly values: readonly JsonLine[];
  readonly bad: readonly BadLine[];
}

/** Lines per chunk handed to the caller. */
export const JSONL_CHUNK_LINES = 5_000;

/** Parses one line: a value, a bad line, or null when it is blank. Pure. */
export function parseJsonLine(text: string, line: number): JsonLine | BadLine | null {
  if (text.trim() === "") return null;
  try {
    return { line, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { line, reason: `not valid JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/**
 * Reads `input` as JSON lines, yielding chunks of at most `chunkLines` lines.
 * @param chunkLines @default JSONL_CHUNK_LINES
 */
export async function* readJsonLines(input: NodeJS.ReadableStream, chunkLines = JSONL_CHUNK_LINES): AsyncGenerator<JsonLinesChunk> {
  const lines = createInterface({ input, crlfDelay: Infinity });
  let values: JsonLine[] = [];
  let bad: BadLine[] = [];
  let n = 0;
  let inChunk = 0;
  for await (const text of lines) {
    // A byte-order mark some editors write is not part of the first event.
    const parsed = parseJsonLine(++n === 1 ? text.replace(/^\uFEFF/, "") : text, n);
    if (parsed !== null) {
      if ("value" in parsed) values.push(parsed);
      else bad.push(parsed);
    }
    if (++inChunk >= chunkLines) {
      yield { values, bad };
      values = [];
      bad = [];
      inChunk = 0;
    }
  }
  if (values.length > 0 || bad.length > 0) yield { values, bad };
}
