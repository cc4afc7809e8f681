/**
 * What the matrix asserts, from the ledger and from outside the runtime:
 *
 *   I0  JetStream holds every acknowledged event at the sequence its acknowledgement named
 *       (below the runtime: a loss here is the stream's)
 *   I1  every acknowledged event is in the batch view (the watermark's count of distinct events)
 *   I2  nothing counted twice: no answer, during a fault or after, above what was published
 *   I3  every complete answer during the run equals the recount of the events up to the stream
 *       sequences it says it counted through (the cut, the actors' applied sequences); after
 *       the fault, every answer (every key, several ranges) equals the recount
 *   I4  the watermark's run and every partition's cut never go backwards
 *   I6  recovery: fault healed → the first complete answer again (reported, not asserted)
 *
 *   I5  no write with a stale fencing token applied: the leader epoch that the watermark's and
 *       each partition assignment's writes carry never goes back (a deposed leader's write
 *       that got through would carry its older epoch); the writes the roles refused as stale are
 *       counted from their logs (faults/run.ts)
 */
import { Metadata, type ServiceError } from "@grpc/grpc-js";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { unpack } from "msgpackr";
import { parseWatermark, type Watermark } from "../src/core/watermark.js";
import { silentLogger } from "../src/core/logger.js";
import type { Assignment } from "../src/core/records.js";
import { watchAssignments } from "../src/nats/assignments_store.js";
import { epochOf, watchValues, type ValueWatch } from "../src/nats/kv.js";
import { WATERMARK_KEY, type Names } from "../src/nats/names.js";
import { partitionHeads, type Buckets } from "../src/nats/setup.js";
import { QueryRequest, type LambdaServiceClient, type QueryResponse } from "../src/gen/lambda/v1/serving.js";
import { waitFor } from "../src/core/wait.js";
import { EVENT_SPAN_MS, KEYS, T0, type Ledger } from "./ledger.js";

const MINUTE = 60_000;
const FULL_RANGE: [number, number] = [T0 - MINUTE, T0 + EVENT_SPAN_MS + MINUTE];

export function queryAll(client: LambdaServiceClient, strict: boolean, [fromMs, toMs]: [number, number] = FULL_RANGE, timeoutMs = 10_000): Promise<QueryResponse> {
  const req = QueryRequest.fromPartial({ metric: "article_views", key: KEYS[0]!, keys: KEYS.slice(1), from: new Date(fromMs), to: new Date(toMs), strict });
  return new Promise((resolve, reject) =>
    client.query(req, new Metadata(), { deadline: Date.now() + timeoutMs }, (err: ServiceError | null, res: QueryResponse) => (err ? reject(err) : resolve(res))),
  );
}

/** The watermarks as they were written, to check that nothing goes backwards (I4). */
export async function recordWatermarks(buckets: Buckets): Promise<{ history: Watermark[]; watch: ValueWatch }> {
  const history: Watermark[] = [];
  const watch = await watchValues(buckets.watermark, { key: WATERMARK_KEY, parse: parseWatermark, what: "the watermark (faults)", log: silentLogger, onValue: (_k, w) => history.push(w) });
  return { history, watch };
}

/** Every assignment as it was written, to check its fencing epochs (I5). */
export async function recordAssignments(buckets: Buckets): Promise<{ history: Assignment[]; watch: ValueWatch }> {
  const history: Assignment[] = [];
  const watch = await watchAssignments(buckets.assignments, silentLogger, (a) => history.push(a));
  return { history, watch };
}

/** I5 over the assignments: per partition, the epoch of each write is at least the one before. */
export function checkAssignmentEpochs(history: readonly Assignment[]): string[] {
  const problems: string[] = [];
  const last = new Map<number, Assignment>();
  for (const a of history) {
    const prev = last.get(a.partition);
    if (prev && epochOf(a) < epochOf(prev)) problems.push(`I5: partition ${a.partition} was assigned to ${a.node || "(none)"} by leader epoch ${epochOf(a)} after epoch ${epochOf(prev)} had assigned it`);
    last.set(a.partition, a);
  }
  return problems;
}

