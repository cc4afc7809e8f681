/** Promise wrappers over the generated callback-style gRPC client. */
import { status, type ServiceError } from "@grpc/grpc-js";
import type { GetWatermarkResponse, KeyAnswer, LambdaServiceClient, QueryRequest, QueryResponse, TopKRequest, TopKResponse } from "../../src/gen/lambda/v1/serving.js";

/** The answer for one key, flattened with the run it was made at. */
export interface OneAnswer {
  readonly total: number;
  readonly batchPart: number;
  readonly speedPart: number;
  readonly watermarkRun: number;
  readonly events: number;
  readonly response: QueryResponse;
}

/**
 * Queries are strict unless `req` says otherwise: a test comparing with a recount wants a complete
 * answer or an error, never a partial one (test/e2e/partial-answers.test.ts asks for those).
 */
export function queryRaw(client: LambdaServiceClient, req: Partial<QueryRequest>): Promise<QueryResponse> {
  const full: QueryRequest = { metric: "", key: "", keys: [], group: {}, aggregate: "", quantile: 0, series: false, from: undefined, to: undefined, strict: true, ...req };
  return new Promise((resolve, reject) => client.query(full, (err: ServiceError | null, res: QueryResponse) => (err ? reject(err) : resolve(res))));
}

/** How long `query` waits out answers that would be incomplete (a partition moving or replaying). */
export const COMPLETE_ANSWER_WAIT_MS = 20_000;

/** A strict query refused because a partition's speed part is missing or behind (serving/query.ts IncompleteAnswerError). */
export const isIncomplete = (err: unknown): boolean => (err as ServiceError).code === status.UNAVAILABLE && /the answer would lack the speed part/.test((err as ServiceError).details);

/**
 * `ask` (a strict query or top-k) asked again while the answer would be incomplete, as a client
 * honouring UNAVAILABLE's retry advice does (a partition that moved under load replays for a
 * moment): for comparisons with a recount, which need the complete answer.
 */
async function untilComplete<T>(ask: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + COMPLETE_ANSWER_WAIT_MS;
  for (;;) {
    try {
      return await ask();
    } catch (err) {
      if (!isIncomplete(err) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A strict query, asked again while it would be incomplete (untilComplete). */
export const completeQuery = (client: LambdaServiceClient, req: Partial<QueryRequest>): Promise<QueryResponse> => untilComplete(() => queryRaw(client, { ...req, strict: true }));

/** One key's count (or first aggregate) over [fromMs, toMs), complete (completeQuery). Absent values read as 0. */
export async function query(client: LambdaServiceClient, metric: string, key: string, fromMs: number, toMs: number): Promise<OneAnswer> {
  const res = await completeQuery(client, { metric, key, from: new Date(fromMs), to: new Date(toMs) });
  const a: KeyAnswer = res.answers[0]!;
  return { total: a.total ?? 0, batchPart: a.batchPart ?? 0, speedPart: a.speedPart ?? 0, watermarkRun: res.watermarkRun, events: a.events, response: res };
}

/** Strict unless `req` says otherwise, as queryRaw. */
export function topK(client: LambdaServiceClient, req: Partial<TopKRequest>): Promise<TopKResponse> {
  const full: TopKRequest = { metric: "", k: 10, aggregate: "", quantile: 0, where: {}, from: undefined, to: undefined, strict: true, ...req };
  return new Promise((resolve, reject) => client.topK(full, (err: ServiceError | null, res: TopKResponse) => (err ? reject(err) : resolve(res))));
}

/** A strict top-k, asked again while it would be incomplete (untilComplete). */
export const completeTopK = (client: LambdaServiceClient, req: Partial<TopKRequest>): Promise<TopKResponse> => untilComplete(() => topK(client, { ...req, strict: true }));

export function getWatermark(client: LambdaServiceClient): Promise<GetWatermarkResponse> {
  return new Promise((resolve, reject) => client.getWatermark({}, (err: ServiceError | null, res: GetWatermarkResponse) => (err ? reject(err) : resolve(res))));
}
