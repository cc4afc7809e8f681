/**
 * Typed reads, writes and watches of msgpack values in KV buckets: the base of
 * the cluster-state modules (watermark_store, run_history, assignments_store,
 * members, archiver_progress, catalog_store, cluster_settings). Each of those
 * owns its bucket's keys and gives a parser here; a value is parsed once, at this
 * boundary, and a malformed one is a MalformedValueError naming bucket, key and
 * revision, never a value cast to a type it does not have.
 */
import type { Health } from "../core/health.js";
import type { KV, KvEntry, KvWatchEntry } from "@nats-io/kv";
import { ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { decode, encode } from "./codec.js";

/** Checks a decoded value and returns it typed; throws a TypeError saying what is wrong. */
export type Parser<T> = (value: unknown) => T;

/** A stored value that is not what its key must hold (another build, a raw client, corruption). */
export class MalformedValueError extends Error {
  override readonly name = "MalformedValueError";
  constructor(
    readonly bucket: string,
    readonly key: string,
    readonly revision: number,
    readonly problem: string,
  ) {
    super(`malformed value in KV bucket ${bucket}, key ${key} (revision ${revision}): ${problem}`);
  }
}

/** A parsed value with the revision it was stored at. */
export interface Revisioned<T> {
  readonly value: T;
  readonly revision: number;
}

/** A value as read from the bucket: with the time the NATS server stored it (the server's clock). */
export interface Stored<T> extends Revisioned<T> {
  readonly storedAtMs: number;
}

/** The value of a PUT entry read directly, parsed. @throws MalformedValueError */
export function parseKvEntry<T>(e: KvEntry, parse: Parser<T>): T {
  return parseEntry(e.bucket, e.key, e.revision, e.value, parse);
}

function parseEntry<T>(bucket: string, key: string, revision: number, data: Uint8Array, parse: Parser<T>): T {
  let raw: unknown;
  try {
    raw = decode(data);
  } catch (err) {
    throw new MalformedValueError(bucket, key, revision, `not msgpack: ${ensureError(err).message}`);
  }
  try {
    return parse(raw);
  } catch (err) {
    throw new MalformedValueError(bucket, key, revision, ensureError(err).message);
  }
}

/**
 * The parsed value under `key` with its revision, or null when absent or deleted.
 * @throws MalformedValueError
 */
export async function readValue<T>(kv: KV, key: string, parse: Parser<T>): Promise<Stored<T> | null> {
  const e = await kv.get(key);
  if (!e || e.operation !== "PUT" || e.length === 0) return null;
  return { value: parseEntry(e.bucket, key, e.revision, e.value, parse), revision: e.revision, storedAtMs: e.created.getTime() };
}

export async function putValue(kv: KV, key: string, value: unknown): Promise<number> {
  return kv.put(key, encode(value));
}

/**
 * Writes `decide(current)` under `key` only if nobody else wrote the key in between
 * (compare-and-set on its revision). After a lost race it reads again and decides anew;
 * `decide` throws to give up. A malformed stored value counts as none (`current` is null) and
 * is replaced; any other failure is thrown as it is.
 * @returns what was written, with its revision
 */
export async function compareAndSet<T>(kv: KV, key: string, parse: Parser<T>, decide: (current: Revisioned<T> | null) => T): Promise<Revisioned<T>> {
  for (;;) {
    const e = await kv.get(key);
    let current: Revisioned<T> | null = null;
    if (e && e.operation === "PUT" && e.length > 0) {
      try {
        current = { value: parseKvEntry(e, parse), revision: e.revision };
      } catch (err) {
        if (!(err instanceof MalformedValueError)) throw err;
      }
    }
    const next = decide(current);
    try {
      // A deleted key keeps its revision: update on it too, so a writer racing the delete loses.
      const revision = e ? await kv.update(key, encode(next), e.revision) : await kv.create(key, encode(next));
      return { value: next, revision };
    } catch (err) {
      const after = await kv.get(key);
      if (after?.revision === e?.revision) throw err;
    }
  }
}

/**
 * A write by a leader (a coordinator, or the archiver holding its lease) whose epoch
 * (nats/leadership.ts) is older than the one the key was last written with: a newer leader
 * exists, so this one must not write.
 */
export class FencedError extends Error {
  override readonly name = "FencedError";
  constructor(
    readonly what: string,
    readonly epoch: number,
    readonly currentEpoch: number,
    /** The role whose leader wrote ("coordinator", "archiver"). */
    readonly role: string = "coordinator",
  ) {
    super(`${what} not written: it was written by ${role} leader epoch ${currentEpoch}, this ${role} leads with epoch ${epoch} (a newer leader took over)`);
  }
}

/** The fencing epoch a stored value carries; values from before fencing count as epoch 0. */
export const epochOf = (v: { readonly epoch?: number } | null | undefined): number => v?.epoch ?? 0;

/**
 * Writes `decide(current)` under `key` with compare-and-set, unless the stored value was written
 * by a newer leader epoch than `epoch`. @throws FencedError
 */
export function fencedWrite<T extends { readonly epoch?: number }>(kv: KV, key: string, parse: Parser<T>, epoch: number, what: string, decide: (current: Revisioned<T> | null) => T, role = "coordinator"): Promise<Revisioned<T>> {
  return compareAndSet(kv, key, parse, (current) => {
    if (current && epochOf(current.value) > epoch) throw new FencedError(what, epoch, epochOf(current.value), role);
    return decide(current);
  });
}

/** Given up inside a stamp: nothing to stamp. */
const NOTHING_TO_STAMP = new Error("nothing to stamp");

/**
 * Rewrites the value under `key` with `epoch` (a new leader fencing off the one before it), unless
 * it is absent or carries `epoch` already. @returns whether it wrote @throws FencedError
 */
export async function stampEpoch<T extends { readonly epoch?: number }>(kv: KV, key: string, parse: Parser<T>, epoch: number, what: string): Promise<boolean> {
  try {
    await fencedWrite(kv, key, parse, epoch, what, (current) => {
      if (!current || epochOf(current.value) === epoch) throw NOTHING_TO_STAMP;
      return { ...current.value, epoch };
    });
    return true;
  } catch (err) {
    if (err === NOTHING_TO_STAMP) return false;
    throw err;
  }
}

/** How a watch ended: stop() was called, the server ended it, or it failed. */
export type WatchEnd = { readonly kind: "stopped" } | { readonly kind: "ended" } | { readonly kind: "failed"; readonly error: Error };

/** A running watch of parsed values. */
export interface ValueWatch {
  stop(): void;
  /** Resolves (never rejects) when the watch ends, saying how; an end other than "stopped" is logged already. */
  readonly ended: Promise<WatchEnd>;
}

export interface WatchOptions<T> {
  /** Key or wildcard (`p.*`) to watch. */
  readonly key: string;
  readonly parse: Parser<T>;
  /**
   * Each value put, in order (current values first), with the time the NATS server stored it
   * (its clock, not this host's). A throw is logged and the watch goes on.
   */
  onValue(key: string, value: T, revision: number, storedAtMs: number): void;
  /** A delete or purge of `key`, with the time the server stored it. */
  onDelete?(key: string, revision: number, storedAtMs: number): void;
  /** What the watch follows, for the log ("assignments", "the watermark"). */
  readonly what: string;
  readonly log: Logger;
}

/**
 * Watches `key` and delivers parsed values. A malformed value is logged and skipped. The end
 * of the watch other than by stop() is logged as an error (the caller no longer follows
 * `what`) and reported through `ended`, so a role can reflect it in its health.
 */
export async function watchValues<T>(kv: KV, opts: WatchOptions<T>): Promise<ValueWatch> {
  const watch = await kv.watch({ key: opts.key });
  let stopped = false;
  const deliver = (e: KvWatchEntry) => {
    if (e.operation !== "PUT") {
      opts.onDelete?.(e.key, e.revision, e.created.getTime());
      return;
    }
    let value: T;
    try {
      value = parseEntry(e.bucket, e.key, e.revision, e.value, opts.parse);
    } catch (err) {
      opts.log.error(`ignoring a malformed value while following ${opts.what}`, { err: ensureError(err) });
      return;
    }
    try {
      opts.onValue(e.key, value, e.revision, e.created.getTime());
    } catch (err) {
      opts.log.error(`reacting to a change of ${opts.what} failed`, { key: e.key, revision: e.revision, err: ensureError(err) });
    }
  };
  const ended = (async (): Promise<WatchEnd> => {
    for await (const e of watch) deliver(e);
    return { kind: stopped ? "stopped" : "ended" };
  })().then(
    (end) => {
      if (end.kind === "ended") opts.log.error(`the watch of ${opts.what} ended; no longer following ${opts.what}`);
      return end;
    },
    (err): WatchEnd => {
      if (stopped) return { kind: "stopped" };
      const error = ensureError(err);
      opts.log.error(`the watch of ${opts.what} failed; no longer following ${opts.what}`, { err: error });
      return { kind: "failed", error };
    },
  );
  return {
    stop() {
      stopped = true;
      watch.stop();
    },
    ended,
  };
}

/** Field checks for parsers: each throws a TypeError naming the field. */
export const fields = {
  object(v: unknown, what: string): Record<string, unknown> {
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new TypeError(`${what} must be a map, got ${describe(v)}`);
    return v as Record<string, unknown>;
  },
  int(o: Record<string, unknown>, field: string, min = 0): number {
    const v = o[field];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) throw new TypeError(`${field} must be an integer ≥ ${min}, got ${describe(v)}`);
    return v;
  },
  string(o: Record<string, unknown>, field: string): string {
    const v = o[field];
    if (typeof v !== "string") throw new TypeError(`${field} must be a string, got ${describe(v)}`);
    return v;
  },
  /** An integer, or null/absent (→ null). */
  intOrNull(o: Record<string, unknown>, field: string): number | null {
    return o[field] === null || o[field] === undefined ? null : fields.int(o, field, Number.MIN_SAFE_INTEGER);
  },
  numberOrNull(o: Record<string, unknown>, field: string): number | null {
    const v = o[field];
    if (v === null || v === undefined) return null;
    if (typeof v !== "number" || !Number.isFinite(v)) throw new TypeError(`${field} must be a number, got ${describe(v)}`);
    return v;
  },
  stringOrNull(o: Record<string, unknown>, field: string): string | null {
    return o[field] === null || o[field] === undefined ? null : fields.string(o, field);
  },
  intArray(o: Record<string, unknown>, field: string): number[] {
    const v = o[field];
    if (!Array.isArray(v) || !v.every((x) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0)) throw new TypeError(`${field} must be a list of integers ≥ 0, got ${describe(v)}`);
    return v as number[];
  },
  oneOf<const V extends string>(o: Record<string, unknown>, field: string, allowed: readonly V[]): V {
    const v = o[field];
    if (!allowed.includes(v as V)) throw new TypeError(`${field} must be one of ${allowed.join(", ")}, got ${describe(v)}`);
    return v as V;
  },
};

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

/** Marks `name` failed on `health` when a watch ends other than by stop(): the role no longer follows what it watched. */
export function failHealthOnEnd(ended: Promise<WatchEnd>, health: Health | undefined, name: string, what: string): void {
  if (!health) return;
  void ended.then((end) => {
    if (end.kind === "ended") health.fail(name, `the watch of ${what} ended`);
    else if (end.kind === "failed") health.fail(name, `the watch of ${what} failed: ${end.error.message}`);
  });
}
