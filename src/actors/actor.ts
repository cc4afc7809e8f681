/**
 * One running speed actor: the I/O shell around speed_state.ts for one
 * partition. It restores from its snapshot (or from the current cut), consumes
 * its partition subject with an ordered consumer from there, answers queries
 * and status requests, and writes snapshots while it owns the partition.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Watermark } from "../core/watermark.js";
import type { Catalog } from "../core/catalog.js";
import { decode, encode } from "../nats/codec.js";
import { createStreamChecker, describeProblems, skipReporter } from "../nats/stream_check.js";
import type { Names } from "../nats/names.js";
import type { BarrierCheck } from "../nats/barrier_check.js";
import { consumePartition } from "../nats/consumer_health.js";
import { extractTraceContext, startSpan } from "../core/tracing.js";
import { checkPosition, type DeliveredPosition, type PositionCheck, type PositionReader } from "../nats/stream_position.js";
import type { ActorPhase, RestoredFrom, SpeedQuery, SpeedQueryReply, SpeedStatus } from "./protocol.js";
import { decodeSnapshot, encodeSnapshotInSlices } from "./snapshot.js";
import { createSegmentStatesEncoder } from "./snapshot_states.js";
import { startSnapshotTimer } from "./snapshot_timer.js";
import { SnapshotFencedError, type SnapshotStore } from "./snapshot_store.js";
import {
  applyRecord,
  applyWatermark,
  barrierActs,
  createSpeedState,
  heldEvents,
  missingDefinitions,
  querySpeed,
  retainDefinitions,
  type SpeedCatalog,
  type SpeedState,
} from "./speed_state.js";

/**
 * Longest stretch a snapshot encodes before it lets the node's event loop run: queries and
 * events wait at most about this long for a snapshot (docs/performance.md, section 5).
 */
const SNAPSHOT_SLICE_MS = 2;

export interface ActorDeps {
  nc: NatsConnection;
  names: Names;
  /** The newest watermark a batch run published (the node's follower, read again now), or null before the first. */
  watermark(): Promise<Watermark | null>;
  /** Says whether a barrier was written by a batch run (nats/barrier_check.ts); shared by the node's actors. */
  barriers: BarrierCheck;
  snapshots: SnapshotStore;
  /** The definitions to compute (core/definitions activeDefinitions at start). */
  catalog: SpeedCatalog;
  /** The node's catalog now: every event record is validated against it (core/events validateStreamEvent), as the archiver does. */
  sourceCatalog(): Catalog;
  /** Reads the newest stored catalog (nats/catalog_store refresh), before a record of an unknown source or field is called invalid. */
  refreshCatalog?(): Promise<void>;
  /**
   * What the stream's leader holds at a sequence (nats/stream_position.ts): answers and snapshots
   * go out only once the last position they count is the stream's.
   */
  positions: PositionReader;
  /**
   * Called once when the consume loop dies, or when the consumer delivered a history the stream
   * does not hold: the actor has stopped answering already and must be stopped and replaced,
   * from its snapshot or, with `rebuildFromCut`, from the cut (its state holds the wrong history).
   */
  onFailure(err: Error, rebuildFromCut: boolean): void;
  log: Logger;
}

export interface ActorOptions {
  nodeId: string;
  partition: number;
  generation: number;
  dedupeHorizonIds: number;
  /** Stream partitions: a record must lie on the partition its key hashes to. */
  partitions: number;
  /**
   * Stream positions before a cut that a rebuild from the cut replays only to
   * relearn recent ids (so a late copy of an id below the cut is still skipped).
   */
  warmUpPositions: number;
  snapshotIntervalMs: number;
  /** Ignore the snapshot and rebuild from the stream (tests, repair). @default false */
  forceReplay: boolean;
}

export interface RunningActor {
  readonly partition: number;
  readonly generation: number;
  /** What the actor answers on its status subject (lambdactl status, the node's metrics). */
  status(): SpeedStatus;
  /** Applies a watermark the node has seen. */
  onWatermark(w: Watermark): void;
  /**
   * The partition's assignment moved on (another owner or generation): from now on the actor
   * answers queries with not_owner, before stop() has run (the generation fence).
   */
  fence(): void;
  /** True when `w` lies below what this actor already dropped (a rollback): it must rebuild from w's cut. */
  isBehind(w: Watermark): boolean;
  /** Fingerprints `catalog` has that this actor does not compute: it must rebuild from the cut to add them. */
  lacks(catalog: SpeedCatalog): string[];
  /** Stops computing the definitions `catalog` does not have. Call only when `lacks(catalog)` is empty. */
  narrowTo(catalog: SpeedCatalog): void;
  /**
   * Stops consuming and answering. With `writeSnapshot`, writes a final snapshot
   * (only while this actor still owns the partition). Idempotent.
   */
  stop(writeSnapshot: boolean): Promise<void>;
}

