/**
 * The serving node's check of a watermark before it answers at it: a batch run published it
 * (nats/watermark_trust.ts), and this node can read the batch views it names. A node on
 * another ClickHouse (or chDB directory) than the coordinator's, or one whose view versions
 * were dropped, would otherwise answer batch parts of 0. Queries fail on their own (ch/views.ts
 * BatchViewMissingError); this check says so in the log at start and at every new watermark,
 * before the first query does, and the node stays up: a later watermark may be readable.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { Catalog } from "../core/catalog.js";
import { standings } from "../core/definitions.js";
import { BatchViewMissingError, ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Watermark } from "../core/watermark.js";
import { viewTable } from "../ch/schema.js";
import { viewVersionState } from "../ch/views.js";
import type { RunHistoryBuckets } from "../nats/run_history.js";
import { checkWatermark, type WatermarkVerdict } from "../nats/watermark_trust.js";

/**
 * Checks every view version watermark `w` answers with; logs an error naming the missing ones
 * (or why the check itself failed, unless `stopped` was aborted: a node that stops closes
 * ClickHouse under a check still running) and returns them.
 */
export async function checkWatermarkViews(ch: ClickHouseClient, db: string, catalog: Catalog, w: Watermark, log: Logger, stopped?: AbortSignal): Promise<BatchViewMissingError[]> {
  const missing: BatchViewMissingError[] = [];
  try {
    for (const s of standings(catalog, w)) {
      if (!s.inForce) continue;
      const state = await viewVersionState(ch, db, s.inForce.metric, w.viewVersion);
      if (state !== "present") missing.push(new BatchViewMissingError(s.name, w.viewVersion, viewTable(db, s.inForce.metric), state));
    }
  } catch (err) {
    if (stopped?.aborted) log.debug("stopped while checking the watermark's batch views", { run: w.run, err: ensureError(err) });
    else log.error("could not check the watermark's batch views; queries will tell", { run: w.run, err: ensureError(err) });
    return missing;
  }
  if (missing.length > 0) {
    log.error("this node cannot read the watermark's batch views: queries of these metrics fail with FAILED_PRECONDITION until a watermark it can read", {
      run: w.run,
      metrics: missing.map((e) => e.metric),
      err: missing[0],
    });
  }
  return missing;
}

/**
 * Whether this serving node answers at `w`: refused when no batch run published it, or when a
 * batch view it names is missing here (which {@link checkWatermarkViews} logs). A check of the
 * views that itself fails does not refuse: queries tell. @throws what reading the run history throws
 */
export async function checkServedWatermark(ch: ClickHouseClient, db: string, buckets: RunHistoryBuckets, catalog: Catalog, w: Watermark, log: Logger, stopped?: AbortSignal): Promise<WatermarkVerdict> {
  const trust = await checkWatermark(buckets, w);
  if (trust.kind === "refused") return trust;
  const missing = await checkWatermarkViews(ch, db, catalog, w, log, stopped);
  if (missing.length === 0) return trust;
  return { kind: "refused", reason: `its batch views are missing on this node: ${missing.map((e) => `${e.metric} (${e.table})`).join(", ")}` };
}
