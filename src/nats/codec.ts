/**
 * msgpack encoding of everything the runtime writes to NATS: stream records
 * (events and barriers), KV values and request/reply bodies.
 */
import { Packr } from "msgpackr";
import type { DeadLetter } from "../core/dead_letter.js";
import type { FieldValue, NormalizedEvent } from "../core/events.js";

// Plain msgpack (no record extension) so any msgpack reader can decode our data.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Bytes msgpackr's buffer starts with (its own first allocation). */
const FRESH_BUFFER_BYTES = 8192;

/**
 * Encodes a large one-off value (a speed actor's snapshot) like `encode`, without leaving a
 * buffer of its size behind. msgpackr writes every value into one buffer (module-wide, shared by
 * its packers) that it keeps for the next call and grows to 4x the largest value written: one
 * snapshot of a few MiB would otherwise stay as ~4x that for the life of the process, every
 * later reply a view into it. The result is the only reference left to the bytes it is in.
 */
export function encodeLarge(value: unknown): Uint8Array {
  const bytes = packr.pack(value);
  // A Buffer, as msgpackr allocates on Node: it writes strings with Buffer's utf8Write.
  packr.useBuffer(Buffer.allocUnsafeSlow(FRESH_BUFFER_BYTES));
  return bytes;
}

export function decode<T = unknown>(data: Uint8Array): T {
  return packr.unpack(data) as T;
}

/** What a partition subject carries: an event, or a barrier of a batch run. */
export type StreamRecord =
  | { readonly k: "e"; readonly s: string; readonly v: Record<string, FieldValue>; readonly id: string; readonly ts: number }
  /** A barrier of run `r`, written by the leader of epoch `e` (absent before leadership epochs). */
  | { readonly k: "b"; readonly r: number; readonly e?: number };

export function encodeEvent(e: NormalizedEvent): Uint8Array {
  return encode({ k: "e", s: e.source, id: e.id, ts: e.ts, v: e.fields });
}

export function encodeBarrier(run: number, epoch: number): Uint8Array {
  return encode({ k: "b", r: run, e: epoch });
}

/** Decodes a stream record; returns undefined for anything that is not one. */
export function decodeRecord(data: Uint8Array): StreamRecord | undefined {
  let v: unknown;
  try {
    v = decode(data);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const r = v as Record<string, unknown>;
  if (r.k === "b" && typeof r.r === "number") return r as StreamRecord;
  if (r.k === "e" && typeof r.s === "string" && typeof r.id === "string" && typeof r.ts === "number" && typeof r.v === "object" && r.v !== null) {
    return r as StreamRecord;
  }
  return undefined;
}

/** A partition subject's message as read, before its event (if any) is validated (core/events validateStreamEvent). */
export type ReadRecord =
  | { readonly kind: "event"; readonly s: unknown; readonly id: unknown; readonly ts: unknown; readonly v: unknown }
  /** A barrier as it claims to be: nothing says yet that a run wrote it (nats/barrier_check.ts decides). */
  | { readonly kind: "barrier"; readonly run: number; readonly epoch?: number }
  /** Not a stream record at all: `reason` says why; `value` is what msgpack gave, if anything. */
  | { readonly kind: "unreadable"; readonly reason: string; readonly value?: unknown };

/** Reads a partition subject's message without trusting it: the layers validate events themselves. */
export function readStreamRecord(data: Uint8Array): ReadRecord {
  let v: unknown;
  try {
    v = decode(data);
  } catch (err) {
    return { kind: "unreadable", reason: `not msgpack: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { kind: "unreadable", reason: `not a stream record: a msgpack ${Array.isArray(v) ? "array" : v === null ? "nil" : typeof v}`, value: v };
  const r = v as Record<string, unknown>;
  if (r.k === "b" && typeof r.r === "number" && Number.isSafeInteger(r.r) && r.r > 0) {
    // A barrier without a whole epoch (one from before epochs, or a forged one) claims none.
    return typeof r.e === "number" && Number.isSafeInteger(r.e) && r.e >= 0 ? { kind: "barrier", run: r.r, epoch: r.e } : { kind: "barrier", run: r.r };
  }
  if (r.k === "e") return { kind: "event", s: r.s, id: r.id, ts: r.ts, v: r.v };
  return { kind: "unreadable", reason: `not a stream record: k is ${JSON.stringify(r.k)}, expected "e" (event) or "b" (barrier with a run number)`, value: v };
}

/** Message id of an event: dedupes retried publishes within the stream's window. */
export const eventMsgId = (source: string, id: string) => `${source}:${id}`;
/** Message id of a barrier: a coordinator that retries writes it once. */
export const barrierMsgId = (run: number, p: number) => `barrier:${run}:${p}`;

/** Room left in a dead-letter message for headers and framing the record does not count. */
const DEAD_LETTER_SLACK_BYTES = 1_024;
const UTF8 = new TextEncoder();

/**
 * A dead-letter record encoded, made to fit in `maxPayload` (the server's, from nc.info): when
 * the whole raw value does not fit, `raw` becomes the first part of its JSON text and
 * `rawTruncatedFrom` says how long the whole was, so the record still says what was refused
 * and why.
 */
export function encodeDeadLetter(record: DeadLetter, maxPayload: number | undefined): Uint8Array {
  const whole = encode(record);
  if (maxPayload === undefined || whole.length + DEAD_LETTER_SLACK_BYTES <= maxPayload) return whole;
  const text = UTF8.encode(JSON.stringify(record.raw) ?? String(record.raw));
  const base = encode({ ...record, raw: "", rawTruncatedFrom: text.length }).length;
  const room = Math.max(0, maxPayload - DEAD_LETTER_SLACK_BYTES - base);
  // A cut inside a multi-byte character decodes to U+FFFD, which may add up to 2 bytes.
  const head = new TextDecoder().decode(text.subarray(0, Math.max(0, room - 3)));
  return encode({ ...record, raw: head, rawTruncatedFrom: text.length });
}
