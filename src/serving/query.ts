/**
 * Answering queries at the watermark: validate, read the batch states from view
 * N, ask the actor of each partition involved for its states above cut N, and
 * merge. An actor that has moved on to run M makes the whole answer retry at M,
 * so batch and speed parts always come from the same cut. A partition whose
 * actor is away (moving, paused, rebuilding) or still replaying does not fail
 * the query: the answer leaves its speed part out (or has it up to where the
 * actor is) and says so, with how many records that is; strict queries fail.
 */
import { inSpan } from "../core/tracing.js";
import { decodeState, keyOfValues, mergeState, type AggState } from "../core/aggregate.js";
import { aggregateOf, type Catalog, type MetricDef } from "../core/catalog.js";
import { definitionAt, type Definition } from "../core/definitions.js";
import { InvalidQueryError, UnavailableError, WatermarkRefusedError } from "../core/errors.js";
import type { Watermark } from "../core/watermark.js";
import { SpeedActorUnavailableError, SpeedUnavailableReasons, type SpeedClient, type SpeedQuery, type SpeedQueryReply } from "../actors/index.js";
import type { BatchStates } from "../ch/views.js";
import { compareForTopK, groupOf, mergeKey, type KeyResult, type SideStates } from "./merge.js";
import { keyChunks, MAX_REPLY_SPLITS, partitionsFor, SPEED_KEYS_PAYLOAD_SHARE, splitSpeedQuery } from "./query_plan.js";

/** Longest range a query may span: 10 years of windows. */
export const MAX_QUERY_RANGE_MS = 10 * 366 * 86_400_000;
/** How many times a query restarts at a newer watermark before giving up. */
export const MAX_WATERMARK_RETRIES = 5;
/** Most keys one query may ask for. */
export const MAX_QUERY_KEYS = 1_000;
/** Largest k of a top-k query. */
export const MAX_TOP_K = 1_000;
/**
 * Longest key, group-by value, metric or aggregate name a query may carry, in UTF-8 bytes. With
 * MAX_QUERY_KEYS it bounds a query (serving/request_guard.ts MAX_REQUEST_BYTES).
 */
export const MAX_KEY_BYTES = 1_024;
/** Quantile asked when a request leaves it at 0. */
export const DEFAULT_QUANTILE = 0.5;

export interface MetricQuery {
  readonly metric: string;
  /** One key (the group-by value of a one-field metric); "" for none. */
  readonly key: string;
  readonly keys: readonly string[];
  /** A key by field values. */
  readonly group: Readonly<Record<string, string>>;
  readonly aggregate: string;
  readonly quantile: number;
  readonly series: boolean;
  readonly fromMs: number;
  readonly toMs: number;
  /** Fail (UNAVAILABLE) rather than answer without a partition's speed part. @default false */
  readonly strict?: boolean;
}

export interface TopKQuery {
  readonly metric: string;
  readonly k: number;
  readonly aggregate: string;
  readonly quantile: number;
  readonly where: Readonly<Record<string, string>>;
  readonly fromMs: number;
  readonly toMs: number;
  /** As in MetricQuery. */
  readonly strict?: boolean;
}

export interface PartitionProvenance {
  readonly partition: number;
  readonly cutSeq: number;
  readonly appliedSeq: number;
  readonly heldEvents: number;
  readonly generation: number;
}

/** Why a partition's speed part is missing from an answer, or behind (gRPC MissingSpeedPart.reason). */
export const MissingReasons = {
  /** No actor answers: the partition is moving, or its node is gone and not yet replaced. */
  moving: "moving",
  /** Its actor did not answer in time: the node is paused or overloaded. */
  timeout: "timeout",
  /** Its actor does not compute the definition yet: rebuilding from the cut. */
  rebuilding: "rebuilding",
  /** Its new owner is replaying the stream: in the answer up to its applied sequence. */
  replaying: "replaying",
  /** Its actor's consumer stopped receiving (missed heartbeats): in the answer up to its applied sequence. */
  stalled: "stalled",
  /** The stream's leader could not confirm the history its actor counts (NATS trouble): left out. */
  unconfirmed: "unconfirmed",
} as const;
export type MissingReason = (typeof MissingReasons)[keyof typeof MissingReasons];

