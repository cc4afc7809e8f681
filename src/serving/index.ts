/** The serving layer: gRPC API merging batch views and speed segments at the watermark. */
export { createServingNode, SERVICE_NAME, type ServingNode, type ServingOptions, type ServingDeps } from "./server.js";
export { watermarkToProto, metricInfo } from "./handlers.js";
export { answerQuery, answerTopK, MAX_QUERY_RANGE_MS, MAX_QUERY_KEYS, MAX_TOP_K, type MetricQuery, type TopKQuery, type QueryResult } from "./query.js";
export { type ServingSecurityOptions } from "./listeners.js";
export { CERT_UNITS } from "./access.js";
