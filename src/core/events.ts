/**
 * Events: validation against a source's schema and normalisation to the form
 * every layer sees (timestamps as epoch milliseconds, the id as a string).
 */
import type { Catalog, FieldType, SourceDef } from "./catalog_types.js";
import { InvalidEventError, type FieldProblem } from "./errors.js";
import { parseIsoTime, timeInRange } from "./time.js";

export type FieldValue = string | number | boolean | null;

/** A validated event, as it travels on the stream. */
export interface NormalizedEvent {
  readonly source: string;
  /** The event id as a string (dedupe key, Nats-Msg-Id). */
  readonly id: string;
  /** Event time, epoch milliseconds. */
  readonly ts: number;
  /** Every schema field, normalised (timestamps in epoch ms). */
  readonly fields: Readonly<Record<string, FieldValue>>;
}

function parseTimestamp(v: unknown): number | string {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return "is not a finite number";
    if (!Number.isInteger(v)) return "must be whole epoch milliseconds";
    const r = timeInRange(v, String(v));
    return r.kind === "time" ? r.ms : `epoch milliseconds ${v} is outside 1970..2200`;
  }
  if (typeof v === "string") {
    const r = parseIsoTime(v);
    if (!r) return `cannot parse ${JSON.stringify(v)} as a time; expected ISO 8601 (e.g. 2026-06-08T14:23:00Z; no offset means UTC) or epoch milliseconds`;
    return r.kind === "time" ? r.ms : r.reason;
  }
  return `expected a timestamp (ISO 8601 string or epoch milliseconds), got ${typeName(v)}`;
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Any surrogate at all: nearly every string has none, and this test is far cheaper than the one above. */
const ANY_SURROGATE = /[\uD800-\uDFFF]/;

/** A value that can never be one of `type`: the reason, for the caller to wrap. */
export class BadValueError extends Error {
  override readonly name = "BadValueError";
}

/**
 * Normalises a present (non-null) value of `type`: timestamps to epoch ms.
 * @throws BadValueError saying what was expected and what came.
 */
export function normalizeValue(type: FieldType, v: unknown): Exclude<FieldValue, null> {
  switch (type) {
    case "string":
      if (typeof v !== "string") throw new BadValueError(`expected string, got ${typeName(v)}`);
      if (v.length === 0) throw new BadValueError("is empty");
      // ClickHouse refuses such strings on insert: one would block the archiver's whole batch.
      if (ANY_SURROGATE.test(v) && LONE_SURROGATE.test(v)) throw new BadValueError("is not valid Unicode (a lone UTF-16 surrogate)");
      return v;
    case "int":
      if (typeof v !== "number" || !Number.isSafeInteger(v)) throw new BadValueError(`expected an integer, got ${typeName(v)} ${JSON.stringify(v)}`);
      return v;
    case "float":
      if (typeof v !== "number" || !Number.isFinite(v)) throw new BadValueError(`expected a finite number, got ${typeof v === "number" ? String(v) : typeName(v)}`);
      // -0 and 0 are one value for every aggregate and comparison.
      return v === 0 ? 0 : v;
    case "bool":
      if (typeof v !== "boolean") throw new BadValueError(`expected boolean, got ${typeName(v)}`);
      return v;
    case "timestamp": {
      const r = parseTimestamp(v);
      if (typeof r === "string") throw new BadValueError(r);
      return r;
    }
  }
}

/** How strictly values are read: as a producer sends them (ingest), or as ingest writes them (the stream). */
type Form = "raw" | "normalised";

/** A field's value, or the problem with it. */
function normalizeField(source: SourceDef, field: string, v: unknown, form: Form): FieldValue | FieldProblem {
  const def = source.fields[field]!;
  if (v === undefined || v === null) {
    // On the stream an optional field may be absent: an event written under an older catalog version.
    if (def.optional) return null;
    return { field, reason: "is missing" };
  }
  let n: Exclude<FieldValue, null>;
  try {
    n = normalizeValue(def.type, v);
  } catch (err) {
    if (err instanceof BadValueError) return { field, reason: err.message };
    throw err;
  }
  // Ingest writes every value normalised: anything else on the stream did not come through it.
  if (form === "normalised" && n !== v) return { field, reason: `is ${JSON.stringify(v)}, not in the form ingest writes (${JSON.stringify(n)})` };
  return n;
}

const isProblem = (v: FieldValue | FieldProblem): v is FieldProblem => typeof v === "object" && v !== null;

/** The outcome of checking one event against a catalog. */
export type EventCheck =
  | { readonly kind: "valid"; readonly event: NormalizedEvent }
  | {
      readonly kind: "invalid";
      /** Every problem, in field order. */
      readonly problems: readonly FieldProblem[];
      readonly eventId: string | undefined;
      /** Some problem is an unknown source or field: a newer catalog version may define it. */
      readonly unknownName: boolean;
    };