export interface MissingSpeedPart {
  readonly partition: number;
  readonly reason: MissingReason;
  /** Up to this stream sequence the partition's events are in the answer (the cut, or the actor's applied sequence). */
  readonly countedThroughSeq: number;
  /** Records of the partition after countedThroughSeq the answer lacks; null when the stream could not be asked. */
  readonly eventsNotCounted: number | null;
  /** The node the partition is assigned to ("" when none). */
  readonly node: string;
  readonly detail: string;
}

/** A strict query met a partition whose speed part is missing or behind. */
export class IncompleteAnswerError extends UnavailableError {
  override readonly name = "IncompleteAnswerError";
  constructor(readonly missing: readonly MissingSpeedPart[]) {
    super(`the answer would lack the speed part of ${missing.length === 1 ? "partition" : "partitions"} ${missing.map((m) => `${m.partition} (${m.detail})`).join("; ")}; ask without strict for a partial answer, or try again`);
  }
}

export interface QueryResult {
  readonly metric: string;
  readonly aggregate: string;
  /** Fingerprint of the metric definition answered with (the watermark run's). */
  readonly definition: string;
  readonly run: number;
  readonly answers: readonly KeyResult[];
  readonly partitions: readonly PartitionProvenance[];
  readonly speedEventsHeld: number;
  /** Empty when the answer is complete: every partition's speed part is in it, up to date. */
  readonly missing: readonly MissingSpeedPart[];
}

export interface WatermarkSource {
  /** The newest watermark this node knows, or null before the first run. */
  current(): Watermark | null;
  /** Reads the watermark bucket now (after an actor reported a newer run). */
  refresh(): Promise<Watermark | null>;
  /** The newest watermark value this node refused (nats/watermark_store.ts), if newer than `current()`. */
  refusal?(): { readonly run: number; readonly reason: string } | null;
}

/**
 * Reads batch states of a view version (cached by the caller: views are immutable per run). The
 * maps and states it returns may be shared with other calls: read them, never change them.
 */
export type BatchReader = (metric: MetricDef, run: number, keys: readonly string[] | null, fromMs: number, toMs: number) => Promise<BatchStates>;

export interface QueryDeps {
  readonly catalog: Catalog;
  readonly partitions: number;
  readonly speed: SpeedClient;
  readonly watermarks: WatermarkSource;
  readonly readBatch: BatchReader;
  /** The NATS server's max_payload now (nc.info.max_payload): speed queries are split to stay below it. */
  readonly maxPayloadBytes: () => number;
  /** How long to keep asking a partition nobody answers for, or whose actor lacks the definition. @default ACTOR_RETRY_MS */
  readonly actorRetryMs?: number;
  /** The partition's assignment as this node last saw it (nats/assignments_store); undefined when none. */
  readonly assignmentOf?: (partition: number) => { readonly node: string; readonly generation: number } | undefined;
  /**
   * Records on the partition's subject after stream sequence `seq` (for what a partial answer
   * lacks). @throws when the stream cannot be asked
   */
  readonly recordsAfter?: (partition: number, seq: number) => Promise<number>;
}

/**
 * How long a query keeps asking a partition whose actor is briefly away: no actor listens (the
 * partition is moving to another node) or it does not compute the definition yet (rebuilding
 * from the cut after a catalog change). Past it the answer is UNAVAILABLE, naming the partition.
 */
export const ACTOR_RETRY_MS = 1_500;

/** What asking one partition's actor came to: its reply, or why there is none. */
type SpeedOutcome = { readonly kind: "reply"; readonly reply: SpeedQueryReply } | { readonly kind: "away"; readonly reason: MissingReason; readonly detail: string };

/**
 * One partition's speed answer, asked again with a growing pause while its actor is briefly
 * away: nobody listens (the partition is moving), a former owner says not_owner, the actor
 * does not compute the definition yet, or the stream's leader did not confirm its history. Past the retry time, or when the actor does not answer
 * in time (asking again would wait as long once more), the partition is away.
 */
