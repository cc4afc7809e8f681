/**
 * The archive writer: what the archiver holding the lease (batch/archiver.ts)
 * runs while it holds it. Appends every event of the stream to the master
 * dataset in ClickHouse, exactly once, and records for each barrier that
 * everything below it is flushed.
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
 * INSERT per source (batch/master_append.ts), after the stream's leader confirmed
 * each partition's rows are where the consumers said (batch/history_check.ts).
 *
 * Fenced by the lease: an insert starts only while the lease holds on this
 * process's monotonic clock (checked right before each INSERT), and progress is
 * written with the lease epoch, which the store refuses once a newer holder
 * stamped its own (nats/archiver_progress.ts). A writer that lost the lease
 * stops where it is: what it buffered is dropped, never flushed; the next
 * holder reads the heads from the tables and consumes from there.
 *
 * States: starting → running → stopping → closed.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import type { Catalog } from "../core/catalog.js";
import type { CatalogFeed } from "../nats/catalog_store.js";
import { ensureError } from "../core/errors.js";
import { closeable, type Closeable } from "../core/lifecycle.js";
import type { Logger } from "../core/logger.js";
import { queryRows, type ChHandle } from "../ch/client.js";
import { DeadLetterStages, deadLetterMsgId, type DeadLetter } from "../core/dead_letter.js";
import type { FieldProblem } from "../core/errors.js";
import { masterBatch, type MasterBatch, type MasterRow } from "../ch/master_insert.js";
import { ensureSchema } from "../ch/schema.js";
import { encodeDeadLetter, eventMsgId } from "../nats/codec.js";
import { createStreamChecker, describeProblems, skipReporter } from "../nats/stream_check.js";
import { recordArchiverProgress, stampArchiverProgress } from "../nats/archiver_progress.js";
import { createBarrierCheck, type BarrierSeen, type BarrierVerdict } from "../nats/barrier_check.js";
import type { Names } from "../nats/names.js";
import type { Buckets } from "../nats/setup.js";
import { FencedError } from "../nats/kv.js";
import { consumePartition, type PartitionConsumer } from "../nats/consumer_health.js";
import { streamPositionReader, type PositionReader } from "../nats/stream_position.js";
import { wrongHistories } from "./history_check.js";
import { appendRows, type AppendDeps } from "./master_append.js";
import { archivedHeadsSql } from "./sql.js";
import type { Observability } from "../core/metrics.js";

/** The options the writer runs with. */
export interface WriterOptions {
  partitions: number;
  database: string;
  /** Flush at least this often while rows are buffered. */
  flushIntervalMs: number;
  /** Flush once this many rows are buffered. */
  flushRows: number;
}

/** What the writer runs on; the archiver (batch/archiver.ts) opens `buckets` once per process. */
export interface WriterDeps {
  buckets: Buckets;
  nc: NatsConnection;
  /** Where the stream's leader holds a sequence (nats/stream_position.ts); tests replace it to make a wrong history. */
  positions?: PositionReader;
  /** Reads the heads through `ch.client`, inserts through `ch.master`. */
  ch: ChHandle;
  /** The catalog at start. */
  catalog: Catalog;
  /** Newer catalog versions (nats/catalog_store): tables for new sources and fields are made before their events go in. */
  catalogFeed?: CatalogFeed;
  names: Names;
  log: Logger;
  /** The process's metrics (archived sequence per partition, rows by outcome) and readiness (a consume loop that died). */
  observe?: Observability;
}

/** What the writer needs of the lease it runs under. */
export interface WriterFence {
  /** The lease epoch this writer archives under; its progress records carry it. */
  readonly epoch: number;
  /** Whether the lease still holds now, on this process's monotonic clock; false while paused past it. */
  holds(): boolean;
  /** A progress write was refused because a newer holder wrote: this archiver must stop holding. */
  fenced(err: FencedError): void;
}


export interface ArchiverStats {
  /** Rows inserted since start (not counting those ClickHouse refused). */
  readonly rowsArchived: number;
  /** Records skipped because their table already held them. */
  readonly rowsSkipped: number;
  /** Stream records skipped as invalid (core/events validateStreamEvent) and dead-lettered. */
  readonly recordsInvalid: number;
  /** Valid events ClickHouse refused to store, dead-lettered. */
  readonly rowsRefused: number;
  /** Barriers passed over because no batch run wrote them (nats/barrier_check.ts): no progress is recorded at them. */
  readonly barriersIgnored: number;
  /** Flushes of a partition held back because the stream holds its events at other positions than the consumer said; read again. */
  readonly historyMismatches: number;
  /** Highest archived sequence per source table and partition. */
  readonly heads: Readonly<Record<string, readonly number[]>>;
  /** Per partition, the last stream sequence read (ahead of the heads by what is buffered); empty before it first held the lease. */
  readonly read: readonly number[];
  /** Rows read and waiting for the next flush (not those of an insert under way); at most MAX_BUFFERED_FLUSHES × flushRows, give or take one per partition. */
  readonly rowsBuffered: number;
}