export function checkWatermarkHistory(history: readonly Watermark[]): string[] {
  const problems: string[] = [];
  for (let i = 1; i < history.length; i++) {
    const [a, b] = [history[i - 1]!, history[i]!];
    if (b.run < a.run) problems.push(`I4: the watermark went back from run ${a.run} to ${b.run}`);
    if (epochOf(b) < epochOf(a)) problems.push(`I5: run ${b.run}'s watermark was written by leader epoch ${epochOf(b)} after epoch ${epochOf(a)} had written run ${a.run}`);
    b.cuts.forEach((c, p) => {
      if (c < (a.cuts[p] ?? 0)) problems.push(`I4: partition ${p}'s cut went back from ${a.cuts[p]} to ${c} (runs ${a.run} → ${b.run})`);
    });
  }
  return problems;
}

export interface QueryTally {
  complete: number;
  partial: number;
  failed: number;
  /** When each answer came (ms since the loop started) and whether it was complete. */
  readonly timeline: { atMs: number; complete: boolean }[];
  /** I2 and I3 violations seen during the run. */
  readonly problems: string[];
  /** Why answers were partial (the `missing` reasons, once per answer and reason) or failed (the gRPC status). */
  readonly reasons: Record<string, number>;
}

/** Queries every key without strict, one call after another, until stopped; checks I2 on each answer. */
export function startQueryLoad(client: () => LambdaServiceClient, ledger: Ledger) {
  const tally: QueryTally = { complete: 0, partial: 0, failed: 0, timeline: [], problems: [], reasons: {} };
  const because = (reason: string) => (tally.reasons[reason] = (tally.reasons[reason] ?? 0) + 1);
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const r = await queryAll(client(), false, FULL_RANGE, 5_000);
        const at = performance.now();
        if (r.complete) tally.complete++;
        else tally.partial++;
        for (const reason of new Set(r.missing.map((m) => m.reason))) because(`partial: ${reason}`);
        tally.timeline.push({ atMs: at, complete: r.complete });
        const reached = new Map(r.partitions.map((p) => [p.partition, Math.max(p.cutSeq - 1, p.appliedSeq)]));
        for (const a of r.answers) {
          // A copy republished past the duplicate window (F18) counts in the speed part until the next run.
          const { published, copies } = ledger.count(a.key, ...FULL_RANGE);
          if ((a.total ?? 0) > published + copies) tally.problems.push(`I2: ${a.key} answered ${a.total} at run ${r.watermarkRun}, above the ${published} events ever published${copies ? ` and ${copies} copies republished` : ""}`);
          // I3 at the moment: a complete answer holds exactly the events its partitions had reached,
          // the batch part below the cut and the speed part up to the actor's applied sequence.
          if (!r.complete) continue;
          const c = ledger.countThrough(a.key, ...FULL_RANGE, (p) => reached.get(p));
          const total = a.total ?? 0;
          if (total < c.sure || total > c.sure + c.maybe) tally.problems.push(`I3: ${a.key} answered ${total} at run ${r.watermarkRun} (complete, during the run), the ledger has ${c.sure} events up to the sequences it was counted through${c.maybe ? ` and ${c.maybe} of unknown position` : ""}`);
        }
      } catch (err) {
        because(`failed: ${(err as ServiceError).details ?? (err as Error).message}`.slice(0, 160));
        tally.failed++;
        tally.timeline.push({ atMs: performance.now(), complete: false });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    tally,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** ms from `healedAt` to the first complete answer after it (0 when every answer since was complete). */
export function recoveryMs(tally: QueryTally, faultAt: number, healedAt: number): number | null {
  const since = tally.timeline.filter((t) => t.atMs >= faultAt);
  if (since.every((t) => t.complete)) return 0;
  const first = since.find((t) => t.atMs >= healedAt && t.complete);
  return first ? first.atMs - healedAt : null;
}

/**
 * The event ids the stream holds, by sequence, read message by message with a raw client and
 * decoded here (msgpack, the id field). Read once per run, for I0 and for the diagnosis.
 */
export async function streamIds(nc: NatsConnection, names: Names): Promise<Map<number, string>> {
  const jsm = await jetstreamManager(nc);
  const { state } = await jsm.streams.info(names.eventStream);
  const ids = new Map<number, string>();
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(names.eventStream, { seq }).catch(() => null);
    if (!m) continue;
    try {
      const id = (unpack(m.data) as { k?: unknown; id?: unknown }).id;
      if (typeof id === "string") ids.set(seq, id);
    } catch {
      // not msgpack (F19's records): no event
    }
  }
  return ids;
}

