/**
 * One error class per failure kind. Each keeps its context in fields, names the
 * bad value and what was allowed, and says by its class whether a retry can help.
 */

/** Turns anything thrown into an Error, keeping Errors as they are. */
export function ensureError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === "string" ? value : JSON.stringify(value));
}

/** One thing wrong with an event: the field (or "source", "(event)") and why. */
export interface FieldProblem {
  readonly field: string;
  readonly reason: string;
}

/**
 * An event that can never be accepted: terminal, dead-letter it and move on.
 * `field`/`reason` are the first problem; `problems` lists every one of the event.
 */
export class InvalidEventError extends Error {
  override readonly name = "InvalidEventError";
  readonly problems: readonly FieldProblem[];
  constructor(
    readonly field: string,
    readonly reason: string,
    readonly eventId: string | undefined,
    readonly source: string | undefined,
    problems?: readonly FieldProblem[],
  ) {
    const all = problems && problems.length > 0 ? problems : [{ field, reason }];
    super(
      `invalid event${eventId !== undefined ? ` ${JSON.stringify(eventId)}` : ""}` +
        `${source !== undefined ? ` of source ${JSON.stringify(source)}` : ""}: ` +
        all.map((p) => `field ${JSON.stringify(p.field)} ${p.reason}`).join("; "),
    );
    this.problems = all;
  }
}

/** The catalog file is malformed; names the file, the entry and the field. */
export class CatalogError extends Error {
  override readonly name = "CatalogError";
  constructor(
    readonly file: string,
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${file}: ${path}: ${reason}`);
  }
}

/** A configuration key has a bad value or is unknown. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly key: string,
    /** Never a secret: the message shows it (a secret's variable passes its file's path, or nothing). */
    readonly value: unknown,
    readonly expected: string,
    options?: { cause?: unknown },
  ) {
    super(`config ${key}: expected ${expected}, got ${JSON.stringify(value)}`, options);
  }
}

/** A query that cannot be answered as asked; maps to INVALID_ARGUMENT. */
export class InvalidQueryError extends Error {
  override readonly name = "InvalidQueryError";
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

/** A part the answer needs is not reachable right now; a retry can help. */
export class UnavailableError extends Error {
  // string, not the literal: kinds of unavailability (e.g. SpeedActorUnavailableError) extend it.
  override readonly name: string = "UnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A required executable (e.g. nats-server) is not installed. */
export class MissingBinaryError extends Error {
  override readonly name = "MissingBinaryError";
  constructor(
    readonly binary: string,
    readonly hint: string,
  ) {
    super(`${binary} was not found on PATH: ${hint}`);
  }
}

/** The request is well-formed but the system is not in a state to do it (e.g. a dropped view version); maps to FAILED_PRECONDITION. */
export class PreconditionError extends Error {
  // string, not the literal: kinds of precondition failure (e.g. BatchViewMissingError) extend it.
  override readonly name: string = "PreconditionError";
}

/**
 * A serving node has no watermark to answer at: it refused the only one the key holds (no batch
 * run published it, or its batch views are missing on this node; nats/watermark_trust.ts).
 */
export class WatermarkRefusedError extends PreconditionError {
  override readonly name = "WatermarkRefusedError";
  constructor(
    readonly run: number,
    readonly reason: string,
  ) {
    super(`this serving node has no watermark to answer at: it refused watermark run ${run} (${reason}); if no batch run published it, repair it with \`lambdactl watermark rollback <good run>\``);
  }
}

/**
 * A watermark names batch view version `run` of `metric`, and this node's ClickHouse does not
 * hold it: the table is missing, or the table holds no version `run` (another chDB directory
 * than the coordinator's, a version dropped, a forged watermark). Never read as "no rows":
 * maps to FAILED_PRECONDITION, naming the run and the view.
 */
export class BatchViewMissingError extends PreconditionError {
  override readonly name = "BatchViewMissingError";
  constructor(
    readonly metric: string,
    readonly run: number,
    /** The view table, `db`.`view_<metric>_<fingerprint>`. */
    readonly table: string,
    readonly missing: "table" | "version",
  ) {
    super(
      `batch view version ${run} of metric ${metric} is not in this node's ClickHouse (${missing === "table" ? `no table ${table}` : `table ${table} holds no version ${run}`}): ` +
        "the watermark names it, so this node reads another ClickHouse or chDB directory than the coordinator wrote, or the version was dropped; " +
        "point the node at the coordinator's ClickHouse (LAMBDA_CLICKHOUSE_URL / LAMBDA_CHDB_PATH) or publish a new batch run",
    );
  }
}