/** close() flushes what is buffered (while the lease holds) and stops. */
export interface ArchiveWriter extends Closeable {
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

/**
 * The consumers stop reading once this many times `flushRows` rows wait behind a running insert
 * (a slow or failing ClickHouse), until the next flush takes them: memory stays bounded while the
 * reading overlaps the inserts.
 */
const MAX_BUFFERED_FLUSHES = 4;

/**
 * Starts archiving under `fence`: stamps its epoch on the progress keys (fencing off every older
 * holder), reads the heads from the tables, and consumes every partition from there.
 * @throws FencedError when a newer holder stamped first; the caller's lease is lost then.
 */
export async function startArchiveWriter(deps: WriterDeps, opts: WriterOptions, fence: WriterFence): Promise<ArchiveWriter> {
  const log = deps.log;
  let catalog = deps.catalog;
  const { client: ch, master, layout } = deps.ch;
  const { buckets } = deps;
  // Before anything else this holder writes: from here on an older holder's progress writes are refused.
  await stampArchiverProgress(buckets.archiver, opts.partitions, fence.epoch, Date.now());
  await ensureSchema(ch, opts.database, catalog, layout);
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

  // A newer catalog: its tables and columns first, then its sources' heads, then its events.
  let adopting: Promise<void> = Promise.resolve();
  const adopt = (next: Catalog) => {
    const step = adopting.then(async () => {
      if (next === catalog) return;
      await ensureSchema(ch, opts.database, next, layout);
      for (const [name, def] of next.sources) if (!heads[name]) await loadHeads(name, def);
      catalog = next;
    });
    adopting = step.catch(() => undefined); // a failed step is retried by the next call, not inherited
    return step;
  };
  const unsubscribe = deps.catalogFeed?.subscribe((next) => adopt(next));
  // Every retry wait ends at once on close(): what is not archived then is read again after a restart.
  const stop = new AbortController();
  const pause = (ms: number) => delay(ms, undefined, { signal: stop.signal }).catch(() => undefined); // aborted by close(): stop waiting
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
        await pause(INSERT_RETRY_MS);
      }
    }
  };
  const reportSkip = skipReporter(log);
  const checkRecord = createStreamChecker({ catalog: () => catalog, refresh: catchUp, partitions: opts.partitions });

  // Per source, the rows since the last flush, held as the inserter sends them (RowBinary bytes on chDB).
  let buffer = new Map<string, MasterBatch>();
  let buffered = 0;
  /** Per partition: the last sequence read, and a generation that a history found wrong moves on. */
  const readers = Array.from({ length: opts.partitions }, () => ({ handled: 0, generation: 0, droppedSerial: 0 }));
  const positions = deps.positions ?? streamPositionReader(deps.nc, deps.names.eventStream);
  let historyMismatches = 0;
  let barriers: PendingBarrier[] = [];
  let rowsArchived = 0;
  let rowsSkipped = 0;
  let recordsInvalid = 0;
  let rowsRefused = 0;
  let barriersIgnored = 0;
  let stopping = false;
  // A forged barrier of a high run would say "flushed through run r" early and let a batch run skip events.
  const barrierCheck = createBarrierCheck(buckets, log);
  /** The verdict on a barrier, asking again while the run history cannot be read; undefined once close() stops it. */
  const checkBarrier = async (b: BarrierSeen): Promise<BarrierVerdict | undefined> => {
    while (!stopping) {
      try {
        return await barrierCheck.check(b, stop.signal);
      } catch (err) {
        if (stopping) return undefined;
        log.error("cannot read the run history to check a barrier; retrying", { partition: b.partition, seq: b.seq, run: b.run, err: ensureError(err) });
        await pause(INSERT_RETRY_MS);
      }
    }
    return undefined;
  };

  /** Only the archiver writes dead letters for stream positions (speed nodes publish no more than snapshots and heartbeats). */
  const deadLetter = async (letter: Omit<DeadLetter, "refusedAt" | "field" | "reason">, partition: number, seq: number) => {
    const first = letter.problems[0]!;
    const record: DeadLetter = { ...letter, field: first.field, reason: first.reason, refusedAt: new Date().toISOString() };
    try {
      await js.publish(deps.names.deadLetterSubject, encodeDeadLetter(record, deps.nc.info?.max_payload), { msgID: deadLetterMsgId(letter.stage, partition, seq) });
    } catch (err) {
      // The record is skipped either way (both layers skip it); only its dead letter is lost.
      log.error("could not write a dead letter", { stage: letter.stage, partition, seq, reason: describeProblems(letter.problems), err: ensureError(err) });
    }
  };

  /** What inserting through batch/master_append.ts needs of this writer. */
  const appendDeps: AppendDeps = {
    master,
    database: opts.database,
    holds: () => fence.holds(),
    epoch: fence.epoch,
    stopping: () => stopping,
    pause: () => pause(INSERT_RETRY_MS),
    reloadHeads: async (source) => {
      await loadHeads(source);
      return heads[source]!;
    },
    refused: async (source, row, err) => {
      rowsRefused++;
      const problems: FieldProblem[] = [{ field: "(row)", reason: `ClickHouse refused the row: ${err.message}` }];
      log.warn("ClickHouse refused a row; dead-lettering it and archiving the rest", { source, partition: row.partition, seq: row.seq, id: row.id, err });
      await deadLetter({ stage: DeadLetterStages.archive, source, raw: row.fields, problems, eventId: row.id, partition: row.partition, seq: row.seq }, row.partition, row.seq);
    },
    log,
  };

  const recordBarrier = (b: PendingBarrier) => recordArchiverProgress(buckets.archiver, { partition: b.partition, run: b.run, barrierSeq: b.seq, atMs: Date.now() }, fence.epoch);

  /**
   * Drops what partition `p`'s consumer delivered past the archived head, and reads it again
   * with a new consumer from there: rows are only archived where the stream holds them.
   */
  const readAgain = (p: number, reason: string) => {
    historyMismatches++;
    const from = Math.min(...Object.values(heads).map((h) => h[p]!));
    log.error("the stream holds partition's events at other positions than its consumer delivered them; reading it again from the archived head", { partition: p, from, reason });
    const r = readers[p]!;
    r.generation++;
    r.handled = from;
    // What the current consumer still hands over is from the wrong history too.
    r.droppedSerial = consumers[p]?.serial() ?? 0;
    for (const [source, rows] of buffer) {
      const kept = rows.filter((partition) => partition !== p);
      buffered -= rows.length - kept.length;
      buffer.set(source, kept);
    }
    barriers = barriers.filter((b) => b.partition !== p);
    consumers[p]?.restart(`its history differs from the stream's (${reason})`);
  };

  // Consume loops waiting for the buffer to be taken by a flush (MAX_BUFFERED_FLUSHES).
  let room: { promise: Promise<void>; release: () => void } | null = null;
  const waitForRoom = (): Promise<void> => {
    if (!room) {
      let release!: () => void;
      const promise = new Promise<void>((r) => (release = r));
      room = { promise, release };
    }
    return room.promise;
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
      let batch = buffer;
      let done = barriers;
      buffer = new Map();
      buffered = 0;
      barriers = [];
      room?.release();
      room = null;
      const wrong = await wrongHistories(batch, positions, (p) => deps.names.eventSubject(p));
      if (wrong.size > 0) {
        for (const [p, reason] of wrong) readAgain(p, reason);
        batch = new Map([...batch].map(([source, rows]) => [source, rows.filter((partition) => !wrong.has(partition))]));
        done = done.filter((b) => !wrong.has(b.partition));
      }
      for (const [source, rows] of batch) {
        // Stopped part-way: heads and barriers stay where they were; a restart reads these rows again.
        if (!(await appendRows(appendDeps, source, rows))) return;
      }
      // Heads move only once the whole batch is in: a head at s means every event up to s is archived.
      for (const [source, rows] of batch) {
        const h = heads[source]!;
        for (let i = 0; i < rows.length; i++) {
          const p = rows.partitionAt(i);
          const seq = rows.seqAt(i);
          if (seq > h[p]!) h[p] = seq;
        }
        rowsArchived += rows.length;
      }
      // Every row below these barriers was buffered before them, so it is in now.
      for (const [i, b] of done.entries()) {
        if (!fence.holds()) {
          // Recorded once the lease is renewed (or never, by this writer, once it is lost).
          barriers.unshift(...done.slice(i));
          break;
        }
        try {
          await recordBarrier(b);
        } catch (err) {
          if (err instanceof FencedError) {
            log.error("a newer archiver holds the lease: progress not recorded; this archiver stops writing", { run: b.run, partition: b.partition, epoch: fence.epoch, err });
            fence.fenced(err);
            break;
          }
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

  const consumers: PartitionConsumer[] = [];
  const loops: Promise<void>[] = [];
  for (let p = 0; p < opts.partitions; p++) {
    // Every source's head is archived up to here; a replaced consumer starts after the last record read.
    const reader = readers[p]!;
    reader.handled = Math.min(...Object.values(heads).map((h) => h[p]!));
    const consumer = consumePartition({
      nc: deps.nc,
      stream: deps.names.eventStream,
      subject: deps.names.eventSubject(p),
      handledSeq: () => reader.handled,
      batch: { max_messages: ARCHIVER_PULL_MESSAGES, threshold_messages: ARCHIVER_PULL_MESSAGES / 2 },
      log: log.child({ partition: p }),
      what: "archiver",
    });
    consumers.push(consumer);
    loops.push(
      (async () => {
        for await (const m of consumer.messages) {
          if (consumer.serial() <= reader.droppedSerial) continue; // from a consumer whose history was wrong
          if (m.seq <= reader.handled) continue; // again after a replaced consumer
          reader.handled = m.seq;
          // A history found wrong while this record was checked: it is read again, from the new consumer.
          const generation = reader.generation;
          const checked0 = checkRecord(m.data, p);
          const checked = checked0 instanceof Promise ? await checked0 : checked0;
          // A refresh cut short by close() proves nothing about the record: leave it for the next start.
          if (stopping) return;
          if (checked.kind === "skip") {
            recordsInvalid++;
            const { kind: _k, ...letter } = checked;
            reportSkip({ partition: p, seq: m.seq, source: checked.source, reason: describeProblems(checked.problems) });
            await deadLetter({ ...letter, stage: DeadLetterStages.stream, partition: p, seq: m.seq }, p, m.seq);
            continue;
          }
          if (checked.kind === "barrier") {
            const verdict = await checkBarrier({ partition: p, seq: m.seq, run: checked.run, ...(checked.epoch === undefined ? {} : { epoch: checked.epoch }) });
            if (!verdict) return; // close() ended the wait: the barrier is read again after a restart
            if (verdict.kind === "ignored") {
              barriersIgnored++;
              continue;
            }
            if (reader.generation !== generation) continue;
            barriers.push({ partition: p, run: checked.run, seq: m.seq });
            void flush();
            continue;
          }
          const { event } = checked;
          const h = heads[event.source]!;
          if (m.seq <= h[p]!) {
            rowsSkipped++;
            continue;
          }
          if (reader.generation !== generation) continue;
          const row: MasterRow = { partition: p, seq: m.seq, id: event.id, fields: event.fields };
          const def = catalog.sources.get(event.source)!;
          let rows = buffer.get(event.source);
          if (!rows) buffer.set(event.source, (rows = masterBatch(master.format, def)));
          // Rows gathered under an older definition of the source are held under the new one (its columns).
          else if (rows.source !== def) buffer.set(event.source, (rows = rows.withSource(def)));
          rows.push(row);
          if (++buffered >= opts.flushRows) {
            void flush();
            if (buffered >= MAX_BUFFERED_FLUSHES * opts.flushRows) await waitForRoom();
          }
        }
        // The messages end only when close() stops them: an end otherwise leaves the partition unarchived.
        if (!stopping) throw new Error(`the consumer of partition ${p} stopped delivering messages`);
      })().catch((err) => {
        if (stopping) return;
        log.error("archiver consume loop failed; the partition is not archived until the archiver restarts", { partition: p, err: ensureError(err) });
        deps.observe?.health.fail(`archiver partition ${p}`, `its consume loop failed: ${ensureError(err).message}`);
      }),
    );
  }
  const stats = (): ArchiverStats => ({ rowsArchived: rowsArchived - rowsRefused, rowsSkipped, recordsInvalid, rowsRefused, barriersIgnored, historyMismatches, heads: Object.fromEntries(Object.entries(heads).map(([s, h]) => [s, [...h]])), read: readers.map((r) => r.handled), rowsBuffered: buffered });
  log.info("archiving", { partitions: opts.partitions, epoch: fence.epoch });

  const lifecycle = closeable(async () => {
      stopping = true;
      stop.abort();
      unsubscribe?.();
      clearInterval(timer);
      await Promise.all(consumers.map((c) => c.stop()));
      await Promise.all(loops);
      // Flushes only while the lease holds: a writer that lost it inserts nothing more.
      await flush();
      log.info("archive writer closed", { rowsArchived, epoch: fence.epoch });
  });
  return { stats, ...lifecycle };
}