function checkEvent(catalog: Catalog, sourceName: string, raw: unknown, form: Form): EventCheck {
  const source = catalog.sources.get(sourceName);
  const rawId = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>)[source?.idField ?? "id"] : undefined;
  const idHint = typeof rawId === "string" || typeof rawId === "number" ? String(rawId) : undefined;
  const invalid = (problems: FieldProblem[], eventId: string | undefined, unknownName: boolean): EventCheck => ({ kind: "invalid", problems, eventId, unknownName });
  if (!source) {
    return invalid([{ field: "source", reason: `unknown source ${JSON.stringify(sourceName)}; known: ${[...catalog.sources.keys()].join(", ")}` }], idHint, true);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return invalid([{ field: "(event)", reason: `expected an object, got ${typeName(raw)}` }], undefined, false);
  }
  const obj = raw as Record<string, unknown>;
  const problems: FieldProblem[] = [];
  let unknownName = false;
  for (const k of Object.keys(obj)) {
    if (!Object.hasOwn(source.fields, k)) {
      problems.push({ field: k, reason: `is not in the schema of ${sourceName} (fields: ${Object.keys(source.fields).join(", ")})` });
      unknownName = true;
    }
  }
  const fields: Record<string, FieldValue> = {};
  for (const f of Object.keys(source.fields)) {
    const v = normalizeField(source, f, obj[f], form);
    if (isProblem(v)) problems.push(v);
    else fields[f] = v;
  }
  // A refusal names its event only by a valid id.
  const idValue = fields[source.idField];
  const id = idValue === undefined ? undefined : String(idValue);
  if (problems.length > 0 || id === undefined) return invalid(problems, id, unknownName);
  return { kind: "valid", event: { source: sourceName, id, ts: fields[source.timeField] as number, fields } };
}

/**
 * Validates one raw event of `sourceName`, as a producer sends it.
 * @throws InvalidEventError listing every problem (unknown source: field "source"); its field/reason are the first.
 */
export function validateEvent(catalog: Catalog, sourceName: string, raw: unknown): NormalizedEvent {
  const c = checkEvent(catalog, sourceName, raw, "raw");
  if (c.kind === "valid") return c.event;
  const first = c.problems[0]!;
  throw new InvalidEventError(first.field, first.reason, c.eventId, sourceName, c.problems);
}

/** An event record as read from a partition subject (nats/codec), its parts not yet trusted. */
export interface StreamEventInput {
  readonly s: unknown;
  readonly id: unknown;
  readonly ts: unknown;
  readonly v: unknown;
}

/**
 * Validates an event record read from partition `partition` with ingest's rules, in the form
 * ingest writes: every field valid and already normalised, the id and time equal to their
 * fields, and the record on the partition its key hashes to. Records can reach the stream
 * without ingest (another producer, an older build, a raw client); the archiver and the speed
 * actors both call this so they skip exactly the same records.
 */
export function validateStreamEvent(catalog: Catalog, rec: StreamEventInput, partition: number, partitions: number): EventCheck {
  if (typeof rec.s !== "string") return { kind: "invalid", problems: [{ field: "source", reason: `expected a source name, got ${typeName(rec.s)}` }], eventId: undefined, unknownName: false };
  const c = checkEvent(catalog, rec.s, rec.v, "normalised");
  if (c.kind === "invalid") return c;
  const source = catalog.sources.get(rec.s)!;
  const problems: FieldProblem[] = [];
  if (rec.id !== c.event.id) problems.push({ field: "(record id)", reason: `is ${JSON.stringify(rec.id)}, not the id field ${source.idField} ${JSON.stringify(c.event.id)}` });
  if (rec.ts !== c.event.ts) problems.push({ field: "(record ts)", reason: `is ${JSON.stringify(rec.ts)}, not the time field ${source.timeField} ${c.event.ts}` });
  const home = partitionOf(source, c.event, partitions);
  if (home !== partition) problems.push({ field: source.partitionKey, reason: `hashes to partition ${home}, but the record is on partition ${partition}` });
  return problems.length > 0 ? { kind: "invalid", problems, eventId: c.event.id, unknownName: false } : c;
}

/** Stable 32-bit FNV-1a hash of a string's UTF-8 bytes. */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  // ASCII (most keys) hashes char by char: its UTF-8 bytes are its char codes, and no buffer is made
  // (the archiver and every speed actor hash each event's key to check its partition).
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) {
      ascii = false;
      break;
    }
    h ^= c;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  if (ascii) return h >>> 0;
  h = 0x811c9dc5;
  const bytes = Buffer.from(text, "utf8");
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The partition of an event: stable hash of its partition key's value mod `partitions`. */
export function partitionOfKey(keyValue: FieldValue, partitions: number): number {
  return fnv1a32(String(keyValue)) % partitions;
}

export function partitionOf(source: SourceDef, event: NormalizedEvent, partitions: number): number {
  return partitionOfKey(event.fields[source.partitionKey]!, partitions);
}
