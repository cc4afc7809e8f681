/**
 * Creates (or binds to) the streams, KV buckets and object store the runtime
 * uses. Every role calls it at start; it is idempotent. Under least-privilege users
 * (nats/permissions.ts) only the coordinator may create them: another role that finds one
 * missing waits for it (`SetupWait`) instead of failing, so pods started together come up in
 * any order.
 */
import { PermissionViolationError, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { Logger } from "../core/logger.js";
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

/** Replicas of what this cluster creates on a NATS cluster: a majority survives one lost server. */
export const CLUSTER_REPLICAS = 3;

/**
 * How many replicas the streams and buckets this cluster creates get: `configured` when set
 * (LAMBDA_NATS_REPLICAS); else 1 on a single server and up to CLUSTER_REPLICAS on a cluster, as
 * the server the connection is on describes itself (its cluster name and its nodes' client URLs).
 */
export function streamReplicas(nc: NatsConnection, configured = 0): number {
  if (configured > 0) return configured;
  const info = nc.info;
  if (!info?.cluster) return 1;
  return Math.max(1, Math.min(CLUSTER_REPLICAS, info.connect_urls?.length ?? 1));
}

/** How a role that may not create a stream or bucket waits for the coordinator to create it. */
export interface SetupWait {
  /** Give up after this long, in ms (LAMBDA_NATS_SETUP_WAIT_MS). */
  readonly timeoutMs: number;
  /** Says once per stream or bucket that it waits, and why. */
  readonly log?: Logger;
  /** Poll period. @default 500 */
  readonly intervalMs?: number;
}

/** Without a SetupWait: a refused creation fails at once. */
export const NO_WAIT: SetupWait = { timeoutMs: 0 };

/** A stream or bucket this role may not create was still missing at the deadline. */
export class NatsSetupMissingError extends Error {
  constructor(
    readonly what: string,
    readonly waitedMs: number,
    options?: ErrorOptions,
  ) {
    super(
      `${what} does not exist, this NATS user may not create it, and no coordinator created it within ${waitedMs} ms ` +
        "(LAMBDA_NATS_SETUP_WAIT_MS): start a coordinator, whose user may create streams and buckets",
      options,
    );
    this.name = "NatsSetupMissingError";
  }
}

/** How long a creation waits for a cluster still forming to know enough peers to place its replicas. */
export const PLACEMENT_WAIT_MS = 15_000;
/** Pause between creations refused for want of peers. */
const PLACEMENT_RETRY_MS = 250;
/** JetStream's "no suitable peers for placement": its meta leader knows too few current peers yet. */
const NO_SUITABLE_PEERS = 10005;

/**
 * Runs `create`, again while JetStream says it has no suitable peers for placement (a cluster
 * whose nodes have just started: the first role to create R3 streams was refused 275 ms after
 * start), up to `waitMs`. @throws the last error, or any other at once
 */
export async function whenPlaceable<T>(create: () => Promise<T>, waitMs = PLACEMENT_WAIT_MS): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await create();
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === NO_SUITABLE_PEERS) || Date.now() >= deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, PLACEMENT_RETRY_MS));
  }
}

function isPermissionViolation(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) if (e instanceof PermissionViolationError) return true;
  return false;
}

/**
 * Runs `create` (which binds to what exists and creates what is missing). When the server refuses
 * the creation as a permission violation, polls `exists` (a read every role may make, and which
 * the server does not log as a violation: the stream's info) until a coordinator has created it,
 * then runs `create` again to bind. A creation a forming cluster cannot place yet is tried again
 * ({@link whenPlaceable}).
 * @param isFinal errors of `create` that no wait can mend (thrown at once, also while waiting)
 * @throws NatsSetupMissingError at the deadline; any other error of `create` at once
 */
export async function createOrAwait<T>(exists: () => Promise<unknown>, what: string, createNow: () => Promise<T>, wait: SetupWait, isFinal: (err: unknown) => boolean = () => false): Promise<T> {
  const create = () => whenPlaceable(createNow);
  try {
    return await create();
  } catch (err) {
    if (!isPermissionViolation(err)) throw err;
    if (wait.timeoutMs <= 0) throw new NatsSetupMissingError(what, 0, { cause: err });
    wait.log?.info(`waiting for a coordinator to create ${what}: this NATS user may not create it`, { component: "nats", timeout_ms: wait.timeoutMs });
  }
  const started = Date.now();
  let last: unknown;
  for (;;) {
    try {
      await exists();
      return await create();
    } catch (err) {
      if (isFinal(err)) throw err;
      // Not there yet, or the server busy electing a leader for it: both pass with time.
      last = err;
    }
    const waited = Date.now() - started;
    if (waited >= wait.timeoutMs) throw new NatsSetupMissingError(what, waited, { cause: last });
    await new Promise((r) => setTimeout(r, Math.min(wait.intervalMs ?? 500, wait.timeoutMs - waited)));
  }
}