async function askSpeed(deps: QueryDeps, partition: number, q: SpeedQuery): Promise<SpeedOutcome> {
  const deadline = Date.now() + (deps.actorRetryMs ?? ACTOR_RETRY_MS);
  for (let pauseMs = 20; ; pauseMs = Math.min(pauseMs * 2, 200)) {
    const giveUp = Date.now() + pauseMs > deadline;
    let away: { reason: MissingReason; detail: string };
    try {
      const r = await deps.speed.query(partition, q);
      if (r.kind === "not_owner") away = { reason: MissingReasons.moving, detail: `its former owner ${r.node} (generation ${r.generation}) no longer answers and no newer owner did` };
      else if (r.kind === "missing_definition") away = { reason: MissingReasons.rebuilding, detail: `its actor on ${r.node} does not compute ${q.metric} as batch run ${q.run} defined it (${r.definition}) yet: it is rebuilding from the cut, or its node runs another catalog` };
      else if (r.kind === "unconfirmed") {
        away = r.historyDiffers
          ? { reason: MissingReasons.rebuilding, detail: `its actor on ${r.node} was handed a history the stream does not hold (${r.reason}): it is rebuilding from the cut` }
          : { reason: MissingReasons.unconfirmed, detail: `the stream's leader could not confirm the history its actor on ${r.node} counts (${r.reason})` };
      }
      else return { kind: "reply", reply: r };
    } catch (err) {
      if (!(err instanceof SpeedActorUnavailableError)) throw err;
      if (err.reason === SpeedUnavailableReasons.timeout) return { kind: "away", reason: MissingReasons.timeout, detail: err.message };
      away = { reason: MissingReasons.moving, detail: err.message };
    }
    if (giveUp) return { kind: "away", ...away };
    await new Promise((r) => setTimeout(r, pauseMs));
  }
}

/**
 * A partition's speed answer in as many replies as it takes: one that would exceed the NATS
 * server's max_payload comes back as too_large, and the query is asked again in halves.
 * @throws UnavailableError when the halves stay too large
 */
async function askPartition(deps: QueryDeps, partition: number, q: SpeedQuery, splits = 0): Promise<SpeedOutcome[]> {
  const o = await askSpeed(deps, partition, q);
  if (o.kind !== "reply" || o.reply.kind !== "too_large") return [o];
  const halves = splits < MAX_REPLY_SPLITS ? splitSpeedQuery(q) : null;
  if (!halves) {
    throw new UnavailableError(
      `the speed answer of partition ${partition} stays larger than NATS max_payload (${o.reply.bytes} > ${o.reply.limitBytes} bytes) after ${splits} splits; ask for fewer keys or a shorter range`,
    );
  }
  const parts = await Promise.all(halves.map((h) => askPartition(deps, partition, h, splits + 1)));
  return parts.flat();
}

/** Fills in what each missing part lacks, from the stream; null where the stream could not say. */
async function withRecordCounts(deps: QueryDeps, missing: Omit<MissingSpeedPart, "eventsNotCounted">[]): Promise<MissingSpeedPart[]> {
  return Promise.all(
    missing.map(async (m) => {
      const n = deps.recordsAfter ? await deps.recordsAfter(m.partition, m.countedThroughSeq).catch(() => null) : null;
      return { ...m, eventsNotCounted: n };
    }),
  );
}

function validateRange(fromMs: number, toMs: number): void {
  if (!Number.isFinite(fromMs)) throw new InvalidQueryError("from", "is required (a timestamp)");
  if (!Number.isFinite(toMs)) throw new InvalidQueryError("to", "is required (a timestamp)");
  if (fromMs >= toMs) throw new InvalidQueryError("to", `must be after from (from=${new Date(fromMs).toISOString()}, to=${new Date(toMs).toISOString()})`);
  if (toMs - fromMs > MAX_QUERY_RANGE_MS) throw new InvalidQueryError("to", `range spans more than ${MAX_QUERY_RANGE_MS / 86_400_000} days`);
}

