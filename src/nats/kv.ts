/** Typed reads and writes of msgpack values in KV buckets. */
import type { KV } from "@nats-io/kv";
import { decode, encode } from "./codec.js";

/** The decoded value under `key` with its revision, or null when absent or deleted. */
export async function getValue<T>(kv: KV, key: string): Promise<{ value: T; revision: number } | null> {
  const e = await kv.get(key);
  if (!e || e.operation !== "PUT" || e.length === 0) return null;
  return { value: decode<T>(e.value), revision: e.revision };
}

export async function putValue(kv: KV, key: string, value: unknown): Promise<number> {
  return kv.put(key, encode(value));
}
