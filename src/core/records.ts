/**
 * The small records roles exchange through KV buckets (besides the watermark):
 * heartbeats, partition assignments and archiver progress.
 */

/** `members` bucket, key `speed.<node>`: written by a speed node every heartbeat. */
export interface Heartbeat {
  readonly node: string;
  readonly pid: number;
  readonly atMs: number;
}

/** `assignments` bucket, key `p.<p>`: which node owns partition p. */
export interface Assignment {
  readonly partition: number;
  /** Owning node, or "" while no node is alive. */
  readonly node: string;
  /** Grows each time the owner changes; an actor holding an older one is stale. */
  readonly generation: number;
}

/** `archiver` bucket, key `p.<p>`: the archiver has flushed everything below barrier `run`. */
export interface ArchiverProgress {
  readonly partition: number;
  readonly run: number;
  /** Stream sequence of that barrier. */
  readonly barrierSeq: number;
  readonly atMs: number;
}

/** `watermark` bucket, key `run.<N>`: what happened to run N. */
export interface RunRecord {
  readonly run: number;
  readonly outcome: "running" | "published" | "failed";
  readonly cuts: readonly number[];
  readonly coordinator: string;
  readonly startedAtMs: number;
  readonly finishedAtMs: number | null;
  readonly error: string | null;
  /** Time the watermark compare-and-set took (the watermark cannot carry its own). */
  readonly publishMs: number | null;
}
