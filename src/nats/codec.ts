/**
 * msgpack encoding of everything the runtime writes to NATS: stream records
 * (events and barriers), KV values and request/reply bodies.
 */
import { Packr } from "msgpackr";
import type { FieldValue, NormalizedEvent } from "../core/events.js";

// Plain msgpack (no record extension) so any msgpack reader can decode our data.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decode<T = unknown>(data: Uint8Array): T {
  return packr.unpack(data) as T;
}

/** What a partition subject carries: an event, or a barrier of a batch run. */
export type StreamRecord =
  | { readonly k: "e"; readonly s: string; readonly v: Record<string, FieldValue>; readonly id: string; readonly ts: number }
  | { readonly k: "b"; readonly r: number };

export function encodeEvent(e: NormalizedEvent): Uint8Array {
  return encode({ k: "e", s: e.source, id: e.id, ts: e.ts, v: e.fields });
}

export function encodeBarrier(run: number): Uint8Array {
  return encode({ k: "b", r: run });
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

/** Message id of an event: dedupes retried publishes within the stream's window. */
export const eventMsgId = (source: string, id: string) => `${source}:${id}`;
/** Message id of a barrier: a coordinator that retries writes it once. */
export const barrierMsgId = (run: number, p: number) => `barrier:${run}:${p}`;
