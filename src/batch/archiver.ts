/**
 * The archiver: appends every event of the stream to the master dataset in
 * ClickHouse, exactly once, and records for each barrier that everything below
 * it is flushed.
 *
 * Exactly once without ClickHouse's help (non-replicated tables do not dedupe
 * retried inserts): the archiver's position per (source table, partition) is
 * the highest sequence that table holds. It resumes from the lowest of those
 * positions and skips, per table, every record at or below that table's own
 * position, so neither a restart nor a retried insert writes a row twice.
 * Batch runs also dedupe by event id, which covers copies the stream itself
 * holds (a producer retry after the duplicate window).
 *
 * Rows go in through the process's master inserter (src/ch/master_insert.ts):
 * RowBinary on chDB, JSONEachRow on a ClickHouse server; one flush is one
 * INSERT per source.
 *
 * States: starting → running → stopping → closed.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { DeliverPolicy, jetstream, type ConsumerMessages } from "@nats-io/jetstream";
import type { Catalog } from "../core/catalog.js";
import type { CatalogFeed } from "../nats/catalog_store.js";
import { ensureError } from "../core/errors.js";
import { closeable, type Closeable } from "../core/lifecycle.js";
import type { Logger } from "../core/logger.js";
import type { ArchiverProgress } from "../core/records.js";
import { queryRows, type ChHandle } from "../ch/client.js";
import type { MasterRow } from "../ch/master_insert.js";
import { ensureSchema } from "../ch/schema.js";
import { decodeRecord } from "../nats/codec.js";
import { startHeartbeat } from "../nats/heartbeat.js";
import { getValue, putValue } from "../nats/kv.js";
import { partitionKey, type Names } from "../nats/names.js";
import { openBuckets } from "../nats/setup.js";
import { archivedHeadsSql } from "./sql.js";

export interface ArchiverOptions {
  /** Member id for the heartbeat. */
  nodeId: string;
  heartbeatIntervalMs: number;
  partitions: number;
  database: string;
  /** Flush at least this often while rows are buffered. */
  flushIntervalMs: number;
  /** Flush once this many rows are buffered. */
  flushRows: number;
}

export interface ArchiverDeps {
  nc: NatsConnection;
  /** Reads the heads through `ch.client`, inserts through `ch.master`. */
  ch: ChHandle;
  /** The catalog at start. */
  catalog: Catalog;
  /** Newer catalog versions (nats/catalog_store): tables for new sources and fields are made before their events go in. */
  catalogFeed?: CatalogFeed;
  names: Names;
  log: Logger;
}

export interface ArchiverStats {
  /** Rows inserted since start. */
  readonly rowsArchived: number;
  /** Records skipped because their table already held them. */
  readonly rowsSkipped: number;
  /** Highest archived sequence per source table and partition. */
  readonly heads: Readonly<Record<string, readonly number[]>>;
}

/** close() flushes what is buffered and stops. */
export interface Archiver extends Closeable {
  stats(): ArchiverStats;
}

interface PendingBarrier {
  partition: number;
  run: number;
  seq: number;
}

/** Retry delay after a failed insert. */
const INSERT_RETRY_MS = 500;
/**
 * Messages each partition's consumer asks for at once, and asks again for half of them
 * once half have arrived. The client's default (100, topped up by 25) sends one pull
 * request per 25 events: at archiver rates that is thousands of socket writes a second,
 * a third of the process's busy time in the profile.
 */
export const ARCHIVER_PULL_MESSAGES = 2_000;

