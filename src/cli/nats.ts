/**
 * NATS for `lambdactl ingest`, `lambdactl catalog` and what `lambdactl status` reads itself: connect, make sure the
 * cluster's event stream is there (lambdactl is a client: it never creates
 * streams or buckets, whose settings belong to the cluster), and hand back the
 * runtime's own ingest path or the cluster's catalog bucket.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { Catalog } from "../core/catalog.js";
import { ensureError } from "../core/errors.js";
import { silentLogger } from "../core/logger.js";
import { createIngest, type Ingest } from "../ingest/index.js";
import { connectNats, NatsSecurityError, NatsUrlError } from "../nats/connect.js";
import { catalogOf, readStoredCatalog } from "../nats/catalog_store.js";
import { checkSettings } from "../nats/cluster_settings.js";
import { namesFor, type Names } from "../nats/names.js";
import { readStreamReport, type StreamReport } from "../nats/stream_retention.js";
import { readArchiverLease } from "../nats/archiver_lease.js";
import type { LeaderRecord } from "../nats/leadership.js";
import type { NatsTarget } from "./connection.js";

/** NATS could not be reached at the configured URL. */
export class NatsUnreachableError extends Error {
  override readonly name = "NatsUnreachableError";
  constructor(
    readonly url: string,
    readonly from: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot connect to NATS at ${url} (from ${from}): ${ensureError(options?.cause).message}; is the cluster running?`, options);
  }
}

/** The event stream of the configured prefix does not exist on that server. */
export class EventStreamMissingError extends Error {
  override readonly name = "EventStreamMissingError";
  constructor(
    readonly stream: string,
    readonly prefix: string,
    readonly prefixFrom: string,
    readonly url: string,
  ) {
    super(
      `stream ${stream} does not exist on ${url}: no cluster with prefix ${JSON.stringify(prefix)} (from ${prefixFrom}) has started there; ` +
        "check --prefix, or start the cluster first",
    );
  }
}

/** The cluster's catalog bucket is not on that server. */
export class CatalogBucketMissingError extends Error {
  override readonly name = "CatalogBucketMissingError";
  constructor(
    readonly bucket: string,
    readonly url: string,
  ) {
    super(`the cluster on ${url} has no catalog bucket ${bucket}: it runs a version from before live catalogs; restart its roles with the new catalog file instead`);
  }
}

interface ClusterConnection {
  readonly nc: NatsConnection;
  readonly names: Names;
  close(): Promise<void>;
}

/**
 * Connects to `target` and checks its event stream (lambdactl never creates it).
 * @throws NatsUnreachableError, EventStreamMissingError.
 */
async function connectCluster(target: NatsTarget, who: string): Promise<ClusterConnection> {
  const names = namesFor(target.prefix.value);
  const nc = await connectNats(target.natsUrl.value, who, target.security).catch((err: unknown) => {
    if (err instanceof NatsUrlError || err instanceof NatsSecurityError) throw err;
    throw new NatsUnreachableError(target.natsUrl.value, target.natsUrl.from, { cause: err });
  });
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= nc.close());
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.info(names.eventStream);
  } catch (err) {
    await close();
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) {
      throw new EventStreamMissingError(names.eventStream, target.prefix.value, target.prefix.from, target.natsUrl.value);
    }
    throw err;
  }
  return { nc, names, close };
}

/** One of the cluster's buckets, bound (never created), or null when the cluster has none by that name. */
async function bindBucket(c: ClusterConnection, bucket: string): Promise<KV | null> {
  try {
    const kv = await new Kvm(c.nc).open(bucket);
    await kv.status(); // fails when the bucket's stream is not there
    return kv;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return null;
    throw err;
  }
}

/** An open ingest path; close it when done. */
export interface IngestConnection extends AsyncDisposable {
  readonly ingest: Ingest;
  /** The catalog events are validated against: the cluster's, or the file while the cluster has none. */
  readonly catalog: Catalog;
  /** Where that catalog came from, for messages. */
  readonly catalogFrom: string;
  /** Closes the NATS connection; idempotent. */
  close(): Promise<void>;
}

/**
 * Connects to `target`, checks its event stream, and validates with the catalog the cluster runs
 * (its catalog bucket), or with `fileCatalog()` while the cluster has stored none.
 * @throws NatsUnreachableError, EventStreamMissingError.
 */
export async function openIngest(target: NatsTarget, fileCatalog: () => Catalog): Promise<IngestConnection> {
  const c = await connectCluster(target, "lambdactl ingest");
  try {
    const settings = await bindBucket(c, c.names.coordinatorBucket);
    if (settings) await checkSettings(settings, target.partitions.value);
    const kv = await bindBucket(c, c.names.catalogBucket);
    const stored = kv && (await readStoredCatalog(kv));
    const catalog = stored ? catalogOf(stored.stored) : fileCatalog();
    const catalogFrom = stored ? `the cluster's catalog version ${stored.stored.version}` : target.catalog.value;
    // The command reports every refusal itself; the ingest's own log lines would repeat them.
    const ingest = createIngest({ nc: c.nc, catalog, names: c.names, partitions: target.partitions.value, log: silentLogger });
    return { ingest, catalog, catalogFrom, close: c.close, [Symbol.asyncDispose]: c.close };
  } catch (err) {
    await c.close();
    throw err;
  }
}

/** The cluster's catalog bucket; close when done. */
export interface CatalogConnection extends AsyncDisposable {
  readonly kv: KV;
  close(): Promise<void>;
}

/** @throws NatsUnreachableError, EventStreamMissingError, CatalogBucketMissingError */
export async function openCatalogBucket(target: NatsTarget): Promise<CatalogConnection> {
  const c = await connectCluster(target, "lambdactl catalog");
  const kv = await bindBucket(c, c.names.catalogBucket).catch(async (err: unknown) => {
    await c.close();
    throw err;
  });
  if (!kv) {
    await c.close();
    throw new CatalogBucketMissingError(c.names.catalogBucket, target.natsUrl.value);
  }
  return { kv, close: c.close, [Symbol.asyncDispose]: c.close };
}

/** What `lambdactl status` reads from NATS itself. */
export interface ClusterNatsState {
  readonly stream: StreamReport;
  /** The archiver lease key (nats/archiver_lease.ts); null when no archiver ever held it. */
  readonly archiverLease: LeaderRecord | null;
}

/**
 * The event stream's size, its last retention record (nats/stream_retention.ts) and the archiver
 * lease, read once. @throws NatsUnreachableError, EventStreamMissingError, MalformedValueError
 */
export async function readClusterNats(target: NatsTarget): Promise<ClusterNatsState> {
  const c = await connectCluster(target, "lambdactl status");
  try {
    const stream = await readStreamReport(c.nc, c.names);
    const kv = await bindBucket(c, c.names.archiverBucket);
    const lease = kv && (await readArchiverLease(kv));
    return { stream, archiverLease: lease?.value ?? null };
  } finally {
    await c.close();
  }
}