export interface StreamOptions {
  /** Retried publishes with the same event id inside this window are dropped. */
  duplicateWindowMs: number;
  /** Stream replicas. @default streamReplicas(nc) */
  replicas?: number;
  /** Warns about a stream that exists with another replica count. */
  log?: Logger;
  /** Waiting for a stream this user may not create. @default fail at once */
  wait?: SetupWait;
}

async function ensureStream(jsm: JetStreamManager, name: string, subjects: string[], opts: StreamOptions & { replicas: number }): Promise<void> {
  await createOrAwait(() => jsm.streams.info(name), `stream ${name}`, () => bindOrAddStream(jsm, name, subjects, opts), opts.wait ?? NO_WAIT);
}

/** Binds to the stream (warning when its replica count differs), or adds it when missing. */
async function bindOrAddStream(jsm: JetStreamManager, name: string, subjects: string[], opts: StreamOptions & { replicas: number }): Promise<void> {
  try {
    const info = await jsm.streams.info(name);
    warnOnReplicas(opts.log, `stream ${name}`, info.config.num_replicas, opts.replicas);
    return;
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound) throw err;
  }
  await jsm.streams.add({
    name,
    subjects,
    storage: "file",
    retention: "limits",
    num_replicas: opts.replicas,
    duplicate_window: opts.duplicateWindowMs * 1_000_000,
  } as Parameters<JetStreamManager["streams"]["add"]>[0]);
}

/** Existing streams and buckets keep their replica count (changing it is an operator's move): say so when it differs. */
function warnOnReplicas(log: Logger | undefined, what: string, has: number, wanted: number): void {
  if (has !== wanted) {
    log?.warn(`${what} exists with ${has} replica(s), not the ${wanted} this node would create; it keeps ${has} (change it with \`nats stream edit --replicas\`)`, { has, wanted });
  }
}

/** Ensures the event stream and the dead-letter stream exist. */
export async function ensureStreams(nc: NatsConnection, names: Names, opts: StreamOptions): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const o = { ...opts, replicas: opts.replicas ?? streamReplicas(nc) };
  await ensureStream(jsm, names.eventStream, [names.eventSubjects], o);
  await ensureStream(jsm, names.deadLetterStream, [names.deadLetterSubject], o);
}

/**
 * Opens (creating when missing) every KV bucket, with `replicas` (default streamReplicas(nc)).
 * With `log`, warns about a bucket that exists with another replica count. A bucket this user
 * may not create is waited for as `wait` says (default: fail at once).
 */
export async function openBuckets(nc: NatsConnection, names: Names, replicas = streamReplicas(nc), log?: Logger, wait: SetupWait = NO_WAIT): Promise<Buckets> {
  const kvm = new Kvm(nc);
  // Only a wait for a missing bucket reads stream info: the manager is made then, not at every start.
  let jsm: Promise<JetStreamManager> | undefined;
  const streamInfo = (stream: string) => () => (jsm ??= jetstreamManager(nc)).then((m) => m.streams.info(stream));
  const open = async (name: string, history: number) => {
    // Reads go to the bucket's stream leader (STREAM.MSG.GET), not a direct get that any replica
    // answers: after hard bounces (the fault matrix's F8, F14) a replica of nats-server 2.9 stayed
    // behind, and every compare-and-set read from it lost to the leader's newer revision, so no
    // batch run could record itself again.
    const kv = await createOrAwait(streamInfo(`KV_${name}`), `KV bucket ${name}`, () => kvm.create(name, { history, replicas, allow_direct: false }), wait);
    if (log) warnOnReplicas(log, `KV bucket ${name}`, (await kv.status()).replicas, replicas);
    return kv;
  };
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
  // Asked at once: a metrics scrape or a status call waits one round trip, not one per partition.
  return Promise.all(
    Array.from({ length: partitions }, async (_, p) => {
      // null: no message on that subject yet.
      const m = await jsm.streams.getMessage(names.eventStream, { last_by_subj: names.eventSubject(p) });
      return m?.seq ?? 0;
    }),
  );
}