function aggregateIndex(metric: MetricDef, name: string, quantile: number): number {
  const a = aggregateOf(metric, name);
  if (!a) throw new InvalidQueryError("aggregate", `metric ${metric.name} has no aggregate ${JSON.stringify(name)}; it has: ${metric.aggregates.map((x) => x.name).join(", ")}`);
  if (!(quantile >= 0 && quantile <= 1)) throw new InvalidQueryError("quantile", `must be in [0, 1], got ${quantile}`);
  if (quantile !== 0 && a.kind !== "quantiles") throw new InvalidQueryError("quantile", `applies to quantiles aggregates; ${a.name} is ${a.kind}`);
  return metric.aggregates.indexOf(a);
}

function groupKey(metric: MetricDef, group: Readonly<Record<string, string>>, field: string): string {
  for (const f of Object.keys(group)) {
    if (!metric.groupBy.includes(f)) throw new InvalidQueryError(field, `${metric.name} is not grouped by ${JSON.stringify(f)}; its group-by fields: ${metric.groupBy.join(", ") || "(none)"}`);
  }
  const missing = metric.groupBy.filter((f) => group[f] === undefined);
  if (missing.length > 0) throw new InvalidQueryError(field, `needs a value for every group-by field; missing: ${missing.join(", ")}`);
  return keyOfValues(metric.groupBy.map((f) => group[f]!));
}

/** The keys a query asks for, in order. @throws InvalidQueryError */
export function keysOf(metric: MetricDef, q: MetricQuery): string[] {
  const keys: string[] = [];
  const oneField = metric.groupBy.length === 1;
  if (q.key !== "" || q.keys.length > 0) {
    if (!oneField) throw new InvalidQueryError(q.key !== "" ? "key" : "keys", `${metric.name} is grouped by ${metric.groupBy.length} fields; address keys with group (field → value)`);
    if (q.key !== "") keys.push(q.key);
    for (const k of q.keys) {
      if (k === "") throw new InvalidQueryError("keys", "contains an empty key");
      keys.push(k);
    }
  }
  if (Object.keys(q.group).length > 0 || (metric.groupBy.length === 0 && keys.length === 0)) keys.push(groupKey(metric, q.group, "group"));
  if (keys.length === 0) throw new InvalidQueryError("key", `is required: the value of ${metric.groupBy.join(", ")}`);
  if (keys.length > MAX_QUERY_KEYS) throw new InvalidQueryError("keys", `asks for ${keys.length} keys; at most ${MAX_QUERY_KEYS}`);
  return keys;
}

interface Gathered<P> {
  /** The definition answered with: the one the watermark's run computed (core/definitions). */
  definition: Definition;
  /** What the query asks, validated against that definition. */
  asked: P;
  run: number;
  batch: BatchStates;
  speed: Map<string, Map<number, AggState>>;
  parts: PartitionProvenance[];
  held: number;
  missing: MissingSpeedPart[];
}

/** What `ask` derives from a definition to read: the keys (null: every key) and whether per window. */
interface Reading {
  readonly keys: readonly string[] | null;
  readonly series: boolean;
}

/**
 * Batch states of view N and speed states above cut N, from one watermark N, for
 * metric `name` as run N defined it. `ask` validates the query against that
 * definition (it runs again if the query moves to a newer watermark, whose run
 * may define the metric differently).
 */
