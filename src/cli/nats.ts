/**
 * NATS for `lambdactl ingest`: connect, make sure the cluster's event stream is
 * there (lambdactl is a client: it never creates streams, whose settings belong
 * to the cluster), and hand back the runtime's own ingest path.
 */
import { jetstreamManager, JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { Catalog } from "../core/catalog.js";
import { ensureError } from "../core/errors.js";
import { silentLogger } from "../core/logger.js";
import { createIngest, type Ingest } from "../ingest/index.js";
import { connectNats } from "../nats/connect.js";
import { namesFor } from "../nats/names.js";
import type { NatsTarget } from "./connection.js";

/** NATS could not be reached at the configured URL. */
export class NatsUnreachableError extends Error {
  override readonly name = "NatsUnreachableError";
  constructor(
    readonly url: string,
    readonly from: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot connect to NATS at ${url} (from ${from}): ${ensureError(options?.cause).message}; is the cluster running?`, options);
  }
}

/** The event stream of the configured prefix does not exist on that server. */
export class EventStreamMissingError extends Error {
  override readonly name = "EventStreamMissingError";
  constructor(
    readonly stream: string,
    readonly prefix: string,
    readonly prefixFrom: string,
    readonly url: string,
  ) {
    super(
      `stream ${stream} does not exist on ${url}: no cluster with prefix ${JSON.stringify(prefix)} (from ${prefixFrom}) has started there; ` +
        "check --prefix, or start the cluster first",
    );
  }
}

/** An open ingest path; close it when done. */
export interface IngestConnection extends AsyncDisposable {
  readonly ingest: Ingest;
  /** Closes the NATS connection; idempotent. */
  close(): Promise<void>;
}

/**
 * Connects to `target` and checks its event stream.
 * @throws NatsUnreachableError, EventStreamMissingError.
 */
export async function openIngest(target: NatsTarget, catalog: Catalog): Promise<IngestConnection> {
  const names = namesFor(target.prefix.value);
  const nc = await connectNats(target.natsUrl.value, "lambdactl ingest").catch((err: unknown) => {
    throw new NatsUnreachableError(target.natsUrl.value, target.natsUrl.from, { cause: err });
  });
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= nc.close());
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.info(names.eventStream);
  } catch (err) {
    await close();
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) {
      throw new EventStreamMissingError(names.eventStream, target.prefix.value, target.prefix.from, target.natsUrl.value);
    }
    throw err;
  }
  // The command reports every refusal itself; the ingest's own log lines would repeat them.
  const ingest = createIngest({ nc, catalog, names, partitions: target.partitions.value, log: silentLogger });
  return { ingest, close, [Symbol.asyncDispose]: close };
}