export async function createArchiver(deps: ArchiverDeps, opts: ArchiverOptions): Promise<Archiver> {
  const log = deps.log.child({ component: "archiver" });
  let catalog = deps.catalog;
  const { client: ch, master } = deps.ch;
  await ensureSchema(ch, opts.database, catalog);
  const buckets = await openBuckets(deps.nc, deps.names);
  const js = jetstream(deps.nc);

  // heads[source][p]: highest sequence that source's table holds for p.
  const heads: Record<string, number[]> = {};
  const loadHeads = async (source: string, def = catalog.sources.get(source)!) => {
    const h = new Array<number>(opts.partitions).fill(0);
    const rows = await queryRows<{ partition: number; seq: number | string }>(ch, archivedHeadsSql(opts.database, def));
    for (const r of rows) if (r.partition < opts.partitions) h[r.partition] = Number(r.seq);
    heads[source] = h;
  };
  for (const s of catalog.sources.keys()) await loadHeads(s);

  const countFields = (c: Catalog) => new Map([...c.sources].map(([name, s]) => [name, Object.keys(s.fields).length]));
  let fieldsPerSource = countFields(catalog);
  // A newer catalog: its tables and columns first, then its sources' heads, then its events.
  let adopting: Promise<void> = Promise.resolve();
  const adopt = (next: Catalog) => {
    const step = adopting.then(async () => {
      if (next === catalog) return;
      await ensureSchema(ch, opts.database, next);
      for (const [name, def] of next.sources) if (!heads[name]) await loadHeads(name, def);
      catalog = next;
      fieldsPerSource = countFields(next);
    });
    adopting = step.catch(() => undefined); // a failed step is retried by the next call, not inherited
    return step;
  };
  const unsubscribe = deps.catalogFeed?.subscribe((next) => adopt(next));
  /**
   * An event of a source or with a field the catalog in use lacks: a newer version may define it.
   * Its tables must exist before the event goes in, so this waits (and retries) rather than skip it.
   */
  const catchUp = async () => {
    while (deps.catalogFeed && !stopping) {
      try {
        await adopt(await deps.catalogFeed.refresh());
        return;
      } catch (err) {
        log.error("cannot make the tables of a newer catalog version; retrying", { err: ensureError(err) });
        await new Promise((r) => setTimeout(r, INSERT_RETRY_MS));
      }
    }
  };
  const fieldCount = (v: Record<string, unknown>) => {
    let n = 0;
    for (const _ in v) n++;
    return n;
  };

  let buffer = new Map<string, MasterRow[]>();
  let buffered = 0;
  let barriers: PendingBarrier[] = [];
  let rowsArchived = 0;
  let rowsSkipped = 0;
  let stopping = false;

  const insertRows = async (source: string, rows: MasterRow[]) => {
    const def = catalog.sources.get(source)!;
    for (;;) {
      try {
        await master.insert(opts.database, def, rows);
        return;
      } catch (err) {
        log.error("insert into the master dataset failed; retrying without the rows that landed", { source, rows: rows.length, err: ensureError(err) });
        await new Promise((r) => setTimeout(r, INSERT_RETRY_MS));
        // The insert may have landed before the error: keep only what the table lacks.
        // If ClickHouse cannot even say, keep every row and ask again next time round.
        const known = await loadHeads(source).then(
          () => true,
          (e) => (log.error("cannot read the master table's heads; retrying", { source, err: ensureError(e) }), false),
        );
        if (!known) continue;
        const h = heads[source]!;
        rows = rows.filter((r) => r.seq > h[r.partition]!);
        if (rows.length === 0) return;
      }
    }
  };

  const recordBarrier = async (b: PendingBarrier) => {
    const key = partitionKey(b.partition);
    const current = await getValue<ArchiverProgress>(buckets.archiver, key);
    if (current && current.value.run >= b.run) return;
    const progress: ArchiverProgress = { partition: b.partition, run: b.run, barrierSeq: b.seq, atMs: Date.now() };
    await putValue(buckets.archiver, key, progress);
  };

  let flushing: Promise<void> = Promise.resolve();
  // At most one flush waits behind the running one: it takes whatever has accumulated by the
  // time it starts, so inserts stay large instead of one small insert per arriving event.
  let queued: Promise<void> | undefined;
  const flush = (): Promise<void> => {
    if (queued) return queued;
    queued = flushing = flushing.then(async () => {
      queued = undefined;
      if (buffered === 0 && barriers.length === 0) return;
      const batch = buffer;
      const done = barriers;
      buffer = new Map();
      buffered = 0;
      barriers = [];
      for (const [source, rows] of batch) await insertRows(source, rows);
      // Heads move only once the whole batch is in: a head at s means every event up to s is archived.
      for (const [source, rows] of batch) {
        const h = heads[source]!;
        for (const r of rows) if (r.seq > h[r.partition]!) h[r.partition] = r.seq;
        rowsArchived += rows.length;
      }
      // Every row below these barriers was buffered before them, so it is in now.
      for (const [i, b] of done.entries()) {
        try {
          await recordBarrier(b);
        } catch (err) {
          // Try again with the next flush; the batch run waits for it.
          barriers.unshift(...done.slice(i));
          log.warn("could not record a flushed barrier; retrying with the next flush", { run: b.run, partition: b.partition, err: ensureError(err) });
          break;
        }
      }
    }).catch((err) => log.error("archiver flush failed", { err: ensureError(err) }));
    return queued;
  };

  const timer = setInterval(() => void flush(), opts.flushIntervalMs);

  const consumers: ConsumerMessages[] = [];
  const loops: Promise<void>[] = [];
  for (let p = 0; p < opts.partitions; p++) {
    const from = Math.min(...Object.values(heads).map((h) => h[p]!));
    const consumer = await js.consumers.get(deps.names.eventStream, {
      filter_subjects: deps.names.eventSubject(p),
      ...(from > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from + 1 } : { deliver_policy: DeliverPolicy.All }),
    });
    const messages = await consumer.consume({ max_messages: ARCHIVER_PULL_MESSAGES, threshold_messages: ARCHIVER_PULL_MESSAGES / 2 });
    consumers.push(messages);
    loops.push(
      (async () => {
        for await (const m of messages) {
          const rec = decodeRecord(m.data);
          if (!rec) {
            log.warn("skipping a stream record that is neither an event nor a barrier", { partition: p, seq: m.seq });
            continue;
          }
          if (rec.k === "b") {
            barriers.push({ partition: p, run: rec.r, seq: m.seq });
            void flush();
            continue;
          }
          // Ingest writes every field of its catalog version: more fields than ours means a newer version.
          const known = fieldsPerSource.get(rec.s);
          if (known === undefined || fieldCount(rec.v) > known) await catchUp();
          const h = heads[rec.s];
          if (!h) {
            log.warn("skipping an event of a source the catalog does not define", { partition: p, seq: m.seq, source: rec.s });
            continue;
          }
          if (m.seq <= h[p]!) {
            rowsSkipped++;
            continue;
          }
          const row: MasterRow = { partition: p, seq: m.seq, id: rec.id, fields: rec.v };
          let rows = buffer.get(rec.s);
          if (!rows) buffer.set(rec.s, (rows = []));
          rows.push(row);
          if (++buffered >= opts.flushRows) void flush();
        }
      })().catch((err) => {
        if (!stopping) log.error("archiver consume loop failed", { partition: p, err: ensureError(err) });
      }),
    );
  }
  // The heartbeat carries how far the archiver got per partition, for lag in `lambdactl status`.
  const archivedHeads = () => Array.from({ length: opts.partitions }, (_, p) => Math.max(0, ...Object.values(heads).map((h) => h[p]!)));
  const heartbeat = await startHeartbeat(buckets.members, "archiver", opts.nodeId, opts.heartbeatIntervalMs, log, () => ({ archived: archivedHeads() }));
  log.info("archiver running", { partitions: opts.partitions });

  const lifecycle = closeable(async () => {
      stopping = true;
      unsubscribe?.();
      clearInterval(timer);
      await Promise.all(consumers.map((c) => c.close().catch(() => undefined))); // best effort: ephemeral consumers
      await Promise.all(loops);
      await flush();
      await heartbeat.stop();
      log.info("archiver closed", { rowsArchived });
  });
  return {
    stats: () => ({ rowsArchived, rowsSkipped, heads: Object.fromEntries(Object.entries(heads).map(([s, h]) => [s, [...h]])) }),
    ...lifecycle,
  };
}