async function gather<P extends Reading>(deps: QueryDeps, name: string, fromMs: number, toMs: number, strict: boolean, ask: (metric: MetricDef) => P): Promise<Gathered<P>> {
  validateRange(fromMs, toMs);
  let w = deps.watermarks.current();
  for (let attempt = 0; attempt <= MAX_WATERMARK_RETRIES; attempt++) {
    // No watermark taken but one refused: answering as before the first run would be wrong.
    const refused = w ? null : deps.watermarks.refusal?.();
    if (refused) throw new WatermarkRefusedError(refused.run, refused.reason);
    const run = w?.run ?? 0;
    const definition = definitionAt(deps.catalog, w, name);
    const metric = definition.metric;
    const asked = ask(metric);
    const { keys, series } = asked;
    // One ask per partition, or several when its keys would not fit in one NATS message.
    const budget = deps.maxPayloadBytes() * SPEED_KEYS_PAYLOAD_SHARE;
    const asks = [...partitionsFor(deps.catalog, metric, keys, deps.partitions)].flatMap(([partition, ks]) => keyChunks(ks, budget).map((chunk) => ({ partition, keys: chunk })));
    const [batch, outcomes] = await Promise.all([
      w ? inSpan("clickhouse.read_batch", { "lambda.metric": metric.name, "lambda.view_version": w.viewVersion }, () => deps.readBatch(metric, w!.viewVersion, keys, fromMs, toMs)) : Promise.resolve<BatchStates>(new Map()),
      Promise.all(
        asks.map(async (a) => {
          const q: SpeedQuery = { run, metric: metric.name, definition: definition.fingerprint, keys: a.keys, fromMs, toMs, series, generation: deps.assignmentOf?.(a.partition)?.generation ?? 0 };
          const outcomes = await inSpan("speed.ask", { "lambda.partition": a.partition }, () => askPartition(deps, a.partition, q));
          return outcomes.map((outcome) => ({ partition: a.partition, outcome }));
        }),
      ).then((xs) => xs.flat()),
    ]);
    // A partition asked in several parts is away when any part is: none of its parts is used.
    const away = new Map<number, { reason: MissingReason; detail: string }>();
    for (const { partition, outcome: o } of outcomes) if (o.kind === "away" && !away.has(partition)) away.set(partition, o);
    const speed = new Map<string, Map<number, AggState>>();
    const parts = new Map<number, PartitionProvenance>();
    const behind = new Map<number, { node: string; appliedSeq: number; reason: MissingReason }>();
    let movedOn = 0;
    for (const { partition, outcome: o } of outcomes) {
      if (o.kind === "away" || away.has(partition)) continue;
      const r = o.reply;
      if (r.kind === "error") throw new UnavailableError(`speed actor of partition ${partition} failed: ${r.message}`);
      if (r.kind === "moved_on") {
        movedOn = Math.max(movedOn, r.run);
        continue;
      }
      if (r.kind !== "value") continue; // askSpeed returns no other kind
      // A partition asked in several parts reports the lowest applied sequence: every key's answer reaches at least it.
      const seen = parts.get(r.partition);
      if (!seen || r.appliedSeq < seen.appliedSeq) {
        parts.set(r.partition, { partition: r.partition, cutSeq: w?.cuts[r.partition] ?? 0, appliedSeq: r.appliedSeq, heldEvents: r.eventsAboveCut, generation: r.generation });
      }
      if (r.stalled || r.phase === "replaying") {
        // Replaying from before the cut (to relearn recent ids) it holds nothing below it: the batch part has those.
        const through = Math.max(r.appliedSeq, w?.cuts[r.partition] ?? 0);
        const prev = behind.get(r.partition);
        if (!prev || through < prev.appliedSeq) behind.set(r.partition, { node: r.node, appliedSeq: through, reason: r.stalled ? MissingReasons.stalled : MissingReasons.replaying });
      }
      for (const [key, total, windows] of r.keys) {
        let byWindow = speed.get(key);
        if (!byWindow) speed.set(key, (byWindow = new Map()));
        // Without a series the total stands in as one pseudo-window inside the range.
        const entries: [number, unknown][] = windows ?? [[fromMs, total]];
        for (const [ws, st] of entries) {
          const state = decodeState(metric, st);
          const prev = byWindow.get(ws);
          if (prev) mergeState(prev, state);
          else byWindow.set(ws, state);
        }
      }
    }
    if (movedOn === 0) {
      const gaps: Omit<MissingSpeedPart, "eventsNotCounted">[] = [];
      for (const [partition, a] of away) gaps.push({ partition, reason: a.reason, countedThroughSeq: w?.cuts[partition] ?? 0, node: deps.assignmentOf?.(partition)?.node ?? "", detail: a.detail });
      for (const [partition, r] of behind) {
        const detail =
          r.reason === MissingReasons.stalled
            ? `the consumer of its actor on ${r.node} stopped receiving (missed heartbeats); counted through ${r.appliedSeq}`
            : `its new owner ${r.node} is replaying the stream (applied through ${r.appliedSeq})`;
        gaps.push({ partition, reason: r.reason, countedThroughSeq: r.appliedSeq, node: r.node, detail });
      }
      gaps.sort((a, b) => a.partition - b.partition);
      const missing = await withRecordCounts(deps, gaps);
      if (strict && missing.length > 0) throw new IncompleteAnswerError(missing);
      const partList = [...parts.values()].sort((a, b) => a.partition - b.partition);
      return { definition, asked, run, batch, speed, parts: partList, held: partList.reduce((n, p) => n + p.heldEvents, 0), missing };
    }
    // An actor dropped past our watermark: answer again at a newer one.
    const fresh = await deps.watermarks.refresh();
    if (fresh && fresh.run > run) w = fresh;
  }
  throw new UnavailableError(`the watermark kept moving during the query (${MAX_WATERMARK_RETRIES} retries); try again`);
}

