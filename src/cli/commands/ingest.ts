/**
 * `lambdactl ingest <source> [FILE|-]`: publishes events from JSON lines (one
 * event object per line) through the runtime's ingest path, exactly as
 * producers do: validated against the catalog the cluster runs (the catalog
 * file only while the cluster has stored none), sent to their partition,
 * deduplicated by event id, refused ones dead-lettered. Prints how many were
 * accepted, already held (duplicates) and refused, and which lines were refused
 * and why. A line that is not JSON is refused with its line number; the lines
 * after it still go in.
 */
import { once } from "node:events";
import { createReadStream } from "node:fs";
import { resolve } from "node:path";
import { booleanFlag, COMMON_FLAGS, connectionFlags, NATS_FLAGS, requiredArg, UsageError } from "../args.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ParsedCommand } from "../command.js";
import { resolveNatsTarget, type Sourced } from "../connection.js";
import { failureJson, FailureCodes, type FailureJson } from "../failure.js";
import { readJsonLines } from "../jsonl.js";
import { openIngest } from "../nats.js";
import { keyValues, table } from "../render.js";
import { loadCatalog, type Catalog } from "../../core/catalog.js";
import { CatalogError, ensureError, type FieldProblem } from "../../core/errors.js";

const spec: CommandSpec = {
  name: "ingest",
  summary: "publish events from JSON lines (file or stdin); counts, and the refused lines and why",
  args: [
    { name: "source", description: "source name from the catalog, e.g. pageviews" },
    { name: "file", optional: true, description: "JSON lines file; - or nothing reads stdin" },
  ],
  flags: { ...NATS_FLAGS, ...COMMON_FLAGS },
  notes: [
    "exit status: 0 when every line went in (accepted or duplicate), 1 when any line was refused",
    "(not JSON, or not a valid event); refused events are also kept in the dead-letter stream.",
    "Sending the same events again is safe: the stream keeps one copy of each event id (within its",
    "duplicate window) and reports the others as duplicates.",
    "",
    "example:",
    "  lambdactl ingest pageviews events.jsonl",
    "  generate-events | lambdactl ingest pageviews -",
  ].join("\n"),
};

/** Field name reported for a line that is not JSON (it has no fields to name). */
export const NOT_JSON_FIELD = "(line)";

/** One refused input line. */
export interface RefusedLine {
  /** 1-based line number in the input. */
  readonly line: number;
  readonly eventId: string | null;
  /** The first bad field and why. */
  readonly field: string;
  readonly reason: string;
  /** Every bad field of the line and why (the first is field/reason). */
  readonly problems: readonly FieldProblem[];
}

/** The stable JSON shape of `ingest --json`. */
export interface IngestJson {
  readonly accepted: number;
  readonly duplicates: number;
  readonly refused: number;
  readonly refusals: readonly RefusedLine[];
  /** Present when any line was refused: code REFUSED (src/cli/failure.ts). */
  readonly error?: FailureJson["error"];
}

/** Publishing failed part-way (a broker error, not a bad event); what was sent before stays sent. */
export class IngestStoppedError extends Error {
  override readonly name = "IngestStoppedError";
  constructor(
    readonly firstLine: number,
    readonly accepted: number,
    readonly duplicates: number,
    options: { cause: unknown },
  ) {
    super(
      `publishing stopped in the chunk starting at line ${firstLine}: ${ensureError(options.cause).message}. ` +
        `Before that chunk ${accepted} events were accepted and ${duplicates} were duplicates; ` +
        "sending the same input again is safe (events the stream already holds count as duplicates)",
      options,
    );
  }
}

/** The outcome as text: counts, then the refused lines. */
export function renderIngest(r: IngestJson): string {
  const counts = keyValues([
    ["accepted", r.accepted],
    ["duplicates", r.duplicates],
    ["refused", r.refused],
  ]);
  if (r.refusals.length === 0) return counts;
  return `${counts}\n${table(["line", "event id", "field", "reason"], r.refusals.flatMap((f) => f.problems.map((p) => [f.line, f.eventId ?? "-", p.field, p.reason])))}`;
}

async function openInput(ctx: CliContext, file: string | undefined): Promise<NodeJS.ReadableStream & { destroy?: () => void }> {
  if (file === undefined || file === "-") return ctx.stdin;
  const stream = createReadStream(resolve(ctx.cwd, file));
  try {
    await once(stream, "open");
  } catch (err) {
    throw new Error(`cannot read ${file}: ${ensureError(err).message}`, { cause: err });
  }
  return stream;
}

function readCatalog(path: Sourced<string>): Catalog {
  try {
    return loadCatalog(path.value);
  } catch (err) {
    if (err instanceof CatalogError) throw new Error(`catalog (from ${path.from}): ${err.message}`, { cause: err });
    throw err;
  }
}

async function run(parsed: ParsedCommand, ctx: CliContext) {
  const source = requiredArg(parsed, "source");
  const file = parsed.args.file;
  if (file === undefined && ctx.stdin.isTTY) {
    throw new UsageError(spec.name, `no file given and stdin is a terminal; give a file, or pipe JSON lines in: ... | lambdactl ingest ${source} -`);
  }
  const target = resolveNatsTarget({ flags: connectionFlags(parsed), env: ctx.env, cwd: ctx.cwd });
  await using conn = await openIngest(target, () => readCatalog(target.catalog));
  if (!conn.catalog.sources.has(source)) {
    throw new UsageError(spec.name, `unknown source ${JSON.stringify(source)}; ${conn.catalogFrom} defines: ${[...conn.catalog.sources.keys()].join(", ")}`);
  }
  const input = await openInput(ctx, file);
  try {
    let accepted = 0;
    let duplicates = 0;
    const refusals: RefusedLine[] = [];
    for await (const chunk of readJsonLines(input)) {
      for (const b of chunk.bad) refusals.push({ line: b.line, eventId: null, field: NOT_JSON_FIELD, reason: b.reason, problems: [{ field: NOT_JSON_FIELD, reason: b.reason }] });
      if (chunk.values.length === 0) continue;
      const result = await conn.ingest.publishBatch(source, chunk.values.map((v) => v.value)).catch((err: unknown) => {
        throw new IngestStoppedError(chunk.values[0]!.line, accepted, duplicates, { cause: err });
      });
      accepted += result.accepted;
      duplicates += result.duplicates;
      for (const f of result.refused) {
        refusals.push({ line: chunk.values[f.index]!.line, eventId: f.eventId ?? null, field: f.field, reason: f.reason, problems: f.problems });
      }
    }
    refusals.sort((a, b) => a.line - b.line);
    const failure = refusals.length === 0 ? {} : failureJson({ code: FailureCodes.refused, message: `${refusals.length} ${refusals.length === 1 ? "line was" : "lines were"} refused (see refusals)`, fields: {} });
    const out: IngestJson = { accepted, duplicates, refused: refusals.length, refusals, ...failure };
    ctx.stdout.write(booleanFlag(parsed, "json") ? JSON.stringify(out, null, 2) + "\n" : renderIngest(out));
    return refusals.length > 0 ? ExitCodes.failure : ExitCodes.ok;
  } finally {
    if (input !== ctx.stdin) input.destroy?.();
  }
}

/** `lambdactl ingest`. */
export const ingestCommand: Command = { spec, run };