/**
 * I0, below the runtime: JetStream holds every acknowledged event, at the sequence its
 * acknowledgement named when it named one (a duplicate's ack names the copy it already held, so
 * that event only has to be somewhere in the stream). A loss here is the stream's, not the
 * runtime's. Stream retention purges what the master dataset holds: an event acknowledged
 * below the point the coordinator recorded for its partition (`purgedBelow`, the retention
 * record's keepFrom) is not looked for here; I1 and I3 still count it from the batch view.
 */
export function checkStreamHoldsAcked(bySeq: ReadonlyMap<number, string>, ledger: Ledger, purgedBelow: readonly number[] = []): string[] {
  const present = new Set(bySeq.values());
  const problems: string[] = [];
  for (const { id, at } of ledger.ackedEvents()) {
    if (at && at.seq < (purgedBelow[at.partition] ?? 0)) continue;
    if (at && bySeq.get(at.seq) !== id) problems.push(`I0: ${id} was acknowledged at stream sequence ${at.seq} (partition ${at.partition}); the stream holds ${bySeq.get(at.seq) ?? "no event"} there${present.has(id) ? ` (and ${id} elsewhere)` : ""}`);
    else if (!present.has(id)) problems.push(`I0: ${id} was acknowledged (the stream said it held it already), but the stream holds it nowhere`);
  }
  return problems;
}

/**
 * When events went missing: where the archiver's copy and the stream disagree. Every master row
 * (read by faults/master_rows.ts from the stopped main's chDB directory) is looked up in the
 * stream at its sequence; a row whose event the stream does not hold there was read from a
 * stream history that did not last (e.g. a deposed leader's), and the event the stream holds
 * there instead was never archived.
 */
export function checkMasterAgainstStream(bySeq: ReadonlyMap<number, string>, rows: readonly { p: number; seq: number; id: string }[]): string[] {
  return rows.filter((r) => bySeq.get(r.seq) !== r.id).map((r) => `where: the master dataset holds ${r.id} at partition ${r.p} sequence ${r.seq}; the stream holds ${bySeq.get(r.seq) ?? "no event"} there`);
}

/**
 * Once the producer has stopped: waits for a batch run whose barriers lie above everything
 * published, then checks I1 and I3 against the ledger. Returns the problems found.
 */
export async function checkQuiet(nc: NatsConnection, names: Names, partitions: number, history: readonly Watermark[], client: () => LambdaServiceClient, ledger: Ledger, rand: () => number): Promise<{ problems: string[]; watermark: Watermark }> {
  // JetStream may still be electing leaders after the heal: ask until it answers.
  const heads = await waitFor("the stream heads", () => partitionHeads(nc, names, partitions), { timeoutMs: 60_000, intervalMs: 200 });
  const w = await waitFor("a batch run with every published event below its cut", () => history.find((x) => x.cuts.every((c, p) => c > heads[p]!)), { timeoutMs: 120_000, intervalMs: 100 });
  const problems: string[] = [];
  const { acked, unresolved } = ledger.counts;
  // I1: all acknowledged events are in the batch view, once; an unresolved one may or may not be.
  if (w.eventsCovered < acked || w.eventsCovered > acked + unresolved) problems.push(`I1: run ${w.run} covers ${w.eventsCovered} events; acknowledged ${acked}, unresolved ${unresolved}`);
  const ranges: [number, number][] = [FULL_RANGE];
  for (let i = 0; i < 3; i++) {
    const a = Math.floor(rand() * 100);
    ranges.push([T0 + a * MINUTE + (i === 2 ? 30_000 : 0), T0 + (a + 1 + Math.floor(rand() * 30)) * MINUTE]);
  }
  for (const range of ranges) {
    // A strict answer, asked again while a partition still catches up after the fault.
    const r = await waitFor(
      `a complete answer for [${new Date(range[0]).toISOString()}, ${new Date(range[1]).toISOString()})`,
      () => queryAll(client(), true, range).then((x) => x.watermarkRun >= w.run && x),
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    for (const a of r.answers) {
      const c = ledger.count(a.key, ...range);
      const total = a.total ?? 0;
      if (total < c.acked || total > c.published) problems.push(`I3: ${a.key} over [${new Date(range[0]).toISOString()}, ${new Date(range[1]).toISOString()}) answered ${total} at run ${r.watermarkRun}; the ledger has ${c.acked} acknowledged of ${c.published} published`);
    }
  }
  return { problems, watermark: w };
}
