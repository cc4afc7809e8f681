/** Promise wrappers over the generated callback-style gRPC client. */
import type { ServiceError } from "@grpc/grpc-js";
import type { GetWatermarkResponse, LambdaServiceClient, QueryResponse } from "../../src/gen/lambda/v1/serving.js";

export function query(client: LambdaServiceClient, metric: string, key: string, fromMs: number, toMs: number): Promise<QueryResponse> {
  return new Promise((resolve, reject) =>
    client.query({ metric, key, from: new Date(fromMs), to: new Date(toMs) }, (err: ServiceError | null, res: QueryResponse) => (err ? reject(err) : resolve(res))),
  );
}

export function getWatermark(client: LambdaServiceClient): Promise<GetWatermarkResponse> {
  return new Promise((resolve, reject) => client.getWatermark({}, (err: ServiceError | null, res: GetWatermarkResponse) => (err ? reject(err) : resolve(res))));
}
