/**
 * One source's rows into the master dataset, exactly once, under the archiver's lease: the
 * insert step of the archive writer's flush (batch/archive_writer.ts).
 *
 * A failed insert may have landed in part, so before trying again the table's heads are read
 * and only the rows it lacks are sent. A failure ClickHouse says the data causes (isDataRefusal)
 * is split in halves until the refused rows are alone: those are handed to `refused` (the writer
 * dead-letters them) and the rest go in. Other failures are retried until the writer stops.
 */
import { isDataRefusal } from "../ch/client.js";
import type { MasterBatch, MasterInserter, MasterRow } from "../ch/master_insert.js";
import { ensureError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";

export interface AppendDeps {
  readonly master: MasterInserter;
  readonly database: string;
  /** Whether the lease still holds now: no insert starts while it does not. */
  holds(): boolean;
  /** The lease epoch, for log lines. */
  readonly epoch: number;
  /** True once the writer stops: retries end. */
  stopping(): boolean;
  /** Waits before a retry; ends at once when the writer stops. */
  pause(): Promise<void>;
  /** Reads the source's heads from its table again. @returns per partition the highest sequence it holds */
  reloadHeads(source: string): Promise<readonly number[]>;
  /** A row ClickHouse refused on its own. */
  refused(source: string, row: MasterRow, err: Error): Promise<void>;
  readonly log: Logger;
}

/**
 * Inserts `rows` of `source` as the module header says; each partition's rows go in in sequence
 * order. @returns false when the writer stopped before every row was in
 */
export async function appendRows(d: AppendDeps, source: string, rows: MasterBatch): Promise<boolean> {
  // The definition the rows were gathered under: its table and columns exist (the writer makes them first).
  const def = rows.source;
  // Parts still to insert, the next one last.
  const parts = [rows];
  while (parts.length > 0) {
    let part = parts.pop()!;
    for (;;) {
      // Paused past the lease: no insert until a renewal proves nobody took over (or the loss stops the writer).
      if (!d.holds()) {
        if (d.stopping()) return false;
        d.log.warn("the archiver lease is not fresh; holding the insert until it is renewed or lost", { source, rows: part.length, epoch: d.epoch });
        await d.pause();
        continue;
      }
      let refused: Error | undefined;
      try {
        await d.master.insert(d.database, def, part);
        break;
      } catch (err) {
        if (isDataRefusal(err)) refused = ensureError(err);
        else {
          d.log.error("insert into the master dataset failed; retrying without the rows that landed", { source, rows: part.length, err: ensureError(err) });
          if (d.stopping()) return false;
          await d.pause();
        }
      }
      // The insert may have landed in part before the error: keep only what the table lacks.
      // If ClickHouse cannot even say, keep every row and ask again next time round.
      const heads = await d.reloadHeads(source).then(
        (h) => h,
        (e) => (d.log.error("cannot read the master table's heads; retrying", { source, err: ensureError(e) }), null),
      );
      if (d.stopping() && (!heads || !refused)) return false;
      if (!heads) {
        await d.pause();
        continue;
      }
      part = part.filter((partition, seq) => seq > heads[partition]!);
      if (part.length === 0) break;
      if (!refused) continue;
      if (part.length > 1) {
        const mid = part.length >> 1;
        parts.push(part.slice(mid), part.slice(0, mid));
        break;
      }
      await d.refused(source, part.rowAt(0), refused);
      break;
    }
  }
  return true;
}
