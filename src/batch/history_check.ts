/**
 * Whether the rows of a flush sit in the stream where the archiver's consumers said they did.
 * A consumer on a replica that drifted hands out events at positions the stream does not hold
 * them at (F12, docs/reliability.md); the archive writer holds such a partition's rows back and
 * reads it again (batch/archive_writer.ts).
 */
import type { MasterBatch } from "../ch/master_insert.js";
import { checkPosition, type PositionReader } from "../nats/stream_position.js";

/**
 * The partitions of `batch` whose first or last row the stream's leader holds elsewhere (or
 * cannot say, which holds the rows back too), each with the reason. Checking both ends of each
 * partition's part catches a shifted history at two reads per partition and flush, not one per
 * event.
 */
export async function wrongHistories(batch: ReadonlyMap<string, MasterBatch>, positions: PositionReader, subjectOf: (partition: number) => string): Promise<Map<number, string>> {
  /** Per partition: its first and last row, as [source, index in that source's batch]. */
  const ends = new Map<number, { first: [string, number]; last: [string, number] }>();
  for (const [source, rows] of batch) {
    const seqOf = (at: [string, number]) => batch.get(at[0])!.seqAt(at[1]);
    for (let i = 0; i < rows.length; i++) {
      const p = rows.partitionAt(i);
      const seq = rows.seqAt(i);
      const e = ends.get(p);
      if (!e) ends.set(p, { first: [source, i], last: [source, i] });
      else {
        if (seq < seqOf(e.first)) e.first = [source, i];
        if (seq > seqOf(e.last)) e.last = [source, i];
      }
    }
  }
  const wrong = new Map<number, string>();
  // Every read at once: each waits behind the deliveries the connection is busy with (hundreds of
  // ms while the consumers catch up), so reading the ends one after the other doubled that wait.
  await Promise.all(
    [...ends].flatMap(([p, e]) => {
      const same = e.first[0] === e.last[0] && e.first[1] === e.last[1];
      return (same ? [e.first] : [e.first, e.last]).map(async ([source, i]) => {
        const row = batch.get(source)!.rowAt(i);
        const check = await checkPosition(positions, { seq: row.seq, subject: subjectOf(p), event: { source, id: row.id } });
        if (check.kind !== "same" && !wrong.has(p)) wrong.set(p, check.reason);
      });
    }),
  );
  return wrong;
}