/** @throws InvalidQueryError naming `field` when a string is longer than MAX_KEY_BYTES (it is not echoed back) */
export function checkSizes(field: string, values: Iterable<string>): void {
  let i = 0;
  for (const v of values) {
    const bytes = Buffer.byteLength(v, "utf8");
    if (bytes > MAX_KEY_BYTES) throw new InvalidQueryError(field, `${field === "keys" ? `key ${i} ` : ""}is ${bytes} bytes; at most ${MAX_KEY_BYTES}`);
    i++;
  }
}

const checkMap = (field: string, m: Readonly<Record<string, string>>) => checkSizes(field, Object.entries(m).flat());

export async function answerQuery(deps: QueryDeps, q: MetricQuery): Promise<QueryResult> {
  checkSizes("metric", [q.metric]);
  checkSizes("aggregate", [q.aggregate]);
  checkSizes("key", [q.key]);
  checkSizes("keys", q.keys);
  checkMap("group", q.group);
  const g = await gather(deps, q.metric, q.fromMs, q.toMs, q.strict ?? false, (metric) => ({
    aggregateIndex: aggregateIndex(metric, q.aggregate, q.quantile),
    keys: keysOf(metric, q),
    series: q.series,
  }));
  const metric = g.definition.metric;
  const { aggregateIndex: i, keys } = g.asked;
  const req = { metric, aggregateIndex: i, quantile: q.quantile || DEFAULT_QUANTILE, series: q.series };
  return {
    metric: metric.name,
    aggregate: metric.aggregates[i]!.name,
    definition: g.definition.fingerprint,
    run: g.run,
    answers: keys.map((k) => mergeKey(req, k, g.batch as SideStates, g.speed)),
    partitions: g.parts,
    speedEventsHeld: g.held,
    missing: g.missing,
  };
}

export async function answerTopK(deps: QueryDeps, q: TopKQuery): Promise<QueryResult> {
  checkSizes("metric", [q.metric]);
  checkSizes("aggregate", [q.aggregate]);
  checkMap("where", q.where);
  if (!Number.isInteger(q.k) || q.k < 1 || q.k > MAX_TOP_K) throw new InvalidQueryError("k", `must be 1..${MAX_TOP_K}, got ${q.k}`);
  const g = await gather(deps, q.metric, q.fromMs, q.toMs, q.strict ?? false, (metric) => {
    for (const f of Object.keys(q.where)) {
      if (!metric.groupBy.includes(f)) throw new InvalidQueryError("where", `${metric.name} is not grouped by ${JSON.stringify(f)}; its group-by fields: ${metric.groupBy.join(", ") || "(none)"}`);
    }
    return { aggregateIndex: aggregateIndex(metric, q.aggregate, q.quantile), keys: null, series: false };
  });
  const metric = g.definition.metric;
  const i = g.asked.aggregateIndex;
  const req = { metric, aggregateIndex: i, quantile: q.quantile || DEFAULT_QUANTILE, series: false };
  const all = new Set([...g.batch.keys(), ...g.speed.keys()]);
  const results: KeyResult[] = [];
  for (const key of all) {
    const group = groupOf(metric, key);
    if (Object.entries(q.where).some(([f, v]) => group[f] !== v)) continue;
    results.push(mergeKey(req, key, g.batch as SideStates, g.speed));
  }
  results.sort(compareForTopK);
  return {
    metric: metric.name,
    aggregate: metric.aggregates[i]!.name,
    definition: g.definition.fingerprint,
    run: g.run,
    answers: results.slice(0, q.k),
    partitions: g.parts,
    speedEventsHeld: g.held,
    missing: g.missing,
  };
}
