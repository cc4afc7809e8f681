/**
 * Events: validation against a source's schema and normalisation to the form
 * every layer sees (timestamps as epoch milliseconds, the id as a string).
 */
import type { Catalog, FieldType, SourceDef } from "./catalog_types.js";
import { InvalidEventError } from "./errors.js";
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
      if (LONE_SURROGATE.test(v)) throw new BadValueError("is not valid Unicode (a lone UTF-16 surrogate)");
      return v;
    case "int":
      if (typeof v !== "number" || !Number.isSafeInteger(v)) throw new BadValueError(`expected an integer, got ${typeName(v)} ${JSON.stringify(v)}`);
      return v;
    case "float":
      if (typeof v !== "number" || !Number.isFinite(v)) throw new BadValueError(`expected a finite number, got ${typeName(v)}`);
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

function normalizeField(source: SourceDef, field: string, v: unknown, id: string | undefined): FieldValue {
  const def = source.fields[field]!;
  if (v === undefined || v === null) {
    if (def.optional) return null;
    throw new InvalidEventError(field, "is missing", id, source.name);
  }
  try {
    return normalizeValue(def.type, v);
  } catch (err) {
    if (err instanceof BadValueError) throw new InvalidEventError(field, err.message, id, source.name);
    throw err;
  }
}

/**
 * Validates one raw event of `sourceName`.
 * @throws InvalidEventError naming the field and why (unknown source: field "source").
 */
export function validateEvent(catalog: Catalog, sourceName: string, raw: unknown): NormalizedEvent {
  const source = catalog.sources.get(sourceName);
  const rawId = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>)[source?.idField ?? "id"] : undefined;
  const idHint = typeof rawId === "string" || typeof rawId === "number" ? String(rawId) : undefined;
  if (!source) {
    throw new InvalidEventError("source", `unknown source ${JSON.stringify(sourceName)}; known: ${[...catalog.sources.keys()].join(", ")}`, idHint, sourceName);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new InvalidEventError("(event)", `expected an object, got ${typeName(raw)}`, undefined, sourceName);
  }
  const obj = raw as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (!Object.hasOwn(source.fields, k)) {
      throw new InvalidEventError(k, `is not in the schema of ${sourceName} (fields: ${Object.keys(source.fields).join(", ")})`, idHint, sourceName);
    }
  }
  const fields: Record<string, FieldValue> = {};
  // The id first, so later errors can name the event.
  fields[source.idField] = normalizeField(source, source.idField, obj[source.idField], undefined);
  const id = String(fields[source.idField]);
  for (const f of Object.keys(source.fields)) {
    if (f === source.idField) continue;
    fields[f] = normalizeField(source, f, obj[f], id);
  }
  return { source: sourceName, id, ts: fields[source.timeField] as number, fields };
}

/** Stable 32-bit FNV-1a hash of a string's UTF-8 bytes. */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
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
