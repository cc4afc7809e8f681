/** The serving layer: gRPC API merging batch views and speed segments at the watermark. */
export { createServingNode, watermarkToProto, SERVICE_NAME, type ServingNode, type ServingOptions, type ServingDeps } from "./server.js";
export { answerQuery, validateQuery, MAX_QUERY_RANGE_MS, type MetricQuery } from "./query.js";
