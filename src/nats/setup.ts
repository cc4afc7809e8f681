/**
 * Creates (or binds to) the streams, KV buckets and object store the runtime
 * uses. Every role calls it at start; it is idempotent.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { Names } from "./names.js";

export interface Buckets {
  readonly watermark: KV;
  readonly members: KV;
  readonly assignments: KV;
  readonly archiver: KV;
  readonly coordinator: KV;
  /** Speed-actor snapshots (chunks and a manifest per partition). */
  readonly snapshots: KV;
  /** The catalog the cluster runs; older versions kept as history. */
  readonly catalog: KV;
}

/** Catalog versions the catalog bucket keeps (the current one included). */
export const CATALOG_HISTORY = 16;

export interface StreamOptions {
  /** Retried publishes with the same event id inside this window are dropped. */
  duplicateWindowMs: number;
  /** Stream replicas (1 for a single server). @default 1 */
  replicas?: number;
}

async function ensureStream(jsm: JetStreamManager, name: string, subjects: string[], opts: StreamOptions): Promise<void> {
  try {
    await jsm.streams.info(name);
    return;
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound) throw err;
  }
  await jsm.streams.add({
    name,
    subjects,
    storage: "file",
    retention: "limits",
    num_replicas: opts.replicas ?? 1,
    duplicate_window: opts.duplicateWindowMs * 1_000_000,
  } as Parameters<JetStreamManager["streams"]["add"]>[0]);
}

/** Ensures the event stream and the dead-letter stream exist. */
export async function ensureStreams(nc: NatsConnection, names: Names, opts: StreamOptions): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, names.eventStream, [names.eventSubjects], opts);
  await ensureStream(jsm, names.deadLetterStream, [names.deadLetterSubject], opts);
}

/** Opens (creating when missing) every KV bucket. */
export async function openBuckets(nc: NatsConnection, names: Names, replicas = 1): Promise<Buckets> {
  const kvm = new Kvm(nc);
  const open = (name: string, history: number) => kvm.create(name, { history, replicas });
  const [watermark, members, assignments, archiver, coordinator, snapshots, catalog] = await Promise.all([
    open(names.watermarkBucket, 1),
    open(names.membersBucket, 1),
    open(names.assignmentsBucket, 1),
    open(names.archiverBucket, 1),
    open(names.coordinatorBucket, 1),
    open(names.snapshotBucket, 1),
    open(names.catalogBucket, CATALOG_HISTORY),
  ]);
  return { watermark, members, assignments, archiver, coordinator, snapshots, catalog };
}

/** Last sequence of each partition subject in the event stream (0 when empty). */
export async function partitionHeads(nc: NatsConnection, names: Names, partitions: number): Promise<number[]> {
  const jsm = await jetstreamManager(nc);
  const heads: number[] = [];
  for (let p = 0; p < partitions; p++) {
    // null: no message on that subject yet.
    const m = await jsm.streams.getMessage(names.eventStream, { last_by_subj: names.eventSubject(p) });
    heads.push(m?.seq ?? 0);
  }
  return heads;
}
