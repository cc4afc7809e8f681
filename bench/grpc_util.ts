/** Promise wrappers over the generated callback-style gRPC client (requests built with fromPartial, so new fields get their defaults). */
import type { ServiceError } from "@grpc/grpc-js";
import { QueryRequest, type LambdaServiceClient, type QueryResponse } from "../src/gen/lambda/v1/serving.js";

/** Queries `metric` for `keys` (one answer per key) over windows starting in [fromMs, toMs). */
export function query(client: LambdaServiceClient, metric: string, keys: readonly string[], fromMs: number, toMs: number): Promise<QueryResponse> {
  const req = QueryRequest.fromPartial(keys.length === 1 ? { metric, key: keys[0]!, from: new Date(fromMs), to: new Date(toMs) } : { metric, keys: [...keys], from: new Date(fromMs), to: new Date(toMs) });
  return new Promise((resolve, reject) => client.query(req, (err: ServiceError | null, res: QueryResponse) => (err ? reject(err) : resolve(res))));
}
