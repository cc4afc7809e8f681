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

/**
 * Writes `decide(current)` under `key` only if nobody else wrote the key in between
 * (compare-and-set on its revision). After a lost race it reads again and decides anew;
 * `decide` throws to give up. Any other failure is thrown as it is.
 */
export async function compareAndSet<T>(kv: KV, key: string, decide: (current: { value: T; revision: number } | null) => T): Promise<T> {
  for (;;) {
    const current = await getValue<T>(kv, key);
    const next = decide(current);
    try {
      if (current) await kv.update(key, encode(next), current.revision);
      else await kv.create(key, encode(next));
      return next;
    } catch (err) {
      const after = await getValue<T>(kv, key);
      if (after?.revision === current?.revision) throw err;
    }
  }
}
