/**
 * The raw gRPC baseline: the same lambda.v1.LambdaService definition served by
 * @grpc/grpc-js with a Query handler that answers at once with a fixed answer
 * per key asked, in the product's response shape. What the product adds on
 * top of it is the query's own work.
 */
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { LambdaServiceService, QueryResponse, type QueryRequest } from "../src/gen/lambda/v1/serving.js";

/** The running baseline server. */
export interface TrivialServer {
  readonly address: string;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 and a free port. */
export async function startTrivialServer(): Promise<TrivialServer> {
  const impl: UntypedServiceImplementation = {
    query(call: ServerUnaryCall<QueryRequest, QueryResponse>, callback: sendUnaryData<QueryResponse>) {
      const r = call.request;
      const keys = r.keys.length > 0 ? r.keys : [r.key];
      callback(
        null,
        QueryResponse.fromPartial({
          metric: r.metric,
          from: r.from,
          to: r.to,
          watermarkRun: 1,
          answers: keys.map((key) => ({ key, total: 1, batchPart: 1, speedPart: 0, events: 1 })),
          partitions: [{ partition: 0, cutSeq: 1, appliedSeq: 1, speedEventsHeld: 0, generation: 1 }],
        }),
      );
    },
  };
  const server = new Server();
  // Methods left out answer UNIMPLEMENTED; the bench calls Query only.
  server.addService(LambdaServiceService, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
