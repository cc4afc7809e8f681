/**
 * The grpc-js server interceptor that times every call into lambda_grpc_server_handling_seconds,
 * by method and the status code it ended with (refusals by the access interceptor included).
 */
import { ServerInterceptingCall, status, type ServerInterceptor } from "@grpc/grpc-js";
import type { Metrics } from "../core/metrics.js";

/** Methods of this server's services keep their name; anything else is "other", so a scan cannot grow the label set. */
const KNOWN_SERVICES = /^\/(lambda\.v1\.[A-Za-z]+|grpc\.health\.v1\.Health|grpc\.reflection\.v1(alpha)?\.ServerReflection)\/[A-Za-z]+$/;

export function callMetricsInterceptor(metrics: Metrics): ServerInterceptor {
  return (method, call) => {
    const startedAt = performance.now();
    const name = KNOWN_SERVICES.test(method.path) ? method.path.slice(1) : "other";
    return new ServerInterceptingCall(call, {
      sendStatus: (st, next) => {
        metrics.grpcHandlingSeconds.observe({ method: name, code: status[st.code] ?? String(st.code) }, (performance.now() - startedAt) / 1000);
        next(st);
      },
    });
  };
}