async function restoreState(deps: ActorDeps, opts: ActorOptions, log: Logger): Promise<{ state: SpeedState; from: RestoredFrom }> {
  const watermark = await deps.watermark();
  if (!opts.forceReplay) {
    const blob = await deps.snapshots.read(opts.partition);
    if (blob) {
      const snap = decodeSnapshot(blob, opts.partition, opts.dedupeHorizonIds, deps.catalog);
      if (snap.kind === "state") {
        if (watermark) applyWatermark(snap.state, watermark.run);
        return { state: snap.state, from: { kind: "snapshot", generation: snap.generation, appliedSeq: snap.state.appliedSeq } };
      }
      log.warn("snapshot unusable; rebuilding from the stream at the current cut", { reason: snap.reason });
    }
  }
  // No snapshot: the events above the current cut are all this actor must hold,
  // so it replays from the barrier of the current watermark.
  const cut = watermark?.cuts[opts.partition] ?? 0;
  // Replay a stretch before the cut only to relearn the ids the dedupe horizon would have held.
  const warmFrom = cut > 0 ? Math.max(1, cut - opts.warmUpPositions) : 0;
  const state = createSpeedState(opts.partition, opts.dedupeHorizonIds, Math.max(0, warmFrom - 1), 0, cut);
  if (watermark) applyWatermark(state, watermark.run);
  return { state, from: watermark && cut > 0 ? { kind: "cut", run: watermark.run, seq: cut } : { kind: "start" } };
}

