/**
 * OpenTelemetry tracing through @opentelemetry/api only: off unless the user registers an SDK
 * (a tracer provider, and a propagator to follow a query into the speed actors) before the
 * process starts, e.g. `node --import ./otel.mjs dist/src/main/node.js` (docs/operations.md).
 * Without one every span is the API's no-op, and nothing is added to NATS messages.
 */
import { context, propagation, ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Context, type Span } from "@opentelemetry/api";
import { ensureError } from "./errors.js";

const tracer = () => trace.getTracer("lambda-runtime");

/**
 * Runs `work` in a span named `name` (the current one as parent, or `parent`), ending it when
 * `work` settles and recording a failure as its status.
 */
export function inSpan<T>(name: string, attributes: Attributes, work: (span: Span) => Promise<T>, parent: Context = context.active()): Promise<T> {
  return tracer().startActiveSpan(name, { attributes }, parent, async (span) => {
    try {
      return await work(span);
    } catch (err) {
      const e = ensureError(err);
      span.recordException(e);
      span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** Starts a span that the caller ends (for work that ends in a callback, not a promise). */
export function startSpan(name: string, attributes: Attributes, parent: Context): Span {
  return tracer().startSpan(name, { attributes }, parent);
}

/** Something that carries string headers (a NATS MsgHdrs). */
export interface HeaderCarrier {
  get(key: string): string;
  set(key: string, value: string): void;
  keys(): string[];
}

/** True when the current context has a span being recorded: only then is its context worth sending along. */
export const tracing = (): boolean => trace.getSpan(context.active())?.isRecording() ?? false;

/** Writes the current trace context into `carrier` (W3C traceparent with the registered propagator). */
export function injectTraceContext(carrier: HeaderCarrier): void {
  propagation.inject(context.active(), carrier, { set: (c, k, v) => c.set(k, v) });
}

/** The trace context `carrier` brought, or the root context when it brought none. */
export function extractTraceContext(carrier: HeaderCarrier | undefined): Context {
  if (!carrier) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, carrier, { get: (c, k) => c.get(k) || undefined, keys: (c) => c.keys() });
}
