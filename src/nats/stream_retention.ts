/**
 * The event stream's retention, as NATS holds it: purging a partition subject below a sequence
 * (a JetStream purge with `filter` and `seq`, on nats-server 2.9 and later), the stream's size and
 * limits, and the record the leading coordinator keeps of what retention did (key `retention` of
 * the coordinator bucket, written fenced by its epoch; `lambdactl status` reads it).
 */
import { Kvm, type KV } from "@nats-io/kv";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { StreamRetentionModes, type StreamRetentionMode } from "../core/config.js";
import { fencedWrite, fields, readValue, stampEpoch } from "./kv.js";
import { RETENTION_KEY, type Names } from "./names.js";
import { countRecordsAfter } from "./partition_records.js";

/** What retention did after run `run`, and what the next run would free. */
export interface RetentionRecord {
  /** The run after which it was computed. */
  readonly run: number;
  /** The leader epoch that wrote it. */
  readonly epoch: number;
  readonly atMs: number;
  readonly mode: StreamRetentionMode;
  readonly viewVersionsKept: number;
  readonly extraRuns: number;
  readonly warmUpPositions: number;
  /** Per partition: the subject holds everything from here on (1: nothing was let go). */
  readonly keepFrom: readonly number[];
  /** Per partition: messages purged after this run (0 with mode off). */
  readonly purged: readonly number[];
  /** Per partition: messages the next run lets go, if it publishes (counted now). */
  readonly nextFrees: readonly number[];
  /** Why the last purge did not happen or failed part-way; null when it went through (or mode is off). */
  readonly problem: string | null;
}

const MODES = Object.values(StreamRetentionModes);

export function parseRetentionRecord(v: unknown): RetentionRecord {
  const o = fields.object(v, "stream retention record");
  return {
    run: fields.int(o, "run"),
    epoch: fields.int(o, "epoch"),
    atMs: fields.int(o, "atMs"),
    mode: fields.oneOf(o, "mode", MODES),
    viewVersionsKept: fields.int(o, "viewVersionsKept", 1),
    extraRuns: fields.int(o, "extraRuns"),
    warmUpPositions: fields.int(o, "warmUpPositions"),
    keepFrom: fields.intArray(o, "keepFrom"),
    purged: fields.intArray(o, "purged"),
    nextFrees: fields.intArray(o, "nextFrees"),
    problem: fields.stringOrNull(o, "problem"),
  };
}

/** The last retention record, or null before the first. @throws MalformedValueError */
export async function readRetention(kv: KV): Promise<RetentionRecord | null> {
  return (await readValue(kv, RETENTION_KEY, parseRetentionRecord))?.value ?? null;
}

/**
 * Writes the retention record under the leader epoch it carries. A purge is made only after this
 * write succeeds, so a deposed leader stops here. @throws FencedError when a newer leader wrote it
 */
export async function recordRetention(kv: KV, r: RetentionRecord): Promise<void> {
  await fencedWrite(kv, RETENTION_KEY, parseRetentionRecord, r.epoch, "the stream retention record", () => r);
}

/** A new leader's stamp on the retention record: a deposed leader's purge stops at its record. @returns whether it wrote */
export function stampRetention(kv: KV, epoch: number): Promise<boolean> {
  return stampEpoch(kv, RETENTION_KEY, parseRetentionRecord, epoch, "the stream retention record");
}

/** Purges partition `p`'s subject below sequence `below` (the message at `below` stays). @returns messages purged */
export async function purgePartitionBelow(jsm: JetStreamManager, names: Names, p: number, below: number): Promise<number> {
  if (below <= 1) return 0;
  const r = await jsm.streams.purge(names.eventStream, { filter: names.eventSubject(p), seq: below });
  return r.purged;
}

/** Messages on partition `p`'s subject below sequence `below`, counted now (two probe consumers). */
export async function countPartitionBelow(jsm: JetStreamManager, names: Names, p: number, below: number): Promise<number> {
  if (below <= 1) return 0;
  const all = await countRecordsAfter(jsm, names, p, 0);
  const kept = await countRecordsAfter(jsm, names, p, below - 1);
  return Math.max(0, all - kept);
}

/** The event stream's size, and the limits it was configured with (null: none). */
export interface StreamUsage {
  readonly messages: number;
  readonly bytes: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** Limits that remove messages by themselves, whatever rollback and rebuild need. */
  readonly limits: { readonly maxAgeMs: number | null; readonly maxBytes: number | null; readonly maxMsgs: number | null; readonly maxMsgsPerSubject: number | null };
}

/** Reads the event stream's size and limits. */
export async function readStreamUsage(nc: NatsConnection, names: Names): Promise<StreamUsage> {
  const info = await (await jetstreamManager(nc)).streams.info(names.eventStream);
  const positive = (n: number | undefined) => (n !== undefined && n > 0 ? n : null);
  const c = info.config;
  return {
    messages: info.state.messages,
    bytes: info.state.bytes,
    firstSeq: info.state.first_seq,
    lastSeq: info.state.last_seq,
    limits: { maxAgeMs: positive(c.max_age) === null ? null : Math.round(c.max_age / 1e6), maxBytes: positive(c.max_bytes), maxMsgs: positive(c.max_msgs), maxMsgsPerSubject: positive(c.max_msgs_per_subject) },
  };
}

/** The event stream's size with the last retention record: what `lambdactl status` shows (and metrics may). */
export interface StreamReport extends StreamUsage {
  /** Null before the first run of a coordinator that has retention. */
  readonly retention: RetentionRecord | null;
}

/** Reads the stream's size and the retention record, binding the coordinator bucket without creating it. */
export async function readStreamReport(nc: NatsConnection, names: Names): Promise<StreamReport> {
  const usage = await readStreamUsage(nc, names);
  const kv = await new Kvm(nc).open(names.coordinatorBucket);
  return { ...usage, retention: await readRetention(kv) };
}