export async function startActor(deps: ActorDeps, opts: ActorOptions): Promise<RunningActor> {
  const p = opts.partition;
  const log = deps.log.child({ partition: p, generation: opts.generation });
  const { state, from } = await restoreState(deps, opts, log);
  const jsm = await jetstreamManager(deps.nc);
  const last = await jsm.streams.getMessage(deps.names.eventStream, { last_by_subj: deps.names.eventSubject(p) });
  const headAtStart = last?.seq ?? 0;
  log.info("speed actor starting", { from, appliedSeq: state.appliedSeq, headAtStart });

  let catalog = deps.catalog;
  let stopped = false;
  let dirty = false;
  let snapshotting: Promise<void> = Promise.resolve();
  // Keeps the states encoded by the last snapshot: the next one encodes only what changed.
  const snapshotStates = createSegmentStatesEncoder();

  const identity = () => ({ partition: p, node: opts.nodeId, generation: opts.generation, appliedSeq: state.appliedSeq });

  // A consumer on a replica that drifted hands out events at positions the stream does not hold
  // them at (F12, docs/reliability.md): answers and snapshots go out only once the stream's
  // leader holds what the state counts last. One read confirms every answer up to that position
  // (a drift shifts what follows it), so answers on a quiet partition read nothing.
  const subject = deps.names.eventSubject(p);
  // What the state counts last; a restored position was confirmed before its snapshot was written.
  let counted: DeliveredPosition = { seq: state.appliedSeq, subject };
  let confirmedSeq = state.appliedSeq;
  let confirming: { seq: number; result: Promise<PositionCheck> } | undefined;
  let wrongHistory: Extract<PositionCheck, { kind: "differs" }> | undefined;
  /** Null when `at` is confirmed already; otherwise the check, shared with every caller up to a later position. */
  const confirm = (at: DeliveredPosition): Promise<PositionCheck> | null => {
    if (wrongHistory) return Promise.resolve(wrongHistory);
    if (at.seq <= confirmedSeq) return null;
    if (confirming && confirming.seq >= at.seq) return confirming.result;
    const check: { seq: number; result: Promise<PositionCheck> } = {
      seq: at.seq,
      result: checkPosition(deps.positions, at).then((c) => {
        if (confirming === check) confirming = undefined;
        if (c.kind === "same") confirmedSeq = Math.max(confirmedSeq, at.seq);
        else if (c.kind === "differs") onWrongHistory(c);
        return c;
      }),
    };
    confirming = check;
    return check.result;
  };

  let fenced = false;
  // The partition was assigned elsewhere: answers stop at once, ahead of stop().
  let superseded = false;
  const phase = (): ActorPhase => (state.appliedSeq < headAtStart ? "replaying" : "live");
  // The consume loop died: state may hold half an event, so it is neither answered nor snapshotted.
  let failed = false;
  let skippedInvalid = 0;
  let ignoredBarriers = 0;
  // Ends a wait on the run history when the actor stops.
  const stopSignal = new AbortController();
  const writeSnapshot = (): Promise<void> => {
    // Chain so two snapshot writes never interleave.
    snapshotting = snapshotting
      .then(async () => {
        if (!dirty || fenced || failed) return;
        dirty = false;
        const at = counted;
        const blob = await encodeSnapshotInSlices(state, { partition: p, generation: opts.generation, catalog }, snapshotStates, SNAPSHOT_SLICE_MS);
        // A restart trusts its snapshot's history: write only one whose last position is the stream's.
        const check = await confirm(at);
        if (check && check.kind !== "same") {
          dirty = !failed;
          if (check.kind === "unknown") log.warn("snapshot not written: the stream's leader could not confirm its last position; will retry on the next interval", { seq: at.seq, reason: check.reason });
          return;
        }
        if (failed) return;
        await deps.snapshots.write(p, opts.generation, blob);
      })
      .catch((err) => {
        if (err instanceof SnapshotFencedError) {
          // A newer owner exists; it rebuilds from its own snapshot and the stream.
          fenced = true;
          log.warn("not writing snapshots any more: a newer generation owns this partition", { current: err.current });
          return;
        }
        dirty = true;
        log.error("snapshot write failed; will retry on the next interval", { err: ensureError(err) });
      });
    return snapshotting;
  };

  // Answers say when the consumer stalled: the state may then lag the stream by any amount.
  const events = consumePartition({ nc: deps.nc, stream: deps.names.eventStream, subject: deps.names.eventSubject(p), handledSeq: () => state.appliedSeq, log, what: "speed actor" });

  const subs: Subscription[] = [];
  subs.push(
    deps.nc.subscribe(deps.names.speedQuerySubject(p), {
      callback: (err, msg) => {
        if (err) return;
        // Who answered, as of the state the reply is made from (its applied sequence).
        const who = identity();
        // Only a query that brought a trace context is traced (core/tracing.ts).
        const span = msg.headers ? startSpan("speed.answer", { "lambda.partition": p, "lambda.applied_seq": who.appliedSeq }, extractTraceContext(msg.headers)) : undefined;
        let reply: SpeedQueryReply;
        let check: Promise<PositionCheck> | null = null;
        try {
          const q = decode<SpeedQuery>(msg.data);
          if (superseded || (q.generation ?? 0) > opts.generation) reply = { ...who, kind: "not_owner" };
          else {
            const a = querySpeed(state, catalog, q);
            reply = a.kind === "value" ? { ...who, ...a, heldEvents: heldEvents(state), phase: phase(), ...(events.stalled() ? { stalled: true } : {}) } : { ...who, ...a };
            if (a.kind === "value") check = confirm(counted);
          }
        } catch (e) {
          reply = { kind: "error", message: ensureError(e).message };
        }
        const respond = (r: SpeedQueryReply) => {
          let data = encode(r);
          // A reply past max_payload would be refused by the client library and never arrive: say so instead.
          const limitBytes = deps.nc.info?.max_payload ?? Number.POSITIVE_INFINITY;
          if (data.length > limitBytes) data = encode({ ...who, kind: "too_large", bytes: data.length, limitBytes } satisfies SpeedQueryReply);
          msg.respond(data);
          span?.setAttribute("lambda.reply", r.kind);
          span?.end();
        };
        if (!check) return respond(reply);
        const answer = reply;
        void check.then((c) => respond(c.kind === "same" ? answer : { ...who, kind: "unconfirmed", historyDiffers: c.kind === "differs", reason: c.reason }));
      },
    }),
  );
  const status = (): SpeedStatus => ({
    ...identity(),
    watermarkRun: state.watermarkRun,
    heldEvents: heldEvents(state),
    skippedDuplicates: state.skippedDuplicates,
    skippedInvalid,
    ignoredBarriers,
    segments: state.segments.map(({ states: _s, ...info }) => info),
    restoredFrom: from,
    phase: phase(),
    stalled: events.stalled(),
    confirmedSeq,
  });
  subs.push(
    deps.nc.subscribe(deps.names.speedStatusSubject(p), {
      callback: (err, msg) => {
        if (err) return;
        msg.respond(encode(status()));
      },
    }),
  );

  const checkRecord = createStreamChecker({ catalog: deps.sourceCatalog, refresh: deps.refreshCatalog, partitions: opts.partitions });
  const reportSkip = skipReporter(log);
  const loop = (async () => {
    for await (const m of events.messages) {
      const checked0 = checkRecord(m.data, p);
      const checked = checked0 instanceof Promise ? await checked0 : checked0;
      // A refresh cut short by stop() proves nothing about the record: the next owner reads it again.
      if (stopped) return;
      if (checked.kind === "skip") {
        // The archiver skips it too (and dead-letters it): move past it, count it, answer on.
        if (m.seq > state.appliedSeq) {
          state.appliedSeq = m.seq;
          counted = { seq: m.seq, subject };
          skippedInvalid++;
          dirty = true;
          reportSkip({ seq: m.seq, source: checked.source, reason: describeProblems(checked.problems), skippedInvalid });
        }
        continue;
      }
      const record = checked.record;
      if (checked.kind === "barrier" && barrierActs(state, m.seq, checked.run)) {
        // A barrier moves the seam: only one a batch run wrote may (nats/barrier_check.ts).
        const verdict = await deps.barriers.check({ partition: p, seq: m.seq, run: checked.run, ...(checked.epoch === undefined ? {} : { epoch: checked.epoch }) }, stopSignal.signal);
        if (stopped) return;
        if (verdict.kind === "ignored") {
          // Passed over like an invalid record: the archiver ignores it too, so the seam stays exact.
          state.appliedSeq = m.seq;
          counted = { seq: m.seq, subject, event: null };
          ignoredBarriers++;
          dirty = true;
          continue;
        }
      }
      const outcome = applyRecord(state, m.seq, record, catalog);
      if (outcome === "redelivered") continue;
      counted = { seq: m.seq, subject, event: record.k === "e" ? { source: record.s, id: record.id } : null };
      dirty = true;
      if (outcome === "barrier") {
        log.debug("segment closed by barrier", { run: record.k === "b" ? record.r : undefined, seq: m.seq });
        void writeSnapshot();
      }
    }
    // The messages end only when stop() ends them: an end otherwise leaves the state behind the stream.
    if (!stopped) throw new Error(`the consumer of partition ${p} stopped delivering messages`);
  })().catch((err) => {
    if (stopped || failed) return;
    const error = ensureError(err);
    log.error("speed actor consume loop failed; the actor stops answering and its node restarts it", { appliedSeq: state.appliedSeq, err: error });
    fail(error, false);
  });

  /** Stops answering at once: serving must get no speed part from a state that stopped moving, or counts a wrong history. */
  function fail(error: Error, rebuildFromCut: boolean): void {
    failed = true;
    void events.stop();
    for (const s of subs) s.unsubscribe();
    deps.onFailure(error, rebuildFromCut);
  }

  function onWrongHistory(c: Extract<PositionCheck, { kind: "differs" }>): void {
    if (wrongHistory || stopped || failed) return;
    wrongHistory = c;
    log.error("the stream holds other records than this actor's consumer delivered; it stops answering and rebuilds from the cut", { appliedSeq: state.appliedSeq, reason: c.reason });
    fail(new Error(`the consumer of partition ${p} delivered a history the stream does not hold: ${c.reason}`), true);
  }

  const timer = startSnapshotTimer({ intervalMs: opts.snapshotIntervalMs, partition: p, partitions: opts.partitions }, () => void writeSnapshot());

  let stopping: Promise<void> | undefined;
  return {
    partition: p,
    generation: opts.generation,
    status,
    isBehind: (w) => w.run < state.watermarkRun,
    lacks: (next) => missingDefinitions(catalog, next),
    fence() {
      if (!superseded) log.info("partition assigned elsewhere: answering not_owner until stopped", { appliedSeq: state.appliedSeq });
      superseded = true;
    },
    narrowTo(next) {
      // Called on every watermark: only a set that lost definitions changes the state (and the snapshot).
      const dropping = missingDefinitions(next, catalog).length > 0;
      catalog = next;
      if (!dropping) return;
      retainDefinitions(state, next);
      dirty = true;
    },
    onWatermark(w) {
      const dropped = applyWatermark(state, w.run);
      if (dropped > 0) {
        dirty = true;
        log.debug("dropped segments covered by the watermark", { run: w.run, dropped, held: heldEvents(state) });
      }
    },
    stop(write) {
      return (stopping ??= (async () => {
        stopped = true;
        stopSignal.abort(new Error("the speed actor stopped"));
        timer.stop();
        for (const s of subs) s.unsubscribe();
        await events.stop();
        await loop;
        if (write) await writeSnapshot();
        else await snapshotting;
        log.info("speed actor stopped", { appliedSeq: state.appliedSeq, held: heldEvents(state) });
      })());
    },
  };
}
